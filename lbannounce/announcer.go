package lbannounce

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/store"
)

// Defaults of Config.
const (
	DefaultTTL        = 3 * time.Second
	DefaultClaimDelay = 300 * time.Millisecond
	// writeTimeout bounds each etcd write of the loop: a host whose link
	// is down must not stall its announcements waiting for etcd.
	writeTimeout = time.Second
	// tick re-checks links and retries failed writes.
	tick = time.Second
)

// Catalog is what the announcer reads of the service catalog.
type Catalog interface {
	Loaded() bool
	LoadBalancers() []catalog.LoadBalancer
	UnderlayHost(a netip.Addr) (string, bool)
	Subscribe() <-chan struct{}
}

// L2 answers ARP/NDP for exactly the addresses it is given (address →
// interface). The Responder is one.
type L2 interface {
	Set(addrs map[netip.Addr]string) error
	Close()
}

// Router speaks BGP: Apply sets this host's peers and the addresses it
// announces to them; Sessions reports the sessions; Changed is signalled
// when one changes state; Stop closes every session (routers withdraw
// this host's routes at once). Package bgp's Speaker is one.
type Router interface {
	Apply(peers []store.BGPPeer, announce []netip.Addr) error
	Sessions() []store.BGPSession
	Changed() <-chan struct{}
	Stop()
}

// Interfaces says where this host answers ARP/NDP for an address: the
// name of an interface that is up, or "" when it cannot answer.
type Interfaces interface {
	For(a netip.Addr) string
}

// Config wires an Announcer.
type Config struct {
	Host  string
	Store *store.Store
	// Feeds are the etcd prefixes it reads, shared with podnetd's other
	// readers (nil: its own, from Store).
	Feeds   *feed.Hub
	Catalog Catalog
	// L2 answers ARP/NDP; nil: this host takes no L2 address.
	L2 L2
	// Router speaks BGP; nil: this host announces nothing over BGP.
	Router     Router
	Interfaces Interfaces
	// TTL of the announcer lease: how soon the other hosts take this
	// one's L2 addresses over after it went away (DefaultTTL). Keep it
	// well under the host liveness TTL.
	TTL time.Duration
	// ClaimDelay is how long each rank of the election waits for the
	// better-ranked hosts before it claims a free address.
	ClaimDelay time.Duration
	Logger     *slog.Logger
}

// Announcer announces this host's share of the LoadBalancer addresses:
// it takes part in the election of the L2 addresses and answers ARP/NDP
// for those it wins, and tells its BGP speaker which addresses to
// announce. Run does the work.
type Announcer struct {
	cfg Config
	v   *view
	log *slog.Logger

	mu    sync.Mutex
	lease store.LeaseID // 0 while none is held
	// suspect are L2 addresses held while their interface was down:
	// answered again only once etcd confirms the claim is still ours.
	suspect map[netip.Addr]bool
	// tryAt is when this host may try to claim a free L2 address.
	tryAt map[netip.Addr]time.Time
	// answering is what the responder answers for now.
	answering map[netip.Addr]string
	announced []netip.Addr
	record    store.LBSpeaker
	// started is when the announcer began (the speaker record's Since).
	started time.Time
	wake    time.Time
}

// New returns an Announcer.
func New(cfg Config) *Announcer {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ClaimDelay <= 0 {
		cfg.ClaimDelay = DefaultClaimDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Announcer{cfg: cfg, v: newView(), log: cfg.Logger, suspect: map[netip.Addr]bool{},
		tryAt: map[netip.Addr]time.Time{}, answering: map[netip.Addr]string{}, started: time.Now().UTC()}
}

// Run announces until ctx ends, then stops answering, closes the BGP
// sessions and revokes the announcer lease, so the other hosts take the
// L2 addresses over at once (a clean stop hands over; a crash is noticed
// when the lease runs out).
func (a *Announcer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	feeds := a.cfg.Feeds
	if feeds == nil {
		feeds = feed.Start(ctx, a.cfg.Store, a.log)
	}
	for _, p := range followed {
		defer feeds.Subscribe(p, follower{v: a.v, prefix: p})()
	}
	wg.Go(func() { a.holdLease(ctx) })
	sub := a.cfg.Catalog.Subscribe()
	var routerChanged <-chan struct{}
	if a.cfg.Router != nil {
		routerChanged = a.cfg.Router.Changed()
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			wg.Wait()
			return
		case <-a.v.kick:
		case <-sub:
		case <-routerChanged:
		case <-ticker.C:
		case <-timer.C:
		}
		a.reconcile(ctx)
		if d := time.Until(a.wake); !a.wake.IsZero() && d > 0 {
			timer.Reset(d)
		}
	}
}

