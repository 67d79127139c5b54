package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/podnet/podnet/store"
)

// Target is an address podnet enforces policies on: an endpoint of a
// container on a podnet bridge or vxlan network of this host (for the
// agent), or either end of a connection (for a check).
type Target struct {
	// ID names it (an endpoint ID).
	ID string
	// Name is its container's name, for explanations and logs.
	Name string
	// Labels are its container's labels. Known is false while they are
	// not known yet (a container that just started, before the Docker
	// watcher saw it): the target is then isolated in every direction a
	// policy could isolate it (pending), never open.
	Labels map[string]string
	Known  bool
	Addrs  []netip.Addr
}

// Input is everything a model is compiled from.
type Input struct {
	// Policies are the validated policies (any order); or Index, the
	// same prepared once for many compiles (it wins when set).
	Policies []store.NetworkPolicy
	Index    *Index
	// Targets are the endpoints to enforce on.
	Targets []Target
	// Selected returns the addresses of the containers the selector with
	// this Key selects, on every host: the catalog's selection (plus the
	// containers the local agent knows before etcd does). Nil selects
	// nothing.
	Selected func(key string) []netip.Addr
}

// Model is the compiled form of the policies for a set of targets: which
// rules guard each target in each direction, and the address sets those
// rules name. The data plane is programmed from it and `policy check`
// answers from it, so the two cannot disagree.
type Model struct {
	Targets []TargetRules
	// Groups are the rule chains, by ID: one per distinct set of policies
	// isolating a target in one direction (targets selected by the same
	// policies share one).
	Groups map[string]*Group
	// Peers are the address sets of the pod selectors rules name, by ID;
	// Blocks those of the ipBlocks.
	Peers  map[string]*PeerSet
	Blocks map[string]*Block
	// Policies names every policy (sorted), whether or not it selects a
	// target here (denied packets are counted per policy).
	Policies []string
	// Ingress and Egress report whether some policy has that type: an
	// unknown target is isolated (pending) in those directions.
	Ingress, Egress bool

	byAddr map[netip.Addr]int
}

// TargetRules is one target and what guards it. Ingress (Egress) is nil
// when no policy isolates it in that direction; Pending* are set instead
// for a target whose labels are not known yet.
type TargetRules struct {
	Target
	Ingress, Egress               *Group
	PendingIngress, PendingEgress bool
}

// Group is the rules of the policies that isolate a target in one
// direction: traffic matching any rule passes, the rest is denied.
type Group struct {
	ID       string
	Egress   bool
	Policies []string
	Rules    []Rule
}

// Rule is one ingress or egress rule of one policy, compiled: traffic
// from (to) any of Peers on any of Ports passes. No peer is every
// address; no port is every protocol and port.
type Rule struct {
	Policy string
	// Index is the rule's place in the policy's ingress or egress list,
	// from 1.
	Index int
	Peers []Peer
	Ports []PortRange
	// Text describes the rule ("from podSelector app=web, port 80/TCP").
	Text string
}

// Peer is one address set a rule names: a pod selector's (in
// Model.Peers) or an ipBlock's (in Model.Blocks).
type Peer struct {
	Set   string
	Block bool
}

// PortRange is First..Last of Proto (TCP, UDP or SCTP); 0..65535 is
// every port of Proto.
type PortRange struct {
	Proto       string
	First, Last uint16
}

// PeerSet is the addresses of the containers a pod selector selects.
type PeerSet struct {
	ID       string
	Selector string
	Addrs    []netip.Addr // sorted, deduplicated
}

// Block is an ipBlock as address ranges (the CIDR minus its excepts).
type Block struct {
	ID     string
	Text   string
	Ranges []AddrRange // sorted, disjoint
}

// AddrRange is First..Last, inclusive, of one family.
type AddrRange struct{ First, Last netip.Addr }

// Target returns the target holding address a.
func (m *Model) Target(a netip.Addr) (TargetRules, bool) {
	i, ok := m.byAddr[a.Unmap()]
	if !ok {
		return TargetRules{}, false
	}
	return m.Targets[i], true
}

// Compile builds the model. Policies apply in name order; a group's rules
// are its policies' rules in that order.
func Compile(in Input) *Model {
	idx := in.Index
	if idx == nil {
		idx = NewIndex(in.Policies)
	}
	m := &Model{Groups: map[string]*Group{}, Peers: map[string]*PeerSet{}, Blocks: map[string]*Block{},
		byAddr: map[netip.Addr]int{}, Policies: idx.names, Ingress: idx.ingress, Egress: idx.egress}
	c := compiler{m: m, in: in}
	for _, t := range in.Targets {
		tr := TargetRules{Target: t}
		if !t.Known {
			tr.PendingIngress, tr.PendingEgress = m.Ingress, m.Egress
		} else {
			var ing, eg []*store.NetworkPolicy
			for _, p := range idx.candidates(t.Labels) {
				if !Matches(p.PodSelector, t.Labels) {
					continue
				}
				if p.Has(store.PolicyIngress) {
					ing = append(ing, p)
				}
				if p.Has(store.PolicyEgress) {
					eg = append(eg, p)
				}
			}
			tr.Ingress = c.group(ing, false)
			tr.Egress = c.group(eg, true)
		}
		for _, a := range t.Addrs {
			m.byAddr[a.Unmap()] = len(m.Targets)
		}
		m.Targets = append(m.Targets, tr)
	}
	return m
}

