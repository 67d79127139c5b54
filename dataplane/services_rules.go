package dataplane

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Names of the service objects in podnet's table. Every object of the
// service section starts with "svc-" (or is the chain "services"), so a
// Sync of networks and published ports can leave them alone (see
// isServiceObject). Never rename: a restarted podnetd finds the previous
// one's rules by these names.
const (
	chainServices   = "services"      // dispatch, jumped to from prerouting and output
	chainSvcReject  = "svc-reject"    // services without endpoints
	chainSvcSNAT    = "snat-services" // postrouting: source NAT of service connections
	mapSvcIP4       = "svc-ip4"       // ClusterIP/external IP . proto . port : verdict
	mapSvcIP6       = "svc-ip6"
	mapSvcNodePorts = "svc-np"       // proto . NodePort : verdict
	setSvcHairpin4  = "svc-hairpin4" // local endpoint . itself: masquerade
	setSvcHairpin6  = "svc-hairpin6"
	setSameBridge   = "samebridge" // bridge . itself, for routed same-bridge traffic
	setPods4        = "pods4"      // subnets of multi-host networks (routed back to us)
	setPods6        = "pods6"      //
	mapTunnel4      = "tunnel4"    // pod subnet : this host's tunnel address in it
	mapTunnel6      = "tunnel6"
	svcPrefix       = "svc-"
	// setSvcSums ("svc-sums", services_sums.go) holds the element sums
	// of the other service maps.
)

// isServiceObject tells the service section's chains and sets from the
// rest of the table.
func isServiceObject(name string) bool {
	return name == chainServices || strings.HasPrefix(name, svcPrefix)
}

// keyspace is one family of bucket maps: by address (ClusterIP and
// external IPs) or by NodePort, with every endpoint or only local ones
// (externalTrafficPolicy Local), per IP family.
type keyspace struct {
	fam      family
	nodePort bool
	local    bool
}

func (k keyspace) String() string {
	if i, ok := k.index(); ok {
		return keyspaceNames[i]
	}
	return k.name()
}

func (k keyspace) name() string {
	s := "ip"
	if k.nodePort {
		s = "np"
	}
	s += famDigit(k.fam)
	if k.local {
		s += "-local"
	}
	return s
}

// index numbers the eight keyspaces (ok false for an unknown family).
func (k keyspace) index() (int, bool) {
	i := 0
	switch k.fam {
	case ipv4:
	case ipv6:
		i = 1
	default:
		return 0, false
	}
	if k.nodePort {
		i |= 2
	}
	if k.local {
		i |= 4
	}
	return i, true
}

// Names of keyspaces and of their first buckets, built once: a cold load
// or a restart names a bucket for every endpoint of every service, and
// building the strings each time was a tenth of its planning.
const namedBuckets = 256

var keyspaceNames, bucketNames, bucketIDs = func() (ks [8]string, names, ids [8][namedBuckets]string) {
	for _, fam := range []family{ipv4, ipv6} {
		for _, np := range []bool{false, true} {
			for _, local := range []bool{false, true} {
				k := keyspace{fam: fam, nodePort: np, local: local}
				i, _ := k.index()
				ks[i] = k.name()
				for b := range namedBuckets {
					names[i][b] = svcPrefix + ks[i] + "-b" + strconv.Itoa(b)
					ids[i][b] = "bucket " + ks[i] + " " + strconv.Itoa(b)
				}
			}
		}
	}
	return ks, names, ids
}()

// bucketName is both the map and the chain of bucket i: the map holds,
// for every service with more than i endpoints, key → i-th endpoint; the
// chain DNATs through it.
func bucketName(k keyspace, i int) string {
	if x, ok := k.index(); ok && i >= 0 && i < namedBuckets {
		return bucketNames[x][i]
	}
	return svcPrefix + k.String() + "-b" + strconv.Itoa(i)
}

// rangeName is the chain that picks one of buckets lo..hi-1 at random.
func rangeName(k keyspace, lo, hi int) string {
	return svcPrefix + k.String() + "-r" + strconv.Itoa(lo) + "-" + strconv.Itoa(hi)
}

// Shared objects are named by these ids in svcObjects.uses.
func bucketID(k keyspace, i int) string {
	if x, ok := k.index(); ok && i >= 0 && i < namedBuckets {
		return bucketIDs[x][i]
	}
	return "bucket " + k.String() + " " + strconv.Itoa(i)
}
func rangeID(k keyspace, lo, hi int) string {
	return "range " + k.String() + " " + strconv.Itoa(lo) + " " + strconv.Itoa(hi)
}