// holdLease keeps an announcer lease and this host's speaker record on
// it. A lost lease (etcd out of reach for longer than the TTL) is taken
// up again if etcd still has it (it extends leases when it elects a
// leader after an outage), else replaced by a new one, to which the loop
// rebinds the claims this host still holds.
func (a *Announcer) holdLease(ctx context.Context) {
	var id store.LeaseID
	for ctx.Err() == nil {
		if id != 0 {
			if left, _, err := a.cfg.Store.LeaseTTL(ctx, id); err != nil || left <= 0 {
				id = 0
			}
		}
		if id == 0 {
			var err error
			if id, err = a.cfg.Store.Grant(ctx, a.cfg.TTL); err != nil {
				sleep(ctx, 500*time.Millisecond)
				continue
			}
		}
		a.setLease(id)
		err := a.cfg.Store.KeepLease(ctx, id)
		a.setLease(0)
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("announcer lease lost; other hosts may take this host's L2 addresses over", "err", err)
		sleep(ctx, 200*time.Millisecond)
	}
}

func (a *Announcer) setLease(id store.LeaseID) {
	a.mu.Lock()
	a.lease = id
	a.record = store.LBSpeaker{} // written again on this lease
	a.mu.Unlock()
	a.v.signal()
}

func (a *Announcer) currentLease() store.LeaseID {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lease
}

