package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-iptables/iptables"
)

// acceptsBackend keeps podnet's accepts in Docker's iptables FORWARD path;
// faked in unit tests.
type acceptsBackend interface {
	ensure() error
	intact() (bool, error)
	cleanup() error
}

// Chains of Docker's we hook into. Docker owns them; we only insert a jump.
const (
	filterTable    = "filter"
	dockerUser     = "DOCKER-USER"
	forwardChain   = "FORWARD"
	backendAuto    = "auto"
	backendNFT     = "nft"
	backendLegacy  = "legacy"
	legacyTables4  = "/proc/thread-self/net/ip_tables_names"
	legacyTables6  = "/proc/thread-self/net/ip6_tables_names"
	iptablesJumpTo = "-j"
)

// iptAccepts implements acceptsBackend with go-iptables, which runs the
// iptables binary once per call (~10 ms): it is used only from Sync, the
// canary and Cleanup, never on the Publish path.
type iptAccepts struct {
	log     *slog.Logger
	chain   string // PODNET-FORWARD
	prefix  string // pn-
	backend string // auto, nft, legacy

	mu      sync.Mutex
	handles map[string]*iptables.IPTables // by binary name
	used    map[family]string             // binary of the last ensure per family
}

func newIPTAccepts(log *slog.Logger, chain, prefix, backend string) *iptAccepts {
	return &iptAccepts{log: log, chain: chain, prefix: prefix, backend: backend,
		handles: map[string]*iptables.IPTables{}, used: map[family]string{}}
}

// binaries returns the default, nft and legacy iptables binaries of f.
func binaries(f family) (def, nft, legacy string) {
	if f == ipv4 {
		return "iptables", "iptables-nft", "iptables-legacy"
	}
	return "ip6tables", "ip6tables-nft", "ip6tables-legacy"
}

// handle returns a go-iptables handle for binary name (New runs
// `<name> --version` once), or nil when the binary is not installed.
func (a *iptAccepts) handle(name string, f family) (*iptables.IPTables, error) {
	if h, ok := a.handles[name]; ok {
		return h, nil
	}
	if !installed(name) {
		return nil, nil
	}
	proto := iptables.ProtocolIPv4
	if f == ipv6 {
		proto = iptables.ProtocolIPv6
	}
	h, err := iptables.New(iptables.Path(name), iptables.IPFamily(proto))
	if err != nil {
		return nil, fmt.Errorf("iptables binary %s: %w", name, err)
	}
	a.handles[name] = h
	return h, nil
}

func installed(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// legacyFilterLoaded reports whether the legacy (x_tables) filter table
// exists in this network namespace. Asking iptables-legacy itself would
// create the table (and load its module) as a side effect. thread-self,
// not self: /proc/self/net shows the main thread's namespace.
func legacyFilterLoaded(f family) bool {
	path := legacyTables4
	if f == ipv6 {
		path = legacyTables6
	}
	b, err := os.ReadFile(path)
	return err == nil && slices.Contains(strings.Fields(string(b)), filterTable)
}

// resolve picks the binary for f: the configured backend, or in auto mode
// whichever backend holds Docker's DOCKER-USER chain (its FORWARD DROP
// lives there; `iptables-nft -S DOCKER-USER 1`, then iptables-legacy),
// else the system default.
func (a *iptAccepts) resolve(f family) (string, *iptables.IPTables, error) {
	def, nft, legacy := binaries(f)
	switch a.backend {
	case backendNFT:
		h, err := a.handle(nft, f)
		return nft, h, err
	case backendLegacy:
		h, err := a.handle(legacy, f)
		return legacy, h, err
	}
	candidates := []string{nft}
	if legacyFilterLoaded(f) {
		candidates = append(candidates, legacy)
	}
	for _, name := range candidates {
		h, err := a.handle(name, f)
		if err != nil || h == nil {
			continue
		}
		if ok, err := h.ChainExists(filterTable, dockerUser); err == nil && ok {
			return name, h, nil
		}
	}
	def = canonical(def, nft, legacy)
	h, err := a.handle(def, f)
	return def, h, err
}

// canonical names the backend the default binary runs: Debian's
// `iptables` is a symlink (via alternatives) to xtables-nft-multi or
// xtables-legacy-multi. Naming it iptables-nft or iptables-legacy lets the
// engine notice that "the default" and "the one holding DOCKER-USER" are
// the same backend, instead of moving its chain between two names of it.
func canonical(def, nft, legacy string) string {
	p, err := exec.LookPath(def)
	if err != nil {
		return def
	}
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return def
	}
	switch base := filepath.Base(target); {
	case strings.Contains(base, "legacy") && installed(legacy):
		return legacy
	case strings.Contains(base, "nft") && installed(nft):
		return nft
	}
	return def
}

