package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dnet "github.com/docker/docker/api/types/network"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/dockerup"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/netspec"
	"github.com/podnet/podnet/store"
)

// NetworkDocker is the part of the Docker API NetSync uses.
type NetworkDocker interface {
	NetworkInspect(ctx context.Context, networkID string, options dnet.InspectOptions) (dnet.Inspect, error)
	NetworkCreate(ctx context.Context, name string, options dnet.CreateOptions) (dnet.CreateResponse, error)
	NetworkRemove(ctx context.Context, networkID string) error
}

// NetSyncConfig wires a NetSync.
type NetSyncConfig struct {
	Store  *store.Store
	Docker NetworkDocker
	// Driver is the name Docker knows podnet by on this host ("podnet", or
	// "podnet:latest" for the managed plugin).
	Driver string
	// Host is this host's name in etcd (for per-host parents).
	Host   string
	Logger *slog.Logger
	// Retry is how often unfinished work is retried (default 10 s).
	Retry time.Duration
	// Reach is podnetd's shared view of whether Docker answers; nil:
	// NetSync's own.
	Reach *dockerup.Tracker
	// Feeds are the etcd prefixes it reads, shared with podnetd's other
	// readers (nil: its own, from Store).
	Feeds *feed.Hub
}

// NetSync makes this host's Docker networks follow the named network
// definitions (podnetctl network create/rm): it creates a Docker network
// for each definition and removes it when the definition is being
// deleted. It runs in the background, never inside a plugin request
// (creating a Docker network calls back into the plugin).
type NetSync struct {
	cfg  NetSyncConfig
	log  *slog.Logger
	mu   sync.Mutex
	defs map[string]store.LogicalNetwork
	kick chan struct{}
	// invalid holds, per network name, the reason its definition cannot
	// be created anywhere, as last logged (logged once, not every retry).
	invalid map[string]string
}

// NewNetSync returns a NetSync.
func NewNetSync(cfg NetSyncConfig) *NetSync {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Retry == 0 {
		cfg.Retry = 10 * time.Second
	}
	if cfg.Reach == nil {
		cfg.Reach = dockerup.New(cfg.Logger, "")
	}
	return &NetSync{cfg: cfg, log: cfg.Logger, defs: map[string]store.LogicalNetwork{}, kick: make(chan struct{}, 1),
		invalid: map[string]string{}}
}

// Snapshot implements store.Follower.
func (s *NetSync) Snapshot(kvs []store.KV) {
	defs := map[string]store.LogicalNetwork{}
	for _, kv := range kvs {
		var d store.LogicalNetwork
		if err := kv.Decode(&d); err != nil {
			s.log.Warn("undecodable network definition ignored", "key", kv.Key, "err", err)
			continue
		}
		defs[kv.Key] = d
	}
	s.mu.Lock()
	s.defs = defs
	s.mu.Unlock()
	s.poke()
}

// Changes implements store.Follower.
func (s *NetSync) Changes(evs []store.Event) {
	s.mu.Lock()
	for _, e := range evs {
		if e.Type == store.EventDelete {
			delete(s.defs, e.Key)
			continue
		}
		var d store.LogicalNetwork
		if err := (store.KV{Key: e.Key, Value: e.Value}).Decode(&d); err != nil {
			s.log.Warn("undecodable network definition ignored", "key", e.Key, "err", err)
			delete(s.defs, e.Key)
			continue
		}
		s.defs[e.Key] = d
	}
	s.mu.Unlock()
	s.poke()
}

func (s *NetSync) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run follows the definitions and applies them until ctx ends.
func (s *NetSync) Run(ctx context.Context) {
	feeds := s.cfg.Feeds
	if feeds == nil {
		feeds = feed.Start(ctx, s.cfg.Store, s.log)
	}
	defer feeds.Subscribe(store.LNetsPrefix, s)()
	t := time.NewTicker(s.cfg.Retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		s.apply(ctx)
	}
}

func (s *NetSync) apply(ctx context.Context) {
	s.mu.Lock()
	defs := make([]store.LogicalNetwork, 0, len(s.defs))
	for key, d := range s.defs {
		switch {
		case d.Name == "":
		case len(d.Subnets) == 0:
			s.log.Warn("network definition without subnets ignored", "key", key, "network", d.Name)
		default:
			defs = append(defs, d)
		}
	}
	s.mu.Unlock()
	for _, d := range defs {
		var err error
		if d.Deleting {
			err = s.remove(ctx, d)
		} else {
			err = s.ensure(ctx, d)
		}
		if s.cfg.Reach.Observe(ctx, err) {
			// Docker is down (the tracker says so once): the other
			// definitions wait for the next round too.
			s.log.Debug("network definitions wait for Docker", "network", d.Name, "err", err)
			return
		}
		switch {
		case errors.Is(err, fault.ErrInvalid):
			// Stored before podnetctl validated definitions: no host can
			// create it, and retrying only repeats the driver's refusal.
			if s.invalid[d.Name] != err.Error() {
				s.invalid[d.Name] = err.Error()
				s.log.Error("network definition cannot be created on any host; remove it with podnetctl network rm",
					"network", d.Name, "err", err)
			}
		case err != nil:
			s.log.Warn("network definition not applied yet; retrying", "network", d.Name, "err", err)
		default:
			delete(s.invalid, d.Name)
		}
	}
}