// addrType is the nft type of one address of f.
func addrType(f family) nftables.SetDatatype {
	if f == ipv4 {
		return nftables.TypeIPAddr
	}
	return nftables.TypeIP6Addr
}

func addrTypeText(f family) string { return map[family]string{ipv4: "ipv4_addr", ipv6: "ipv6_addr"}[f] }

// keyDef is the key of the keyspace's maps: address . proto . port, or
// proto . port.
func (k keyspace) keyDef() (nftables.SetDatatype, string) {
	if k.nodePort {
		return nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService), "inet_proto . inet_service"
	}
	return nftables.MustConcatSetType(addrType(k.fam), nftables.TypeInetProto, nftables.TypeInetService),
		addrTypeText(k.fam) + " . inet_proto . inet_service"
}

// bucketObjects is bucket i of k: its map (elements come from services)
// and its chain.
func bucketObjects(k keyspace, i int) (setDef, chainDef, ruleDef) {
	name := bucketName(k, i)
	kt, ktext := k.keyDef()
	dt := nftables.MustConcatSetType(addrType(k.fam), nftables.TypeInetService)
	set := setDef{name: name, keyType: kt, dataType: dt, isMap: true,
		typeText: fmt.Sprintf("type %s : %s . inet_service", ktext, addrTypeText(k.fam))}
	var frags []frag
	mk := keyAddrPort
	if k.nodePort {
		frags, mk = append(frags, nfproto(k.fam)), keyPort
	}
	frags = append(frags, l4protoIn(), ctMarkSetService(), dnatViaMap(k.fam, mk, name))
	return set, chainDef{name: name}, newRule(name, "", frags...)
}

// Picking one of n buckets with equal probability is one rule for up to
// maxPickVmap buckets: a random number mod n looked up in a constant
// verdict map (pickVmap). A larger range is split after its largest power
// of two below n, the left part chosen with probability s/n (`numgen
// random mod n < s`), until the parts are small enough (on a big-endian
// host, until they have at most pickLeaf buckets, picked in turn by
// pickRules). Ranges are named by their buckets, not by the service, so
// [0,10) serves every service with 10 endpoints: a new connection to one
// of them crosses the dispatch map, this chain and the bucket's, one
// lookup in each.
const pickLeaf = 4

func rangeSplit(n int) int {
	s := 1
	for s*2 < n {
		s *= 2
	}
	return s
}

// rangeTarget is the chain choosing among buckets lo..hi-1: the bucket
// chain itself for one.
func rangeTarget(k keyspace, lo, hi int) string {
	if hi-lo == 1 {
		return bucketName(k, lo)
	}
	return rangeName(k, lo, hi)
}

// rangeIDs are the range chains rangeTarget(k, lo, hi) goes through.
func rangeIDs(k keyspace, lo, hi int) []string {
	n := hi - lo
	if n <= 1 {
		return nil
	}
	ids := []string{rangeID(k, lo, hi)}
	if !flatPick(n) && n > pickLeaf {
		s := rangeSplit(n)
		ids = append(ids, rangeIDs(k, lo, lo+s)...)
		ids = append(ids, rangeIDs(k, lo+s, hi)...)
	}
	return ids
}

// rangeObjects is the chain choosing among buckets lo..hi-1 of k.
func rangeObjects(k keyspace, lo, hi int) (chainDef, []ruleDef) {
	name, n := rangeName(k, lo, hi), hi-lo
	if flatPick(n) || n <= pickLeaf {
		targets := make([]string, 0, n)
		for i := lo; i < hi; i++ {
			targets = append(targets, bucketName(k, i))
		}
		return chainDef{name: name}, pick(name, targets)
	}
	s := rangeSplit(n)
	return chainDef{name: name}, []ruleDef{
		newRule(name, "", numgenLess(n, s), gotoChain(rangeTarget(k, lo, lo+s))),
		newRule(name, "", gotoChain(rangeTarget(k, lo+s, hi))),
	}
}

