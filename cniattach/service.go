package cniattach

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/dockerwatch"
	"github.com/podnet/podnet/driver"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/internal/fault"
	"github.com/podnet/podnet/store"
)

// Driver is what the service needs of podnet's network driver.
type Driver interface {
	NetworkByPool(pool netip.Prefix) (store.Network, bool)
	Attach(ctx context.Context, s driver.AttachSpec) (*store.Endpoint, error)
	Detach(ctx context.Context, id string) (*store.Endpoint, error)
	Attachment(id string) (store.Endpoint, bool)
	CheckAttachment(id string) (*store.Endpoint, error)
	Attachments() []store.Endpoint
	DeadAttachments(grace time.Duration) ([]store.Endpoint, error)
}

// IPAM is what the service needs of podnet's IPAM: the calls Docker's
// container starts use.
type IPAM interface {
	RequestAddress(ctx context.Context, r *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error)
	ReleaseAddress(ctx context.Context, r *ipam.ReleaseAddressRequest) error
}

// Records reads address records (CHECK verifies the reservation).
type Records interface {
	Get(ctx context.Context, key string, v any) (int64, error)
}

// Config wires a Service.
type Config struct {
	Driver  Driver
	IPAM    IPAM
	Records Records
	Logger  *slog.Logger
	// DNS is what results carry for resolv.conf: the cluster DNS and its
	// search domain (zero: none).
	DNS admin.CNIDNS
}

// Service serves the CNI plugin's requests.
type Service struct {
	cfg Config
	log *slog.Logger
	// busy holds the endpoints with an ADD or DEL in progress: GC leaves
	// them alone, and a second request for one waits for the first.
	mu   sync.Mutex
	busy map[string]chan struct{}
}

// New builds a Service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, log: cfg.Logger, busy: map[string]chan struct{}{}}
}

// Errors callers (and tests) tell apart; both are the caller's fault
// (errors.Is(err, fault.ErrInvalid): HTTP 400).
var (
	// ErrInvalid is a request the plugin should never have sent.
	ErrInvalid = fault.New("invalid CNI request")
	// ErrNoNetwork is a subnet no podnet network of this host has.
	ErrNoNetwork = fault.New("no podnet network with that subnet on this host")
)

// EndpointID is the endpoint of a CNI attachment: CNI names an attachment
// by network, container and interface, and the same triple must name the
// same endpoint (a retried ADD, a DEL after a podnetd restart). The form
// is Docker's (64 hex digits), so every podnet name derived from endpoint
// IDs (pnh<12>, pnc<12>) works unchanged.
func EndpointID(network, containerID, ifname string) string {
	h := sha256.Sum256([]byte("podnet-cni\x00" + network + "\x00" + containerID + "\x00" + ifname))
	return hex.EncodeToString(h[:])
}

func validate(r *admin.CNIRequest) error {
	switch {
	case r.Network == "":
		return fmt.Errorf("%w: no network name", ErrInvalid)
	case !r.Subnet.IsValid():
		return fmt.Errorf("%w: network %s: no subnet", ErrInvalid, r.Network)
	case r.ContainerID == "":
		return fmt.Errorf("%w: no container ID", ErrInvalid)
	case r.IfName == "":
		return fmt.Errorf("%w: no interface name", ErrInvalid)
	}
	return nil
}

// lock waits until no other request works on endpoint id and claims it.
func (s *Service) lock(ctx context.Context, id string) (func(), error) {
	for {
		if unlock, ok := s.tryLock(id); ok {
			return unlock, nil
		}
		s.mu.Lock()
		ch, held := s.busy[id]
		s.mu.Unlock()
		if !held {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("endpoint %s: another request for the same attachment is still running: %w", dockerid.Short(id), ctx.Err())
		}
	}
}

// tryLock claims endpoint id if no request works on it.
func (s *Service) tryLock(id string) (func(), bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, held := s.busy[id]; held {
		return nil, false
	}
	ch := make(chan struct{})
	s.busy[id] = ch
	return func() {
		s.mu.Lock()
		delete(s.busy, id)
		s.mu.Unlock()
		close(ch)
	}, true
}

// network finds the podnet network of r on this host.
func (s *Service) network(r *admin.CNIRequest) (store.Network, error) {
	n, ok := s.cfg.Driver.NetworkByPool(r.Subnet)
	if !ok {
		return n, fmt.Errorf("network %s: %w: %s (create it here with docker network create -d podnet --ipam-driver podnet --subnet %s, or define it for every host with podnetctl network create)",
			r.Network, ErrNoNetwork, r.Subnet, r.Subnet)
	}
	return n, driver.CanAttach(n)
}