// ensure creates the Docker network of d unless it exists.
func (s *NetSync) ensure(ctx context.Context, d store.LogicalNetwork) error {
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	have, err := s.cfg.Docker.NetworkInspect(cctx, d.Name, dnet.InspectOptions{})
	if err == nil {
		if have.Driver != s.cfg.Driver || !hasSubnet(have, d.Subnets[0]) {
			return fmt.Errorf("a Docker network named %q already exists here (driver %s) and is not this definition: rename or remove it", d.Name, have.Driver)
		}
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect Docker network %q: %w", d.Name, err)
	}
	opts := map[string]string{netspec.OptMode: d.Mode}
	for k, v := range d.Options {
		opts[k] = v
	}
	if d.MTU != 0 {
		opts[netspec.OptMTU] = strconv.Itoa(d.MTU)
	}
	if d.VNI != 0 {
		opts[netspec.OptVNI] = strconv.Itoa(d.VNI)
	}
	if p, ok := d.Parents[s.cfg.Host]; ok {
		opts[netspec.OptParent] = p // this host names the parent differently
	}
	ipam := &dnet.IPAM{Driver: s.cfg.Driver}
	if p := opts[netspec.OptParent]; netspec.IsLAN(d.Mode) && p != "" {
		// A macvlan/ipvlan network may sit on its parent's own subnet:
		// IPAM lifts its refusal of that interface's network only when
		// told (the driver checks that it is the network's parent).
		ipam.Options = map[string]string{netspec.OptParent: p}
	}
	spec := netspec.Spec{Options: opts, Internal: d.Internal}
	for _, sub := range d.Subnets {
		c := dnet.IPAMConfig{Subnet: sub.String()}
		ns := netspec.Subnet{Pool: sub}
		if g, ok := d.Gateways[sub]; ok {
			c.Gateway, ns.Gateway = g.String(), g
		}
		if r, ok := d.IPRanges[sub]; ok {
			c.IPRange, ns.IPRange = r.String(), r
		}
		ipam.Config = append(ipam.Config, c)
		spec.Subnets = append(spec.Subnets, ns)
	}
	// The driver would refuse it with the same words: say so here, once,
	// instead of asking Docker every retry. Availability is the driver's
	// to judge (this host may lack vxlan while others have it).
	if _, err := netspec.Validate(spec, []string{d.Mode}); err != nil && !errors.Is(err, netspec.ErrModeUnavailable) {
		return fmt.Errorf("definition of network %q: %w", d.Name, err)
	}
	v6 := d.IPv6
	_, err = s.cfg.Docker.NetworkCreate(cctx, d.Name, dnet.CreateOptions{Driver: s.cfg.Driver, IPAM: ipam, Options: opts,
		Internal: d.Internal, EnableIPv6: &v6, Labels: map[string]string{"podnet.network": d.Name}})
	if err != nil {
		return fmt.Errorf("create Docker network %q: %w", d.Name, err)
	}
	s.log.Info("Docker network created from definition", "network", d.Name, "subnets", d.Subnets)
	return nil
}

// remove deletes the Docker network of d if it exists and is ours.
func (s *NetSync) remove(ctx context.Context, d store.LogicalNetwork) error {
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	have, err := s.cfg.Docker.NetworkInspect(cctx, d.Name, dnet.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if have.Driver != s.cfg.Driver || !hasSubnet(have, d.Subnets[0]) {
		return nil // someone else's network of that name
	}
	if err := s.cfg.Docker.NetworkRemove(cctx, have.ID); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove Docker network %q: %w", d.Name, err)
	}
	s.log.Info("Docker network removed by definition", "network", d.Name)
	return nil
}

// hasSubnet says whether Docker network n has subnet (a subnet Docker
// reports that does not parse is not podnet's).
func hasSubnet(n dnet.Inspect, subnet netip.Prefix) bool {
	for _, c := range n.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Masked() == subnet.Masked() {
			return true
		}
	}
	return false
}
