package registry

import (
	"context"
	"fmt"
	"strconv"

	"github.com/podnet/podnet/internal/dockerid"
	"github.com/podnet/podnet/store"
)

// NodePorts and docker run -p host ports are one space per host: a
// NodePort answers on every host, so a port any container publishes on
// any host cannot become one (and the data plane of each host gives a
// port published there precedence over a NodePort that slipped through,
// reporting the conflict).

// portKey is "30080/TCP", the key of publishedPorts.
func portKey(port uint16, proto store.Protocol) string {
	return strconv.Itoa(int(port)) + "/" + string(proto)
}

// publishedPorts maps every port a container publishes (on an address
// NodePorts answer on: not loopback) to who publishes it: "container NAME
// on host H".
func (r *Registry) publishedPorts(ctx context.Context) (map[string]string, error) {
	eps, _, err := r.st.List(ctx, store.EndpointsPrefix(""))
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	out := map[string]string{}
	var metas map[string]string
	for _, kv := range eps {
		var ep store.Endpoint
		if kv.Decode(&ep) != nil || len(ep.Ports) == 0 {
			continue
		}
		if metas == nil {
			if metas, err = r.containerNames(ctx); err != nil {
				return nil, err
			}
		}
		who := metas[ep.ID]
		if who == "" {
			who = "endpoint " + dockerid.Short(ep.ID)
		}
		for _, m := range ep.Ports {
			if m.HostIP.IsValid() && m.HostIP.IsLoopback() {
				continue
			}
			proto, ok := store.ParseProtocol(m.Proto)
			if !ok {
				continue
			}
			out[portKey(m.HostPort, proto)] = fmt.Sprintf("%s on host %s", who, ep.Host)
		}
	}
	return out, nil
}

// containerNames maps endpoint IDs to "container NAME" (epmeta/).
func (r *Registry) containerNames(ctx context.Context) (map[string]string, error) {
	kvs, _, err := r.st.List(ctx, store.EndpointMetaPrefix(""))
	if err != nil {
		return nil, fmt.Errorf("list endpoint metadata: %w", err)
	}
	out := map[string]string{}
	for _, kv := range kvs {
		var m store.EndpointMeta
		if kv.Decode(&m) == nil && m.Name != "" {
			out[m.Endpoint] = "container " + m.Name
		}
	}
	return out, nil
}

// checkPublished refuses NodePorts a container publishes with -p.
func (r *Registry) checkPublished(ctx context.Context, ss []store.Service) error {
	var pub map[string]string
	for _, s := range ss {
		for _, p := range s.Ports {
			if p.NodePort == 0 {
				continue
			}
			if pub == nil {
				var err error
				if pub, err = r.publishedPorts(ctx); err != nil {
					return err
				}
			}
			if who, ok := pub[portKey(p.NodePort, p.Protocol)]; ok {
				return inputf("service %s: nodePort %s is published by %s (docker run -p): NodePorts and published ports share each host's ports; pick another nodePort",
					s.Name, portKey(p.NodePort, p.Protocol), who)
			}
		}
	}
	return nil
}