// Add attaches a container: addresses from podnet's IPAM (this host's
// blocks), then the driver's endpoint. Whatever fails is undone, so a
// failed ADD leaves no address, interface, rule or record behind.
func (s *Service) Add(ctx context.Context, r *admin.CNIRequest) (admin.CNIResult, error) {
	start := time.Now()
	if err := validate(r); err != nil {
		return admin.CNIResult{}, err
	}
	n, err := s.network(r)
	if err != nil {
		return admin.CNIResult{}, err
	}
	ports, err := bindings(r.Ports)
	if err != nil {
		return admin.CNIResult{}, err
	}
	id := EndpointID(r.Network, r.ContainerID, r.IfName)
	unlock, err := s.lock(ctx, id)
	if err != nil {
		return admin.CNIResult{}, err
	}
	defer unlock()
	if ep, ok := s.cfg.Driver.Attachment(id); ok {
		// An ADD retried after a lost answer: the same attachment.
		return s.result(n, &ep), nil
	}
	addrs, err := s.allocate(ctx, n, r.IPs)
	if err != nil {
		return admin.CNIResult{}, err
	}
	spec := driver.AttachSpec{ID: id, Network: n.ID, MAC: r.MAC, Ports: ports,
		CNI:  store.CNIAttachment{Network: r.Network, ContainerID: r.ContainerID, IfName: r.IfName, NetNS: r.NetNS},
		Meta: store.EndpointMeta{Container: r.ContainerID, Name: r.Name, Aliases: aliases(r.ContainerID, r.Name, r.Aliases), Ready: true}}
	for _, a := range addrs {
		if a.Addr().Is4() {
			spec.IPv4 = a
		} else {
			spec.IPv6 = a
		}
	}
	ep, err := s.cfg.Driver.Attach(ctx, spec)
	if err != nil {
		s.release(context.WithoutCancel(ctx), addrs)
		return admin.CNIResult{}, err
	}
	s.log.Info("CNI attachment added", "network", r.Network, "container", dockerid.Short(r.ContainerID), "ifname", r.IfName,
		"name", r.Name, "endpoint", dockerid.Short(id), "ipv4", ep.IPv4, "ipv6", ep.IPv6, "ports", len(ep.Ports), "dur", time.Since(start).Round(time.Microsecond))
	return s.result(n, ep), nil
}

// allocate takes one address per family the network has, from the
// subnet holding the requested address of that family or else the first
// subnet with a free one (as Docker moves on to a network's next pool).
func (s *Service) allocate(ctx context.Context, n store.Network, want []netip.Addr) ([]netip.Prefix, error) {
	var got []netip.Prefix
	for _, subs := range [][]store.Subnet{n.IPv4, n.IPv6} {
		if len(subs) == 0 {
			continue
		}
		a, err := s.allocateIn(ctx, n, subs, want)
		if err != nil {
			s.release(context.WithoutCancel(ctx), got)
			return nil, err
		}
		got = append(got, a)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(p netip.Prefix) bool { return p.Addr() == w }) {
			s.release(context.WithoutCancel(ctx), got)
			return nil, fmt.Errorf("%w: requested address %s is in no subnet of network %s (%s)", ErrInvalid, w, dockerid.Short(n.ID), subnetList(n))
		}
	}
	return got, nil
}

func (s *Service) allocateIn(ctx context.Context, n store.Network, subs []store.Subnet, want []netip.Addr) (netip.Prefix, error) {
	for _, w := range want {
		for _, sub := range subs {
			if sub.Pool.Masked().Contains(w) {
				return s.request(ctx, sub.Pool, w.String())
			}
		}
	}
	var errs []error
	for _, sub := range subs {
		a, err := s.request(ctx, sub.Pool, "")
		if err == nil {
			return a, nil
		}
		errs = append(errs, err)
	}
	return netip.Prefix{}, fmt.Errorf("network %s: %w", dockerid.Short(n.ID), errors.Join(errs...))
}

func (s *Service) request(ctx context.Context, pool netip.Prefix, addr string) (netip.Prefix, error) {
	resp, err := s.cfg.IPAM.RequestAddress(ctx, &ipam.RequestAddressRequest{PoolID: pool.Masked().String(), Address: addr})
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := netip.ParsePrefix(resp.Address)
	if err != nil {
		_ = s.cfg.IPAM.ReleaseAddress(context.WithoutCancel(ctx), &ipam.ReleaseAddressRequest{PoolID: pool.Masked().String(), Address: strings.Split(resp.Address, "/")[0]})
		return netip.Prefix{}, fmt.Errorf("address %q from IPAM: %w", resp.Address, err)
	}
	return p, nil
}

