package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/store"
	"google.golang.org/protobuf/types/known/anypb"
)

// Config wires a Speaker.
type Config struct {
	// Local is the address the host speaks from (its underlay address);
	// sessions to peers of the other family use the kernel's choice.
	Local netip.Addr
	// RouterID is the BGP identifier (an IPv4 address; default Local when
	// it is IPv4).
	RouterID netip.Addr
	// ConnectRetry is how long after a failed connection the speaker
	// tries again (default 5s).
	ConnectRetry time.Duration
	Logger       *slog.Logger
}

// Speaker is this host's BGP speaker: GoBGP, as a library, started with
// the first peer and stopped with the last. It connects to its peers
// (it does not listen on port 179, so it never competes with a routing
// daemon of the host) and announces a /32 (/128) per address it is given,
// with itself as the next hop, to every peer of that address's family.
// It accepts no route from its peers.
type Speaker struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// srv is created with the first peer and kept (its Serve loop never
	// returns); running says BGP is started on it.
	srv     *server.BgpServer
	running bool
	asn     uint32
	peers   map[netip.Addr]store.BGPPeer
	routes  map[netip.Addr]bool
	states  map[netip.Addr]peerState
	cancel  context.CancelFunc
	changed chan struct{}
}

type peerState struct {
	state string
	since time.Time
}

// New returns a Speaker with no peer (GoBGP not running).
func New(cfg Config) *Speaker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ConnectRetry <= 0 {
		cfg.ConnectRetry = 5 * time.Second
	}
	if !cfg.RouterID.IsValid() && cfg.Local.Is4() {
		cfg.RouterID = cfg.Local
	}
	s := &Speaker{cfg: cfg, log: cfg.Logger, peers: map[netip.Addr]store.BGPPeer{}, routes: map[netip.Addr]bool{},
		states: map[netip.Addr]peerState{}, changed: make(chan struct{}, 1)}
	metrics.SetBGPSessions(s.metrics)
	return s
}

// Changed is signalled when a session changes state.
func (s *Speaker) Changed() <-chan struct{} { return s.changed }

// Apply makes the speaker talk to exactly peers and announce exactly
// addrs. Peers whose settings changed are reconnected.
func (s *Speaker) Apply(peers []store.BGPPeer, addrs []netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(peers) == 0 {
		s.stopLocked()
		return nil
	}
	if !s.cfg.RouterID.IsValid() || !s.cfg.RouterID.Is4() {
		return errors.New("BGP needs an IPv4 router ID: this host has no IPv4 underlay address")
	}
	asn := peers[0].MyASN
	for _, p := range peers {
		asn = min(asn, p.MyASN)
	}
	if s.running && s.asn != asn {
		s.stopLocked() // the global AS changed: start over
	}
	if !s.running {
		if err := s.startLocked(asn); err != nil {
			return err
		}
	}
	ctx := context.Background()
	var errs []error
	want := map[netip.Addr]store.BGPPeer{}
	for _, p := range peers {
		want[p.PeerAddress] = p
	}
	for a, old := range s.peers {
		if p, ok := want[a]; !ok || !samePeer(old, p) {
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
				errs = append(errs, fmt.Errorf("remove BGP peer %s (%s): %w", old.Name, a, err))
			}
			delete(s.peers, a)
			delete(s.states, a)
		}
	}
	for a, p := range want {
		if _, ok := s.peers[a]; ok {
			continue
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(p)}); err != nil {
			errs = append(errs, fmt.Errorf("add BGP peer %s (%s): %w", p.Name, a, err))
			continue
		}
		s.peers[a] = p
		s.states[a] = peerState{state: "Idle", since: time.Now().UTC()}
		s.log.Info("BGP peer added", "peer", p.Name, "address", a, "peerASN", p.PeerASN, "myASN", p.MyASN, "holdTime", p.HoldTime)
	}
	wantRoutes := map[netip.Addr]bool{}
	for _, a := range addrs {
		wantRoutes[a] = true
	}
	for a := range s.routes {
		if !wantRoutes[a] {
			if err := s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: path(a)}); err != nil {
				errs = append(errs, fmt.Errorf("withdraw %s: %w", a, err))
				continue
			}
			delete(s.routes, a)
			s.log.Info("BGP route withdrawn", "addr", a)
		}
	}
	for a := range wantRoutes {
		if s.routes[a] {
			continue
		}
		if _, err := s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path(a)}); err != nil {
			errs = append(errs, fmt.Errorf("announce %s: %w", a, err))
			continue
		}
		s.routes[a] = true
		s.log.Info("BGP route announced", "addr", a)
	}
	return errors.Join(errs...)
}

