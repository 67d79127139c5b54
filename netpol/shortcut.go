package netpol

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/podnet/podnet/policy"
)

// Lifting the isolation of a new endpoint before the Docker watcher could
// inspect its container. Docker never tells the driver which container an
// endpoint is for, and inspecting a container blocks until its start is
// over (its process runs by then). But Docker announces, before the
// process starts, that container C connected to network N (a network
// event, after the endpoint's Join), and the watcher knows C's labels
// (from C's create event, or from its listing of the host's containers).
//
// Which pending endpoint is C's is still unknown, but it does not matter
// when it cannot change the rules: when the pending (label-less) local
// endpoints of N are exactly as many as the containers announced on N
// and not yet matched, and every one of those containers is selected by
// exactly the same selectors of every policy (so whichever endpoint is
// whose, the compiled rules are the same), each endpoint gets those
// rules at once. Why the endpoints belong to those containers: every
// announced container has an endpoint on N, created before the
// announcement; it is still pending unless it went away — and an
// endpoint that went away while pending after the announcement (less a
// second, for clock and event-order slack) disables the shortcut for N.
// So the announced containers own that many pending endpoints of N,
// which is all of them.
//
// The inference holds for the policies of the moment only: any policy
// change withdraws it (the endpoints are pending again until the watcher
// reports them exactly, some 10-100 ms later). Labels that came from a
// create event are Docker's event attributes, in which "name" and
// "image" replace labels of those keys: when a selector looks at either
// key, the shortcut is not taken. Nothing here can open an endpoint a
// policy isolates; at worst it does not help.

// hint is one announced connection.
type hint struct {
	labels map[string]string
	at     time.Time // Docker's event time (this host's clock)
}

// hintSlack absorbs event-order and clock differences between Docker's
// event times and podnetd's.
const hintSlack = time.Second

// hintMaxAge drops announcements no endpoint ever matched.
const hintMaxAge = time.Minute

// Connected takes Docker's announcement that container connected to
// network (labels as the watcher knows them; nil when it does not).
func (a *Agent) Connected(ctx context.Context, network, container string, labels map[string]string, at time.Time) {
	if labels == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.eps {
		if e.Network == network && e.exact && e.container == container {
			return // already known exactly
		}
	}
	hs := a.hints[network]
	if hs == nil {
		hs = map[string]hint{}
		a.hints[network] = hs
	}
	hs[container] = hint{labels: maps.Clone(labels), at: at}
	if a.shortcutLocked(network) && a.synced {
		if err := a.programLocked(ctx, time.Time{}); err != nil {
			a.log.Warn("policy rules of a starting container not programmed yet; retrying", "container", container, "err", err)
			a.poke()
		}
	}
}

// Disconnected takes Docker's announcement that container left network.
func (a *Agent) Disconnected(network, container string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if hs := a.hints[network]; hs != nil {
		delete(hs, container)
	}
}

// shortcutLocked gives the pending endpoints of network the labels of
// the announced containers when that is safe (see above), and reports
// whether it did.
func (a *Agent) shortcutLocked(network string) bool {
	hs := a.hints[network]
	now := time.Now()
	for c, h := range hs {
		if now.Sub(h.at) > hintMaxAge {
			delete(hs, c)
		}
	}
	var pending []*localEP
	for _, e := range a.eps {
		if e.Network == network && e.Enforced && !e.known {
			pending = append(pending, e)
		}
	}
	if len(pending) == 0 || len(pending) != len(hs) {
		return false
	}
	oldest := now
	sig := ""
	var labels map[string]string
	for _, c := range slices.Sorted(maps.Keys(hs)) {
		h := hs[c]
		if h.at.Before(oldest) {
			oldest = h.at
		}
		s, ok := a.signature(h.labels)
		if !ok || (labels != nil && s != sig) {
			return false
		}
		sig, labels = s, h.labels
	}
	if loss, ok := a.lastLoss[network]; ok && loss.After(oldest.Add(-hintSlack)) {
		return false
	}
	for _, e := range pending {
		e.labels, e.known, e.exact = maps.Clone(labels), true, false
	}
	delete(a.hints, network)
	return true
}

// signature is which of the policies' selectors labels match; ok is false
// when labels cannot be trusted for some selector.
func (a *Agent) signature(labels map[string]string) (string, bool) {
	var keys []string
	for k, sel := range a.selectors {
		if policy.References(sel, "name") || policy.References(sel, "image") {
			return "", false
		}
		if policy.Matches(sel, labels) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, "\x00"), true
}