// acceptSpecs are the rules of PODNET-FORWARD: traffic from and to podnet
// bridges, and connections a service rule DNATed (marked ctMarkService),
// which may cross no podnet bridge: a NodePort or external IP forwarded
// from the underlay to an endpoint on another host.
func (a *iptAccepts) acceptSpecs() [][]string {
	wild := a.prefix + "+"
	mark := fmt.Sprintf("%#x/%#x", ctMarkService, ctMarkService)
	return [][]string{
		{"-i", wild, iptablesJumpTo, "ACCEPT"},
		{"-o", wild, iptablesJumpTo, "ACCEPT"},
		{"-m", "connmark", "--mark", mark, iptablesJumpTo, "ACCEPT"},
	}
}

// wantRules is `iptables -S PODNET-FORWARD` when the chain is right.
func (a *iptAccepts) wantRules() []string {
	out := []string{"-N " + a.chain}
	for _, spec := range a.acceptSpecs() {
		out = append(out, "-A "+a.chain+" "+strings.Join(spec, " "))
	}
	return out
}

// ensure makes, for IPv4 and IPv6:
//
//	iptables -N PODNET-FORWARD
//	iptables -A PODNET-FORWARD -i pn-+ -j ACCEPT
//	iptables -A PODNET-FORWARD -o pn-+ -j ACCEPT
//	iptables -A PODNET-FORWARD -m connmark --mark 0x200000/0x200000 -j ACCEPT
//	iptables -I DOCKER-USER 1 -j PODNET-FORWARD   (or FORWARD without Docker)
//
// Docker sets FORWARD's policy to DROP and an accept in our nftables table
// cannot overrule another base chain's drop, so podnet's forwarded traffic
// must be accepted in Docker's own chains. Isolation drops stay in nftables.
func (a *iptAccepts) ensure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, f := range []family{ipv4, ipv6} {
		if err := a.ensureFamily(f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ensureFamily is ensure for one family; see ensure for the commands. It
// lists first and changes only what differs, so a Sync on a healthy host
// costs a few `-S`/`-C` execs and leaves the accepts untouched.
func (a *iptAccepts) ensureFamily(f family) error {
	name, h, err := a.resolve(f)
	if err != nil {
		return err
	}
	if h == nil {
		if f == ipv4 {
			return fmt.Errorf("ensure %s accepts: %s not installed", a.chain, name)
		}
		a.log.Debug("ip6tables not installed, skipping IPv6 accepts", "binary", name)
		return nil
	}
	if prev := a.used[f]; prev != "" && prev != name {
		// Docker moved to another backend: do not leave our chain behind.
		if ph, err := a.handle(prev, f); err == nil && ph != nil {
			if err := a.removeFrom(ph); err != nil {
				a.log.Warn("remove accepts from previous iptables backend", "binary", prev, "err", err)
			}
		}
	}
	// A missing chain lists as an error; ClearChain below creates it.
	rules, _ := h.List(filterTable, a.chain)
	if !slices.Equal(rules, a.wantRules()) {
		if err := h.ClearChain(filterTable, a.chain); err != nil {
			return fmt.Errorf("%s: flush chain %s: %w", name, a.chain, err)
		}
		for _, spec := range a.acceptSpecs() {
			if err := h.Append(filterTable, a.chain, spec...); err != nil {
				return fmt.Errorf("%s: append %q to %s: %w", name, strings.Join(spec, " "), a.chain, err)
			}
		}
		a.log.Debug("iptables accepts programmed", "binary", name, "chain", a.chain)
	}
	parent := forwardChain
	if ok, err := h.ChainExists(filterTable, dockerUser); err == nil && ok {
		parent = dockerUser
	}
	if ok, err := h.Exists(filterTable, parent, iptablesJumpTo, a.chain); err != nil || !ok {
		if err := h.Insert(filterTable, parent, 1, iptablesJumpTo, a.chain); err != nil {
			return fmt.Errorf("%s: insert jump %s -> %s: %w", name, parent, a.chain, err)
		}
		a.log.Debug("iptables jump inserted", "binary", name, "from", parent, "to", a.chain)
	}
	if parent == dockerUser {
		// A jump from FORWARD made before dockerd created DOCKER-USER.
		if err := h.DeleteIfExists(filterTable, forwardChain, iptablesJumpTo, a.chain); err != nil {
			return fmt.Errorf("%s: delete stale jump FORWARD -> %s: %w", name, a.chain, err)
		}
	}
	a.used[f] = name
	return nil
}

// intact is the iptables half of the canary: `iptables -S PODNET-FORWARD`
// shows our rules and `iptables -S DOCKER-USER` (or FORWARD) our jump, in
// the backend auto mode would choose now. Three or four execs per family
// (~10 ms each), so Run's interval should be seconds, not milliseconds.
func (a *iptAccepts) intact() (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range []family{ipv4, ipv6} {
		name, h, err := a.resolve(f)
		if err != nil {
			return false, err
		}
		if h == nil {
			continue
		}
		if a.used[f] != name {
			return false, nil
		}
		if rules, err := h.List(filterTable, a.chain); err != nil || !slices.Equal(rules, a.wantRules()) {
			return false, nil
		}
		jump := fmt.Sprintf("-A %s -j %s", dockerUser, a.chain)
		rules, err := h.List(filterTable, dockerUser)
		if err != nil {
			jump = fmt.Sprintf("-A %s -j %s", forwardChain, a.chain)
			if rules, err = h.List(filterTable, forwardChain); err != nil {
				return false, fmt.Errorf("%s: list FORWARD: %w", name, err)
			}
		}
		if !slices.Contains(rules, jump) {
			return false, nil
		}
	}
	return true, nil
}

// cleanup is, in every backend that may hold them:
//
//	iptables -D DOCKER-USER -j PODNET-FORWARD; iptables -D FORWARD -j PODNET-FORWARD
//	iptables -F PODNET-FORWARD; iptables -X PODNET-FORWARD
func (a *iptAccepts) cleanup() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, f := range []family{ipv4, ipv6} {
		def, nft, legacy := binaries(f)
		names := []string{a.used[f], nft}
		if a.backend == backendLegacy || legacyFilterLoaded(f) {
			names = append(names, legacy)
		}
		if !installed(nft) && !installed(legacy) {
			names = append(names, def)
		}
		seen := map[string]bool{}
		for _, name := range names {
			if name == "" || seen[name] {
				continue
			}
			seen[name] = true
			h, err := a.handle(name, f)
			if err != nil || h == nil {
				continue
			}
			if err := a.removeFrom(h); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
		delete(a.used, f)
	}
	return errors.Join(errs...)
}

// removeFrom is, in one backend: iptables -D DOCKER-USER -j PODNET-FORWARD;
// iptables -D FORWARD -j PODNET-FORWARD; iptables -F/-X PODNET-FORWARD —
// each only if present.
func (a *iptAccepts) removeFrom(h *iptables.IPTables) error {
	if ok, err := h.ChainExists(filterTable, a.chain); err != nil || !ok {
		return err
	}
	for _, parent := range []string{dockerUser, forwardChain} {
		if ok, err := h.ChainExists(filterTable, parent); err != nil || !ok {
			continue
		}
		if err := h.DeleteIfExists(filterTable, parent, iptablesJumpTo, a.chain); err != nil {
			return fmt.Errorf("delete jump %s -> %s: %w", parent, a.chain, err)
		}
	}
	if err := h.ClearAndDeleteChain(filterTable, a.chain); err != nil {
		return fmt.Errorf("delete chain %s: %w", a.chain, err)
	}
	return nil
}