func samePeer(a, b store.BGPPeer) bool {
	return a.Name == b.Name && a.PeerASN == b.PeerASN && a.MyASN == b.MyASN && a.HoldTime == b.HoldTime && a.Password == b.Password
}

// startLocked starts GoBGP with AS asn; it refuses every route peers send.
func (s *Speaker) startLocked(asn uint32) error {
	if s.srv == nil {
		s.srv = server.NewBgpServer(server.LoggerOption(logger{s.log}))
		go s.srv.Serve()
	}
	srv := s.srv
	ctx := context.Background()
	g := &api.Global{Asn: asn, RouterId: s.cfg.RouterID.String(), ListenPort: -1}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		return fmt.Errorf("start BGP (AS %d, router ID %s): %w", asn, s.cfg.RouterID, err)
	}
	if err := refuseImports(ctx, srv); err != nil {
		_ = srv.StopBgp(ctx, &api.StopBgpRequest{})
		return fmt.Errorf("start BGP: refuse imported routes: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	if err := srv.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, s.onPeerEvent); err != nil {
		cancel()
		_ = srv.StopBgp(ctx, &api.StopBgpRequest{})
		return fmt.Errorf("start BGP: watch peers: %w", err)
	}
	s.running, s.asn, s.cancel = true, asn, cancel
	s.log.Info("BGP speaker started", "asn", asn, "routerID", s.cfg.RouterID, "local", s.cfg.Local)
	return nil
}

// importPolicy is the global import policy: only this host's own routes
// enter its table (GoBGP runs locally originated paths through the
// import policy too, so a plain default of reject would refuse them).
const importPolicy = "podnet-local-only"

// refuseImports makes the speaker take no route from its peers: a host
// announces, it does not route by BGP (and a full table from a router
// would cost memory for nothing).
func refuseImports(ctx context.Context, srv *server.BgpServer) error {
	var exists bool
	_ = srv.ListPolicy(ctx, &api.ListPolicyRequest{Name: importPolicy}, func(*api.Policy) { exists = true })
	if !exists {
		pol := &api.Policy{Name: importPolicy, Statements: []*api.Statement{{Name: importPolicy + "-own",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT}}}}
		if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
			return err
		}
	}
	return srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_IMPORT, Policies: []*api.Policy{{Name: importPolicy}},
		DefaultAction: api.RouteAction_REJECT}})
}

// onPeerEvent records a session's state change.
func (s *Speaker) onPeerEvent(r *api.WatchEventResponse) {
	ev := r.GetPeer()
	if ev == nil || ev.Type != api.WatchEventResponse_PeerEvent_STATE || ev.Peer == nil || ev.Peer.State == nil {
		return
	}
	a, err := netip.ParseAddr(ev.Peer.State.NeighborAddress)
	if err != nil {
		return
	}
	state := stateName(ev.Peer.State.SessionState)
	s.mu.Lock()
	old, known := s.states[a.Unmap()]
	p := s.peers[a.Unmap()]
	if known && old.state != state {
		s.states[a.Unmap()] = peerState{state: state, since: time.Now().UTC()}
	}
	s.mu.Unlock()
	if known && old.state != state {
		s.log.Info("BGP session "+state, "peer", p.Name, "address", a)
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
}

// apiPeer is a peer's GoBGP configuration.
func (s *Speaker) apiPeer(p store.BGPPeer) *api.Peer {
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.PeerAddress.Is6() {
		fam.Afi = api.Family_AFI_IP6
	}
	out := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.PeerAddress.String(), PeerAsn: p.PeerASN, LocalAsn: p.MyASN, AuthPassword: p.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{HoldTime: uint64(p.HoldTime), KeepaliveInterval: uint64(p.HoldTime / 3),
			ConnectRetry: uint64(s.cfg.ConnectRetry / time.Second), IdleHoldTimeAfterReset: uint64(s.cfg.ConnectRetry / time.Second)}},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}},
		Transport: &api.Transport{},
	}
	if s.cfg.Local.IsValid() && s.cfg.Local.Is4() == p.PeerAddress.Is4() {
		out.Transport.LocalAddress = s.cfg.Local.String()
	}
	return out
}