// sharedObjects builds a shared object by id (see bucketID, rangeID).
func sharedObjects(id string) (sets []setDef, chains []chainDef, rules []ruleDef) {
	f := strings.Fields(id)
	nums := make([]int, len(f)-2)
	for i := range nums {
		var err error
		if nums[i], err = strconv.Atoi(f[i+2]); err != nil {
			panic("dataplane: bad shared object id " + id)
		}
	}
	k := parseKeyspace(f[1])
	if f[0] == "bucket" {
		s, c, r := bucketObjects(k, nums[0])
		return []setDef{s}, []chainDef{c}, []ruleDef{r}
	}
	c, r := rangeObjects(k, nums[0], nums[1])
	return nil, []chainDef{c}, r
}

func parseKeyspace(s string) keyspace {
	var k keyspace
	k.nodePort = strings.HasPrefix(s, "np")
	k.local = strings.HasSuffix(s, "-local")
	k.fam = ipv4
	if strings.HasPrefix(s[2:], "6") {
		k.fam = ipv6
	}
	return k
}

// serviceSkeleton is the part of the service section that exists whatever
// the services: the dispatch chain and maps, the reject chain and the
// hairpin sets.
func serviceSkeleton() ([]setDef, []chainDef, []ruleDef) {
	var sets []setDef
	for _, f := range []family{ipv4, ipv6} {
		kt, ktext := keyspace{fam: f}.keyDef()
		sets = append(sets, setDef{name: svcDispatchMap(f), keyType: kt, dataType: nftables.TypeVerdict, isMap: true,
			typeText: "type " + ktext + " : verdict"})
	}
	kt, ktext := keyspace{nodePort: true}.keyDef()
	sets = append(sets, setDef{name: mapSvcNodePorts, keyType: kt, dataType: nftables.TypeVerdict, isMap: true,
		typeText: "type " + ktext + " : verdict"})
	for _, f := range []family{ipv4, ipv6} {
		sets = append(sets, setDef{name: svcHairpinSet(f),
			keyType:  nftables.MustConcatSetType(addrType(f), addrType(f)),
			typeText: fmt.Sprintf("type %s . %s", addrTypeText(f), addrTypeText(f))})
	}
	sets = append(sets, sumsSetDef(nil))
	chains := []chainDef{{name: chainServices}, {name: chainSvcReject}}
	rules := []ruleDef{
		newRule(chainServices, "", dispatchVmap(ipv4, true, mapSvcIP4)),
		newRule(chainServices, "", dispatchVmap(ipv6, true, mapSvcIP6)),
		// NodePorts answer on every local address but loopback: a packet
		// from 127.0.0.1 cannot be routed to another host without
		// route_localnet on the uplink (CVE-2020-8558), so no NodePort
		// answers there, as with kube-proxy's nftables mode.
		newRule(chainServices, "", addrIn(daddr, netip.MustParsePrefix("127.0.0.0/8")), verdict(expr.VerdictReturn)),
		newRule(chainServices, "", addrIn(daddr, netip.PrefixFrom(netip.IPv6Loopback(), 128)), verdict(expr.VerdictReturn)),
		newRule(chainServices, "", fibDaddrLocal(), dispatchVmap(ipv4, false, mapSvcNodePorts)),
		newRule(chainSvcReject, "", l4protoIs(TCP), rejectTCPReset()),
		newRule(chainSvcReject, "", rejectPortUnreachable()),
	}
	return sets, chains, rules
}

// pick4or6 is v4 for IPv4, v6 for IPv6: the name of a per-family object.
func pick4or6(f family, v4, v6 string) string {
	if f == ipv4 {
		return v4
	}
	return v6
}

func svcDispatchMap(f family) string { return pick4or6(f, mapSvcIP4, mapSvcIP6) }
func svcHairpinSet(f family) string  { return pick4or6(f, setSvcHairpin4, setSvcHairpin6) }

// svcObjects is what one service adds to the table: elements in the
// shared maps (owned: no other service has the same key), elements it may
// share with others (hairpin pairs, reference-counted), its own sets and
// chains (affinity, LocalOnly), and the shared buckets and pick chains it
// needs.
type svcObjects struct {
	elems  []element
	shared []element
	sets   []setDef
	chains []chainDef
	rules  []ruleDef
	uses   []string
}

// svcTarget is where a key's traffic goes: a chain, or drop.
type svcTarget struct {
	chain string // "" means drop
}

func (t svcTarget) verdict() *expr.Verdict {
	if t.chain == "" {
		return &expr.Verdict{Kind: expr.VerdictDrop}
	}
	return &expr.Verdict{Kind: expr.VerdictGoto, Chain: t.chain}
}