// shutdown is the clean stop.
func (a *Announcer) shutdown() {
	if a.cfg.L2 != nil {
		a.cfg.L2.Close()
	}
	metrics.LBL2Addresses.Set(0)
	if a.cfg.Router != nil {
		a.cfg.Router.Stop()
	}
	metrics.BGPAnnounced.Set(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a.mu.Lock()
	id := a.lease
	a.mu.Unlock()
	if id != 0 {
		if err := a.cfg.Store.Revoke(ctx, id); err != nil {
			a.log.Warn("announcer lease not revoked: other hosts take this host's L2 addresses over when it runs out", "err", err)
			return
		}
	}
	a.log.Info("announcer stopped; L2 addresses handed over")
}

// reconcile is one pass: the L2 election, the responder, the BGP
// speaker and this host's speaker record.
func (a *Announcer) reconcile(ctx context.Context) {
	snap := a.v.snapshot()
	if !snap.loaded || !a.cfg.Catalog.Loaded() {
		return
	}
	a.mu.Lock()
	a.wake = time.Time{}
	a.mu.Unlock()
	want := map[netip.Addr]string{}
	l2 := map[netip.Addr]bool{}
	var bgp []netip.Addr
	myPeers := a.myPeers(snap)
	lbs := a.cfg.Catalog.LoadBalancers()
	for _, lb := range lbs {
		p, ok := snap.poolOf(lb.IP)
		if !ok {
			continue
		}
		if h, isHost := a.cfg.Catalog.UnderlayHost(lb.IP); isHost {
			a.log.Warn("not announcing a load-balancer address that is a host's underlay address", "service", lb.Service, "addr", lb.IP, "hostOfAddr", h)
			continue
		}
		eligible := !lb.Local || slices.Contains(lb.Hosts, a.cfg.Host)
		switch p.Mode {
		case store.LBModeBGP:
			if eligible && hasFamilyPeer(myPeers, lb.IP) {
				bgp = append(bgp, lb.IP)
			}
		case store.LBModeL2:
			l2[lb.IP] = true
			if iface, ok := a.electL2(ctx, snap, lb, eligible); ok {
				want[lb.IP] = iface
			}
		}
	}
	a.releaseStale(ctx, snap, l2)
	a.setL2(want)
	a.setBGP(myPeers, bgp)
	a.writeRecord(ctx)
	observeCoverage(lbs, snap, want)
}

// electL2 takes part in the election of one L2 address: keeps, releases
// or claims it. It returns the interface to answer on when this host
// holds the address.
func (a *Announcer) electL2(ctx context.Context, snap snapshot, lb catalog.LoadBalancer, eligible bool) (string, bool) {
	iface := ""
	if a.cfg.L2 != nil && a.cfg.Interfaces != nil {
		iface = a.cfg.Interfaces.For(lb.IP)
	}
	lease := a.currentLease()
	c, claimed := snap.claims[lb.IP]
	mine := claimed && c.Host == a.cfg.Host
	if iface == "" && mine {
		a.markSuspect(lb.IP)
	}
	switch {
	case mine && (!eligible || iface == ""):
		a.release(ctx, lb.IP, c)
		return "", false
	case mine:
		if a.isSuspect(lb.IP) && !a.confirm(ctx, lb.IP) {
			return "", false
		}
		if lease != 0 && c.Lease != lease {
			a.rebind(ctx, lb, c, lease)
		}
		return iface, true
	case claimed:
		delete(a.tryAt, lb.IP)
		return "", false
	}
	// Free. Without a lease this host cannot claim, but keeps answering
	// what it answered for until another host claims it (an etcd outage
	// must not take the addresses down).
	if _, held := a.answering[lb.IP]; held && lease == 0 && iface != "" && eligible {
		return iface, true
	}
	if !eligible || iface == "" || lease == 0 {
		delete(a.tryAt, lb.IP)
		return "", false
	}
	var candidates []string
	for h := range snap.speakers {
		if !lb.Local || slices.Contains(lb.Hosts, h) {
			candidates = append(candidates, h)
		}
	}
	if !slices.Contains(candidates, a.cfg.Host) {
		candidates = append(candidates, a.cfg.Host) // our record may not be back yet
	}
	now := time.Now()
	at, ok := a.tryAt[lb.IP]
	if !ok {
		at = now.Add(time.Duration(rank(lb.IP, a.cfg.Host, candidates)) * a.cfg.ClaimDelay)
		a.tryAt[lb.IP] = at
	}
	if now.Before(at) {
		a.wakeAt(at)
		return "", false
	}
	if a.claim(ctx, lb, lease) {
		return iface, true
	}
	return "", false
}

// claim creates the claim of an L2 address, bound to this host's lease.
func (a *Announcer) claim(ctx context.Context, lb catalog.LoadBalancer, lease store.LeaseID) bool {
	c := store.L2Claim{Host: a.cfg.Host, Service: lb.Service, Since: time.Now().UTC(), Lease: lease}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	key := store.L2ClaimKey(lb.IP)
	ok, rev, err := a.cfg.Store.Txn(wctx, []store.Cmp{store.Absent(key)}, []store.Op{store.PutLeased(key, c, lease)})
	if err != nil {
		a.log.Warn("claiming an L2 address failed; retrying", "addr", lb.IP, "service", lb.Service, "err", err)
		a.wakeAt(time.Now().Add(tick))
		return false
	}
	delete(a.tryAt, lb.IP)
	if !ok {
		return false // another host was first: its claim is on its way through the watch
	}
	a.v.setClaim(lb.IP, c, rev)
	metrics.LBL2Takeovers.Inc()
	a.log.Info("took over an L2 address", "addr", lb.IP, "service", lb.Service)
	return true
}

// rebind moves a claim this host holds to its current lease.
func (a *Announcer) rebind(ctx context.Context, lb catalog.LoadBalancer, c claim, lease store.LeaseID) {
	nc := c.L2Claim
	nc.Lease = lease
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	key := store.L2ClaimKey(lb.IP)
	ok, rev, err := a.cfg.Store.Txn(wctx, []store.Cmp{store.ModRevIs(key, c.rev)}, []store.Op{store.PutLeased(key, nc, lease)})
	if err == nil && ok {
		a.v.setClaim(lb.IP, nc, rev)
	}
}

// release deletes a claim this host holds (it is no longer eligible, or
// cannot answer), so the next host takes the address.
func (a *Announcer) release(ctx context.Context, addr netip.Addr, c claim) {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	key := store.L2ClaimKey(addr)
	ok, _, err := a.cfg.Store.Txn(wctx, []store.Cmp{store.ModRevIs(key, c.rev)}, []store.Op{store.Delete(key)})
	switch {
	case err != nil:
		a.wakeAt(time.Now().Add(tick))
	case ok:
		a.v.setClaim(addr, store.L2Claim{}, 0)
		a.log.Info("released an L2 address", "addr", addr, "service", c.Service)
	}
}

// releaseStale releases the claims of this host for addresses that are
// no L2 load-balancer address any more (service gone, pool removed or
// turned to BGP).
func (a *Announcer) releaseStale(ctx context.Context, snap snapshot, l2 map[netip.Addr]bool) {
	for addr, c := range snap.claims {
		if c.Host == a.cfg.Host && !l2[addr] {
			a.release(ctx, addr, c)
		}
	}
}

// confirm reads the claim of addr from etcd itself (the watch may be
// behind after the link was down): true when it is still this host's.
func (a *Announcer) confirm(ctx context.Context, addr netip.Addr) bool {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	var c store.L2Claim
	rev, err := a.cfg.Store.Get(wctx, store.L2ClaimKey(addr), &c)
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.v.setClaim(addr, store.L2Claim{}, 0)
		a.clearSuspect(addr)
		return false
	case err != nil:
		a.wakeAt(time.Now().Add(tick))
		return false
	}
	a.v.setClaim(addr, c, rev)
	a.clearSuspect(addr)
	return c.Host == a.cfg.Host
}