// path is the route to a: a /32 (/128), origin IGP, next hop "this host"
// (the unspecified address, which GoBGP replaces by the session's local
// address).
func path(a netip.Addr) *api.Path {
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: a.String(), PrefixLen: uint32(a.BitLen())})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	if a.Is4() {
		nh, _ := anypb.New(&api.NextHopAttribute{NextHop: "0.0.0.0"})
		return &api.Path{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Nlri: nlri,
			Pattrs: []*anypb.Any{origin, nh}}
	}
	fam := &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	mp, _ := anypb.New(&api.MpReachNLRIAttribute{Family: fam, NextHops: []string{"::"}, Nlris: []*anypb.Any{nlri}})
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: []*anypb.Any{origin, mp}}
}

// Sessions reports every session, by peer address.
func (s *Speaker) Sessions() []store.BGPSession {
	s.mu.Lock()
	srv := s.srv
	if !s.running {
		srv = nil
	}
	peers := make(map[netip.Addr]store.BGPPeer, len(s.peers))
	for a, p := range s.peers {
		peers[a] = p
	}
	states := make(map[netip.Addr]peerState, len(s.states))
	for a, st := range s.states {
		states[a] = st
	}
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	routes := map[netip.Addr]int{}
	_ = srv.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		if p.State == nil {
			return
		}
		a, err := netip.ParseAddr(p.State.NeighborAddress)
		if err != nil {
			return
		}
		n := 0
		for _, af := range p.AfiSafis {
			if af.State != nil {
				n += int(af.State.Advertised)
			}
		}
		routes[a.Unmap()] = n
	})
	out := make([]store.BGPSession, 0, len(peers))
	for a, p := range peers {
		st := states[a]
		out = append(out, store.BGPSession{Peer: p.Name, Address: a, State: st.state, Since: st.since, Routes: routes[a]})
	}
	slices.SortFunc(out, func(x, y store.BGPSession) int { return x.Address.Compare(y.Address) })
	return out
}

// metrics is the source of podnet_bgp_session_up and
// podnet_bgp_routes_advertised.
func (s *Speaker) metrics() []metrics.BGPSession {
	var out []metrics.BGPSession
	for _, ss := range s.Sessions() {
		out = append(out, metrics.BGPSession{Peer: ss.Peer, Up: ss.State == "Established", Routes: ss.Routes})
	}
	return out
}

// Stop closes every session (with a Cease notification: routers
// withdraw this host's routes at once) and stops GoBGP.
func (s *Speaker) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// stopLocked stops BGP: StopBgp sends every peer a Cease notification
// (peer de-configured) before it closes the sessions.
func (s *Speaker) stopLocked() {
	if !s.running {
		return
	}
	s.cancel()
	_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
	s.running, s.asn = false, 0
	clear(s.peers)
	clear(s.routes)
	clear(s.states)
	s.log.Info("BGP speaker stopped")
}

// stateName turns GoBGP's session state into RFC 4271's name.
func stateName(st api.PeerState_SessionState) string {
	switch st {
	case api.PeerState_IDLE:
		return "Idle"
	case api.PeerState_CONNECT:
		return "Connect"
	case api.PeerState_ACTIVE:
		return "Active"
	case api.PeerState_OPENSENT:
		return "OpenSent"
	case api.PeerState_OPENCONFIRM:
		return "OpenConfirm"
	case api.PeerState_ESTABLISHED:
		return "Established"
	}
	return strings.ToLower(st.String())
}