func (t svcTarget) text() string {
	if t.chain == "" {
		return "drop"
	}
	return "goto " + t.chain
}

func (t svcTarget) frag() frag {
	if t.chain == "" {
		return verdict(expr.VerdictDrop)
	}
	return gotoChain(t.chain)
}

// buildServiceObjects is the pure function from one service to its
// objects (see the package doc for the layout).
func buildServiceObjects(s *svcState, bridgePrefix string) *svcObjects {
	o := &svcObjects{}
	if s.headless() || s.err != nil {
		return o
	}
	f := s.family()
	sp := s.spec
	for _, ep := range sp.Endpoints {
		if ep.Local {
			o.shared = append(o.shared, hairpinElement(ep.Addr))
		}
	}
	for _, p := range sp.Ports {
		pid := fmt.Sprintf("%s/%s/%d", sp.Name, p.Proto, p.Port)
		b := portBuilder{o: o, s: s, p: p, pid: pid, prefix: bridgePrefix}
		addrs := append([]netip.Addr{sp.ClusterIP}, sp.ExternalIPs...)
		ipCluster := keyspace{fam: f}
		cluster := b.targetFor(ipCluster, s.slots)
		for _, a := range addrs {
			if _, no := s.blocked[svcKey{addr: a, proto: p.Proto, port: p.Port}]; no {
				continue
			}
			key, ktext := addrKey(a, p.Proto, p.Port)
			b.buckets(ipCluster, s.slots, key, ktext)
			t := cluster
			if sp.LocalOnly && a != sp.ClusterIP {
				t = b.localChain(ipCluster, cluster)
			}
			o.elems = append(o.elems, dispatchElement(svcDispatchMap(f), key, ktext, t, sp.Name))
			if sp.LocalOnly && a != sp.ClusterIP {
				b.buckets(keyspace{fam: f, local: true}, s.local, key, ktext)
			}
		}
		if _, no := s.blocked[svcKey{proto: p.Proto, port: p.NodePort}]; p.NodePort == 0 || no {
			continue
		}
		npCluster := keyspace{fam: f, nodePort: true}
		key, ktext := nodePortKey(p.Proto, p.NodePort)
		b.buckets(npCluster, s.slots, key, ktext)
		t := b.targetFor(npCluster, s.slots)
		if sp.LocalOnly {
			t = b.localChain(npCluster, t)
			b.buckets(keyspace{fam: f, nodePort: true, local: true}, s.local, key, ktext)
		}
		o.elems = append(o.elems, dispatchElement(mapSvcNodePorts, key, ktext, t, sp.Name))
	}
	o.uses = uniqueSorted(o.uses)
	return o
}

// portBuilder builds the objects of one port of a service.
type portBuilder struct {
	o      *svcObjects
	s      *svcState
	p      ServicePort
	pid    string           // name/proto/port
	prefix string           // bridge prefix
	used   map[keyspace]int // buckets already listed in o.uses
}

// buckets adds key's element to buckets 0..len(eps)-1 of k.
// Building them is most of a cold load's user time: no fmt here.
func (b *portBuilder) buckets(k keyspace, eps []netip.Addr, key []byte, ktext string) {
	if b.used == nil {
		b.used = map[keyspace]int{}
	}
	tp := strconv.Itoa(int(b.p.TargetPort))
	for i, ep := range eps {
		b.o.elems = append(b.o.elems, element{
			set:  bucketName(k, i),
			key:  key,
			val:  append(ep.AsSlice(), slot(portBytes(b.p.TargetPort))...),
			text: ktext + " : " + ep.String() + " . " + tp,
		})
	}
	for i := b.used[k]; i < len(eps); i++ {
		b.o.uses = append(b.o.uses, bucketID(k, i))
	}
	b.used[k] = max(b.used[k], len(eps))
}

// targetFor is where traffic of keyspace k goes to reach one of eps:
// reject (none; drop for local-only traffic, as kube-proxy does), the
// affinity chain, the single bucket, or a pick chain.
func (b *portBuilder) targetFor(k keyspace, eps []netip.Addr) svcTarget {
	switch {
	case len(eps) == 0 && k.local:
		return svcTarget{}
	case len(eps) == 0:
		return svcTarget{chain: chainSvcReject}
	case b.s.spec.Affinity > 0:
		return b.affinity(k, eps)
	case len(eps) == 1:
		return svcTarget{chain: bucketName(k, 0)}
	}
	b.o.uses = append(b.o.uses, rangeIDs(k, 0, len(eps))...)
	return svcTarget{chain: rangeName(k, 0, len(eps))}
}

