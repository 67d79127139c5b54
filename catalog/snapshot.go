package catalog

import (
	"net/netip"
	"time"

	"github.com/podnet/podnet/store"
)

// The catalog's readers never hold its lock: they get copies taken under
// it, a service at a time (Lookup), all of them (Snapshot), or what
// changed since they last asked (TakeDelta), each consistent with one
// instant of the view.

// ServiceState is one service as the catalog holds it at one instant:
// its record and its ready endpoints as host self sees them (running and
// healthy containers on live hosts, deduplicated by address: containers
// sharing one stack, host-mode containers of one host; sorted by address).
type ServiceState struct {
	// Service is shared: read it, never change it (an update replaces the
	// record, so it stays as read).
	Service   *store.Service
	Endpoints []Endpoint
	// LoadBalancerIPIsHost says the service's load-balancer address is
	// a registered host's underlay address (the proxy then leaves it out).
	LoadBalancerIPIsHost bool
	// ReservedExternalIPs are the service's external IPs that a
	// registered host reserves (store.Host.ReservedAddrs), with why: the
	// proxy leaves them out.
	ReservedExternalIPs map[netip.Addr]string
}

// Delta is what changed in the catalog since the last TakeDelta.
type Delta struct {
	// Full says Services holds every service (the first delta, one after
	// a prefix was listed again, or when the reader asked for all):
	// services the reader knows that it does not hold are gone.
	Full bool
	// Services maps every changed service to its state, nil when it is
	// gone.
	Services map[string]*ServiceState
	// Since holds, for changed services, the write time of the oldest
	// change the reader has not taken yet (zero when unknown: a host's
	// liveness, a listing).
	Since map[string]time.Time
}

// Lookup returns service name's state.
func (c *Catalog) Lookup(name string) (ServiceState, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.services[name]
	if !ok {
		return ServiceState{}, false
	}
	return c.stateLocked(s), true
}

// Snapshot returns every service's state, by name.
func (c *Catalog) Snapshot() map[string]*ServiceState {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]*ServiceState, len(c.services))
	for name, s := range c.services {
		st := c.stateLocked(s)
		out[name] = &st
	}
	return out
}

func (c *Catalog) stateLocked(s *store.Service) ServiceState {
	st := ServiceState{Service: s, Endpoints: readyEndpoints(c.resolveLocked(s), c.self)}
	if a := s.LoadBalancerIP; a.IsValid() {
		for _, u := range c.underlay {
			if u == a {
				st.LoadBalancerIPIsHost = true
				break
			}
		}
	}
	for _, a := range s.ExternalIPs {
		if why := c.reservedOf(a); why != "" {
			if st.ReservedExternalIPs == nil {
				st.ReservedExternalIPs = map[netip.Addr]string{}
			}
			st.ReservedExternalIPs[a] = why
		}
	}
	return st
}

// TakeDelta returns the services whose state may have changed since the
// last call (all of them when full, or when the catalog itself had to
// start over), and forgets them. A service marked changed may turn out
// the same as the reader last saw it: readers compare.
func (c *Catalog) TakeDelta(full bool) Delta {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := Delta{Full: full || c.all, Since: c.dirty, Services: map[string]*ServiceState{}}
	c.dirty, c.all = map[string]time.Time{}, false
	if d.Full {
		for name, s := range c.services {
			st := c.stateLocked(s)
			d.Services[name] = &st
		}
		for name := range d.Since {
			if _, ok := c.services[name]; !ok {
				delete(d.Since, name)
			}
		}
		return d
	}
	for name := range d.Since {
		if s, ok := c.services[name]; ok {
			st := c.stateLocked(s)
			d.Services[name] = &st
		} else {
			d.Services[name] = nil
		}
	}
	return d
}

// Requeue marks services changed again, keeping the time of their oldest
// pending write (a reader's retry of a change it could not apply), and
// signals Changed.
func (c *Catalog) Requeue(since map[string]time.Time) {
	if len(since) == 0 {
		return
	}
	c.mu.Lock()
	for name, at := range since {
		c.markDirty(name, at)
	}
	c.mu.Unlock()
	c.notify() // the view itself is unchanged: no new generation
}

// Pending counts the services marked changed that no reader has taken.
func (c *Catalog) Pending() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.all {
		return len(c.services)
	}
	return len(c.dirty)
}
