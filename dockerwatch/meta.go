package dockerwatch

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/store"
)

// containerMetas is what one inspect says about a container's endpoints.
type containerMetas struct {
	// want holds the metadata of every endpoint on a podnet network, keyed
	// by endpoint ID, without Updated.
	want map[string]store.EndpointMeta
	// has holds every endpoint ID the container has, on any network.
	has map[string]bool
}

// metasOf reads a container's endpoints from its inspect response. isPodnet
// nil means every network.
func metasOf(c container.InspectResponse, isPodnet func(string) bool) containerMetas {
	out := containerMetas{want: map[string]store.EndpointMeta{}, has: map[string]bool{}}
	if c.ContainerJSONBase == nil || c.NetworkSettings == nil {
		return out
	}
	var labels map[string]string
	if c.Config != nil {
		labels = store.SelectableLabels(c.Config.Labels)
	}
	name := strings.TrimPrefix(c.Name, "/")
	rdy := Ready(c.State)
	for _, es := range c.NetworkSettings.Networks {
		if es == nil || es.EndpointID == "" {
			continue
		}
		out.has[es.EndpointID] = true
		if isPodnet != nil && !isPodnet(es.NetworkID) {
			continue
		}
		out.want[es.EndpointID] = store.EndpointMeta{
			Endpoint:  es.EndpointID,
			Network:   es.NetworkID,
			Container: c.ID,
			Name:      name,
			Aliases:   Aliases(c.ID, es.Aliases),
			Labels:    labels,
			IPv4:      dockerAddr(es.IPAddress),
			IPv6:      dockerAddr(es.GlobalIPv6Address),
			Ready:     rdy,
		}
	}
	return out
}

// dockerAddr parses an address as Docker reports it. Docker sends "" for
// a family the container has no address in; an address it cannot have
// written (it formats them with Go's net package) counts as none too.
func dockerAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// Ready says whether a container should receive traffic: it runs, is not
// paused or restarting, and its health check (if any) passes. Podman's
// Docker-compatible API answers the same (package cniattach uses it).
func Ready(st *container.State) bool {
	if st == nil || !st.Running || st.Paused || st.Restarting {
		return false
	}
	if st.Health == nil {
		return true
	}
	switch st.Health.Status {
	case container.NoHealthcheck, container.Healthy, "":
		return true
	}
	return false
}

// Aliases returns the user's network aliases: without the container ID
// prefix Docker (and podman) adds, without empties and duplicates, in
// their order.
func Aliases(containerID string, in []string) []string {
	var out []string
	for _, a := range in {
		if a == "" || slices.Contains(out, a) {
			continue
		}
		// Docker before v25 adds the short container ID to every
		// endpoint's aliases on user-defined networks.
		if len(a) >= dockerid.ShortLen && strings.HasPrefix(containerID, a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// sameMeta compares everything but Updated.
func sameMeta(a, b store.EndpointMeta) bool {
	return a.Endpoint == b.Endpoint && a.Network == b.Network && a.Container == b.Container &&
		a.Name == b.Name && slices.Equal(a.Aliases, b.Aliases) && maps.Equal(a.Labels, b.Labels) &&
		a.IPv4 == b.IPv4 && a.IPv6 == b.IPv6 && a.Ready == b.Ready
}
