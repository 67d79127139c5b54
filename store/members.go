package store

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// MemberURLs returns the client and peer URLs of every member of the etcd
// cluster (etcdctl member list), sorted, without duplicates: what podnet
// keeps containers away from (the data plane's guard), learned from the cluster
// itself because the endpoints podnetd is given name client ports only.
func (s *Store) MemberURLs(ctx context.Context) ([]string, error) {
	var resp *clientv3.MemberListResponse
	_, err := s.call(ctx, "member list", "", func(c context.Context) (err error) {
		resp, err = s.cli.MemberList(c)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range resp.Members {
		out = append(out, m.ClientURLs...)
		out = append(out, m.PeerURLs...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// URLAddrPorts turns etcd URLs (http://10.0.0.5:2379, https://etcd1:2380,
// 10.0.0.5:2379) into addresses and ports; unix sockets have none, names
// are resolved (a name that does not resolve is logged and skipped).
func URLAddrPorts(ctx context.Context, urls []string, log *slog.Logger) []netip.AddrPort {
	var out []netip.AddrPort
	for _, raw := range urls {
		host, port, ok := urlHostPort(raw)
		if !ok {
			continue
		}
		if a, err := netip.ParseAddr(host); err == nil {
			out = append(out, netip.AddrPortFrom(a.Unmap(), port))
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil {
			log.Warn("etcd endpoint name does not resolve; containers are not kept away from it", "url", raw, "err", err)
			continue
		}
		for _, a := range addrs {
			out = append(out, netip.AddrPortFrom(a.Unmap(), port))
		}
	}
	return out
}

// urlHostPort splits an etcd URL into host and port; false for unix
// sockets and anything unparsable.
func urlHostPort(raw string) (string, uint16, bool) {
	hostport := raw
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil || strings.HasPrefix(u.Scheme, "unix") {
			return "", 0, false
		}
		hostport = u.Host
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return "", 0, false
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return "", 0, false
	}
	return host, uint16(port), true
}

// ControlAddrPorts is every address and port of the etcd cluster podnet
// talks to: the client and peer URLs of its members and the endpoints
// this store was given (when the member list cannot be read, the
// endpoints alone, with the error). Nothing of podnet's may ever answer
// on them instead of etcd: containers are kept away from them and a
// service may not take them.
func (s *Store) ControlAddrPorts(ctx context.Context, log *slog.Logger) ([]netip.AddrPort, error) {
	urls, err := s.MemberURLs(ctx)
	return URLAddrPorts(ctx, append(urls, s.Endpoints()...), log), err
}