// Index is a set of policies prepared for compiling: in name order, each
// under its podSelector's anchor (see Anchor), so that the policies a
// label set may match are found without trying every policy. Build it
// once per change of the policies; compile any number of models from it.
type Index struct {
	pols            []store.NetworkPolicy
	names           []string
	ingress, egress bool
	order           map[string]int // policy name → position in name order
	byTerm          map[string][]*store.NetworkPolicy
	byKey           map[string][]*store.NetworkPolicy
	universal       []*store.NetworkPolicy
}

// NewIndex prepares pols (any order; not changed).
func NewIndex(in []store.NetworkPolicy) *Index {
	pols := make([]store.NetworkPolicy, len(in))
	order := make([]int, len(in))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(in[a].Name, in[b].Name) })
	for i, j := range order {
		pols[i] = in[j]
	}
	x := &Index{pols: pols, order: map[string]int{}, byTerm: map[string][]*store.NetworkPolicy{}, byKey: map[string][]*store.NetworkPolicy{}}
	for _, p := range pols {
		x.names = append(x.names, p.Name)
		x.ingress = x.ingress || p.Has(store.PolicyIngress)
		x.egress = x.egress || p.Has(store.PolicyEgress)
	}
	for i := range pols {
		p := &pols[i]
		x.order[p.Name] = i
		a := AnchorOf(p.PodSelector)
		switch {
		case a.Universal:
			x.universal = append(x.universal, p)
		case a.Key != "":
			x.byKey[a.Key] = append(x.byKey[a.Key], p)
		default:
			for _, t := range a.Terms {
				x.byTerm[t] = append(x.byTerm[t], p)
			}
		}
	}
	return x
}

// candidates are the policies labels may match, in name order, each once.
func (x *Index) candidates(labels map[string]string) []*store.NetworkPolicy {
	out := slices.Clone(x.universal)
	for k, v := range labels {
		out = append(out, x.byTerm[Term(k, v)]...)
		out = append(out, x.byKey[k]...)
	}
	slices.SortFunc(out, func(a, b *store.NetworkPolicy) int { return x.order[a.Name] - x.order[b.Name] })
	return slices.CompactFunc(out, func(a, b *store.NetworkPolicy) bool { return a == b })
}

type compiler struct {
	m  *Model
	in Input
}

// group returns the shared group of policies ps (nil when there are none).
func (c compiler) group(ps []*store.NetworkPolicy, egress bool) *Group {
	if len(ps) == 0 {
		return nil
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	dir := "i"
	if egress {
		dir = "e"
	}
	id := dir + hashID(strings.Join(names, "\x00"))
	if g, ok := c.m.Groups[id]; ok {
		return g
	}
	g := &Group{ID: id, Egress: egress, Policies: names}
	for _, p := range ps {
		rules := p.Ingress
		if egress {
			rules = p.Egress
		}
		for i, r := range rules {
			g.Rules = append(g.Rules, c.rule(p.Name, i+1, r, egress))
		}
	}
	c.m.Groups[id] = g
	return g
}

func (c compiler) rule(policy string, index int, r store.PolicyRule, egress bool) Rule {
	out := Rule{Policy: policy, Index: index}
	var peerTexts []string
	for _, p := range r.Peers {
		switch {
		case p.PodSelector != nil:
			key := Key(*p.PodSelector)
			id := "p" + hashID(key)
			if _, ok := c.m.Peers[id]; !ok {
				var addrs []netip.Addr
				if c.in.Selected != nil {
					addrs = normalize(c.in.Selected(key))
				}
				c.m.Peers[id] = &PeerSet{ID: id, Selector: key, Addrs: addrs}
			}
			out.Peers = append(out.Peers, Peer{Set: id})
			peerTexts = append(peerTexts, "podSelector "+Describe(*p.PodSelector))
		case p.IPBlock != nil:
			text := BlockText(*p.IPBlock)
			ranges := blockRanges(*p.IPBlock)
			id := "b" + hashID(rangesText(ranges))
			if _, ok := c.m.Blocks[id]; !ok {
				c.m.Blocks[id] = &Block{ID: id, Text: text, Ranges: ranges}
			}
			out.Peers = append(out.Peers, Peer{Set: id, Block: true})
			peerTexts = append(peerTexts, "ipBlock "+text)
		}
	}
	var portTexts []string
	for _, p := range r.Ports {
		pr := PortRange{Proto: p.Protocol, First: p.Port, Last: p.Port}
		switch {
		case p.Port == 0:
			pr.First, pr.Last = 0, 65535
			portTexts = append(portTexts, "every "+p.Protocol+" port")
		case p.EndPort != 0:
			pr.Last = p.EndPort
			portTexts = append(portTexts, "ports "+itoa(p.Port)+"-"+itoa(p.EndPort)+"/"+p.Protocol)
		default:
			portTexts = append(portTexts, "port "+itoa(p.Port)+"/"+p.Protocol)
		}
		out.Ports = append(out.Ports, pr)
	}
	dir := "from "
	if egress {
		dir = "to "
	}
	peers := "everywhere"
	if len(peerTexts) > 0 {
		peers = dir + strings.Join(peerTexts, " or ")
	} else if !egress {
		peers = "from everywhere"
	}
	ports := "every port"
	if len(portTexts) > 0 {
		ports = strings.Join(portTexts, " or ")
	}
	out.Text = peers + ", " + ports
	return out
}

// hashID is a short stable name for a key (object names in the kernel).
func hashID(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:6])
}

func normalize(addrs []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if a.IsValid() {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func itoa(n uint16) string { return strconv.Itoa(int(n)) }