// localChain is the chain of externalTrafficPolicy Local for the external
// IPs (k by address) or the NodePort (k by port) of this port: traffic
// from this host's containers and processes goes to every endpoint
// (cluster), traffic from outside only to local ones, unmasqueraded.
func (b *portBuilder) localChain(k keyspace, cluster svcTarget) svcTarget {
	local := k
	local.local = true
	name := fmt.Sprintf("%slocal-%s/%s", svcPrefix, k, b.pid)
	if !slices.ContainsFunc(b.o.chains, func(c chainDef) bool { return c.name == name }) {
		lt := b.targetFor(local, b.s.local)
		b.o.chains = append(b.o.chains, chainDef{name: name})
		b.o.rules = append(b.o.rules,
			newRule(name, "", iif(b.prefix+"*"), cluster.frag()),
			newRule(name, "", fibSaddrLocal(), cluster.frag()),
			newRule(name, "", lt.frag()),
		)
	}
	return svcTarget{chain: name}
}

// affinity is ClientIP session affinity for keyspace k: one timeout set
// per endpoint (the clients sticking to it), looked up in turn; a client
// in none of them picks an endpoint at random, whose chain records it.
// Like kube-proxy's nftables mode; the lookups are per endpoint of this
// service only, and only for services with affinity. Recording is a rule
// of its own, apart from the goto: a full set (65535 clients, as a flood
// of forged sources makes it) fails the update, which ends only that
// rule, so a new client is still sent on, without affinity, instead of
// falling through un-NATed (refused) until entries expire.
func (b *portBuilder) affinity(k keyspace, eps []netip.Addr) svcTarget {
	f := k.fam
	name := fmt.Sprintf("%saff-%s/%s", svcPrefix, k, b.pid)
	b.o.chains = append(b.o.chains, chainDef{name: name})
	var epChains []string
	for i, ep := range eps {
		set := affinitySetName(b.pid, ep)
		if !slices.ContainsFunc(b.o.sets, func(s setDef) bool { return s.name == set }) {
			b.o.sets = append(b.o.sets, setDef{name: set, keyType: addrType(f), typeText: "type " + addrTypeText(f),
				dynamic: true, timeout: b.s.spec.Affinity})
		}
		epChain := fmt.Sprintf("%saff-%s/%s/%s", svcPrefix, k, b.pid, hex.EncodeToString(ep.AsSlice()))
		b.o.chains = append(b.o.chains, chainDef{name: epChain})
		b.o.rules = append(b.o.rules,
			newRule(name, "", addrInSet(f, saddr, set), gotoChain(epChain)),
			newRule(epChain, "", updateSaddr(f, set)),
			newRule(epChain, "", gotoChain(bucketName(k, i))))
		epChains = append(epChains, epChain)
	}
	b.o.rules = append(b.o.rules, pick(name, epChains)...)
	return svcTarget{chain: name}
}

// affinitySetName is the set of clients sticking to ep for one port.
func affinitySetName(pid string, ep netip.Addr) string {
	return fmt.Sprintf("%saff/%s/%s", svcPrefix, pid, hex.EncodeToString(ep.AsSlice()))
}

// addrKey is `10.96.0.5 . tcp . 80` as key bytes and text.
func addrKey(a netip.Addr, p Proto, port uint16) ([]byte, string) {
	key := append(a.AsSlice(), slot([]byte{protoNumber(p)})...)
	return append(key, slot(portBytes(port))...), a.String() + " . " + string(p) + " . " + strconv.Itoa(int(port))
}

// nodePortKey is `tcp . 30080`.
func nodePortKey(p Proto, port uint16) ([]byte, string) {
	return append(slot([]byte{protoNumber(p)}), slot(portBytes(port))...), fmt.Sprintf("%s . %d", p, port)
}

func dispatchElement(set string, key []byte, ktext string, t svcTarget, name string) element {
	return element{set: set, key: key, verdict: t.verdict(), comment: name,
		text: ktext + " : " + t.text()}
}

func hairpinElement(a netip.Addr) element {
	return element{set: svcHairpinSet(familyOf(a)), key: append(a.AsSlice(), a.AsSlice()...),
		text: fmt.Sprintf("%s . %s", a, a)}
}

func uniqueSorted(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