// release gives addresses back; they carry their pool's mask.
func (s *Service) release(ctx context.Context, addrs []netip.Prefix) error {
	var errs []error
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		if err := s.cfg.IPAM.ReleaseAddress(ctx, &ipam.ReleaseAddressRequest{PoolID: a.Masked().String(), Address: a.Addr().String()}); err != nil {
			errs = append(errs, err)
			s.log.Warn("address not released; garbage collection will", "address", a.Addr(), "err", err)
		}
	}
	return errors.Join(errs...)
}

// Del detaches a container: the driver's endpoint, then its addresses.
// An attachment podnet does not know is no error (DEL is idempotent).
func (s *Service) Del(ctx context.Context, r *admin.CNIRequest) error {
	if err := validate(r); err != nil {
		return err
	}
	id := EndpointID(r.Network, r.ContainerID, r.IfName)
	unlock, err := s.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	return s.remove(ctx, id, "DEL")
}

// remove detaches endpoint id and releases its addresses.
func (s *Service) remove(ctx context.Context, id, why string) error {
	ep, err := s.cfg.Driver.Detach(ctx, id)
	if ep == nil {
		return err
	}
	rerr := s.release(ctx, []netip.Prefix{ep.IPv4, ep.IPv6})
	if err := errors.Join(err, rerr); err != nil {
		return fmt.Errorf("remove CNI attachment %s: %w", dockerid.Short(id), err)
	}
	c := ep.CNI
	if c == nil {
		c = &store.CNIAttachment{}
	}
	s.log.Info("CNI attachment removed", "why", why, "network", c.Network, "container", dockerid.Short(c.ContainerID),
		"ifname", c.IfName, "endpoint", dockerid.Short(id), "ipv4", ep.IPv4, "ipv6", ep.IPv6)
	return nil
}

// Check verifies the host side of an attachment: its record, its address
// reservations and its interface on the network's bridge. The plugin
// checks the container side.
func (s *Service) Check(ctx context.Context, r *admin.CNIRequest) (admin.CNIResult, error) {
	if err := validate(r); err != nil {
		return admin.CNIResult{}, err
	}
	n, err := s.network(r)
	if err != nil {
		return admin.CNIResult{}, err
	}
	id := EndpointID(r.Network, r.ContainerID, r.IfName)
	ep, err := s.cfg.Driver.CheckAttachment(id)
	if err != nil {
		return admin.CNIResult{}, fmt.Errorf("container %s on network %s: %w", dockerid.Short(r.ContainerID), r.Network, err)
	}
	for _, a := range []netip.Prefix{ep.IPv4, ep.IPv6} {
		if !a.IsValid() {
			continue
		}
		var rec store.Address
		if _, err := s.cfg.Records.Get(ctx, store.AddrKey(a.Masked(), a.Addr()), &rec); err != nil {
			return admin.CNIResult{}, fmt.Errorf("address %s of container %s: reservation: %w", a.Addr(), dockerid.Short(r.ContainerID), err)
		}
		if rec.Endpoint != id {
			return admin.CNIResult{}, fmt.Errorf("address %s of container %s is recorded for endpoint %q, not this attachment's %s", a.Addr(), dockerid.Short(r.ContainerID), dockerid.Short(rec.Endpoint), dockerid.Short(id))
		}
	}
	return s.result(n, ep), nil
}

// bindings turns the portMappings capability into published ports.
func bindings(ps []admin.CNIPort) ([]dataplane.Binding, error) {
	out := make([]dataplane.Binding, 0, len(ps))
	for _, p := range ps {
		b := dataplane.Binding{HostPort: p.HostPort, HostPortEnd: p.HostPort, ContainerPort: p.ContainerPort}
		proto, ok := store.ParseProtocol(p.Protocol)
		if !ok {
			return nil, fmt.Errorf("%w: port mapping %d:%d: protocol %q is not tcp, udp or sctp", ErrInvalid, p.HostPort, p.ContainerPort, p.Protocol)
		}
		b.Proto = dataplane.Proto(proto.Lower())
		if p.ContainerPort == 0 {
			return nil, fmt.Errorf("%w: port mapping to container port 0", ErrInvalid)
		}
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			b.HostIP = p.HostIP.Unmap()
		}
		out = append(out, b)
	}
	return out, nil
}

// aliases are the network aliases as the Docker watcher keeps them
// (without the short container ID podman adds), minus the container's
// own name: the cluster DNS answers names, not IDs.
func aliases(containerID, name string, in []string) []string {
	return slices.DeleteFunc(dockerwatch.Aliases(containerID, in), func(a string) bool { return a == name })
}

func subnetList(n store.Network) string {
	var parts []string
	for _, p := range n.Pools() {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ", ")
}
