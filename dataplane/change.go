package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrServicesNotSet: a Change that is not a Replace before the first
// Replace. Until then the kernel holds the previous podnetd's service
// rules, which the first Replace is diffed against; a partial change
// cannot be merged into rules the engine does not know yet.
var ErrServicesNotSet = errors.New("services not set yet: the first change must be a Replace")

// Change is one change set of the desired state that the control plane
// hands the data plane: Apply programs all of it as one nftables
// transaction, whose cost is what the change touches (the map elements,
// chains and sets of the services in it), not the size of the table. Each
// kind of object has a section of the same shape (Replace, Upsert,
// Remove); today there are services.
type Change struct {
	Services ServiceChanges
}

// ServiceChanges is the services section of a Change.
type ServiceChanges struct {
	// Replace says Upsert is the whole desired set: every service not in
	// it is removed, and the kernel's service section is compared with
	// it element by element (the first Change after a start must be a
	// Replace: the previous podnetd's rules then stay in place wherever
	// they are still right; a periodic Replace repairs drift).
	Replace bool
	// Upsert adds services or replaces the service of the same name. A
	// name given twice keeps its first entry.
	Upsert []Service
	// Remove names services to remove; unknown names are no error.
	// Ignored with Replace.
	Remove []string
}

func (c ServiceChanges) empty() bool { return !c.Replace && len(c.Upsert)+len(c.Remove) == 0 }

// Result says how Apply left what its change named.
type Result struct {
	// Services holds every service of the change (after a Replace: every
	// service): nil when it is programmed (or headless: it needs no
	// rules), else why not: errors.Is ErrServiceConflict (another service
	// answers on one of its addresses and ports; it is tried again
	// whenever a change releases an address or port, and such retries are
	// reported here too) or ErrServiceNotProgrammed (the kernel refused
	// its rules; they are left out).
	Services map[string]error
	// Programmed and Failing count the engine's services after the
	// change (headless ones among the programmed).
	Programmed, Failing int
	// Kernel counts the kernel objects the transaction added, replaced or
	// deleted (map and set elements, chains, sets; not the element sums
	// of svc-sums that go with them): 0 when the change left the rules as
	// they were.
	Kernel int
	// Took is how long programming the change took, conntrack cleanup
	// included.
	Took time.Duration
}

// Apply programs c as one nftables transaction and returns what became of
// the services it named. A service that cannot be programmed does not fail
// the others: it is left out, logged and reported in Result.Services. Apply
// returns an error only when it changed nothing (the context ended, a
// change before the first Replace, the kernel refusing even a table
// without the change); memory then stays as the kernel has it.
//
// When the kernel refuses the transaction as a whole, the engine programs
// the change one service at a time, so that a culprit is named and the
// others work. Conntrack entries of UDP and SCTP flows that the change
// leaves pointing nowhere are deleted afterwards (see svcFlows).
func (e *Engine) Apply(ctx context.Context, c Change) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	e.mu.Lock()
	var res Result
	var flows flowCleanup
	var err error
	switch {
	case c.Services.Replace:
		res, flows, err = e.replaceServicesLocked(c.Services.Upsert)
	case c.Services.empty():
		res.Programmed, res.Failing = e.svc.counts()
	case !e.svc.known:
		err = fmt.Errorf("apply %d service changes: %w", len(c.Services.Upsert)+len(c.Services.Remove), ErrServicesNotSet)
	default:
		res, flows, err = e.changeServicesLocked(c.Services)
	}
	e.mu.Unlock()
	if err != nil {
		return Result{}, err
	}
	e.flushServiceConntrack(flows.services)
	if flows.restart != nil {
		n, err := e.ct.deleteFlows([]family{ipv4, ipv6}, flows.restart)
		e.logFlush("service restart", n, err)
	}
	res.Took = time.Since(start)
	return res, nil
}