func (a *Announcer) markSuspect(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.suspect[addr] = true
}

func (a *Announcer) isSuspect(addr netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.suspect[addr]
}

func (a *Announcer) clearSuspect(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.suspect, addr)
}

func (a *Announcer) wakeAt(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.wake.IsZero() || t.Before(a.wake) {
		a.wake = t
	}
}

// setL2 hands the responder the addresses to answer for.
func (a *Announcer) setL2(want map[netip.Addr]string) {
	if a.cfg.L2 == nil || maps.Equal(want, a.answering) {
		return
	}
	a.answering = want
	if err := a.cfg.L2.Set(want); err != nil {
		a.log.Warn("answering ARP/NDP for some addresses failed; retrying", "err", err)
		a.wakeAt(time.Now().Add(tick))
		a.answering = nil // set again on the next pass
	}
	metrics.LBL2Addresses.Set(float64(len(want)))
}

// myPeers are the peers this host speaks to.
func (a *Announcer) myPeers(snap snapshot) []store.BGPPeer {
	var out []store.BGPPeer
	for _, p := range snap.peers {
		if p.Selects(a.cfg.Host) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(x, y store.BGPPeer) int { return x.PeerAddress.Compare(y.PeerAddress) })
	return out
}

// hasFamilyPeer: a route to a is announced only to peers of a's family.
func hasFamilyPeer(peers []store.BGPPeer, a netip.Addr) bool {
	return slices.ContainsFunc(peers, func(p store.BGPPeer) bool { return p.PeerAddress.Is4() == a.Is4() })
}

// setBGP hands the speaker its peers and routes.
func (a *Announcer) setBGP(peers []store.BGPPeer, addrs []netip.Addr) {
	if a.cfg.Router == nil {
		return
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	if err := a.cfg.Router.Apply(peers, addrs); err != nil {
		a.log.Warn("BGP speaker refused the configuration; retrying", "err", err)
		a.wakeAt(time.Now().Add(tick))
	}
	a.announced = addrs
	metrics.BGPAnnounced.Set(float64(len(addrs)))
}

// writeRecord keeps this host's speaker record (on its lease) equal to
// what it does.
func (a *Announcer) writeRecord(ctx context.Context) {
	lease := a.currentLease()
	if lease == 0 {
		return
	}
	rec := store.LBSpeaker{Host: a.cfg.Host, Announced: slices.Clone(a.announced), Since: a.started}
	if a.cfg.Router != nil {
		rec.Sessions = a.cfg.Router.Sessions()
	}
	ifaces := map[string]bool{}
	for _, name := range a.answering {
		ifaces[name] = true
	}
	for _, n := range slices.Sorted(maps.Keys(ifaces)) {
		if rec.Interface != "" {
			rec.Interface += ","
		}
		rec.Interface += n
	}
	a.mu.Lock()
	same := sameRecord(a.record, rec)
	a.mu.Unlock()
	if same {
		return
	}
	rec.Updated = time.Now().UTC()
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if _, _, err := a.cfg.Store.Txn(wctx, nil, []store.Op{store.PutLeased(store.LBSpeakerKey(a.cfg.Host), rec, lease)}); err != nil {
		a.wakeAt(time.Now().Add(tick))
		return
	}
	a.mu.Lock()
	if a.lease == lease {
		a.record = rec
	}
	a.mu.Unlock()
}

func sameRecord(a, b store.LBSpeaker) bool {
	return a.Host == b.Host && a.Interface == b.Interface && slices.Equal(a.Announced, b.Announced) &&
		slices.EqualFunc(a.Sessions, b.Sessions, func(x, y store.BGPSession) bool {
			return x.Peer == y.Peer && x.Address == y.Address && x.State == y.State && x.Routes == y.Routes && x.Since.Equal(y.Since)
		})
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
