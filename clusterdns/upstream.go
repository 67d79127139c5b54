package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// dockerEmbeddedDNS is the resolver Docker runs inside every container on a
// user-defined network; forwarding to it would loop.
const dockerEmbeddedDNS = "127.0.0.11"

// upstreamTimeout bounds one exchange with one upstream.
const upstreamTimeout = 2 * time.Second

// forwarder sends the queries podnet cannot answer to the host's resolvers.
type forwarder struct {
	upstreams []string
	// next is the upstream tried first: the last one that answered.
	next atomic.Int64
}

// defaultUpstreams reads the nameservers of a resolv.conf, without the
// given addresses (our own, and Docker's embedded DNS).
func defaultUpstreams(path string, exclude ...netip.Addr) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read upstream DNS servers from %s: %w", path, err)
	}
	var out []string
	for _, s := range cc.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		skip := false
		for _, x := range exclude {
			skip = skip || a.WithZone("").Unmap() == x.Unmap()
		}
		if !skip {
			out = append(out, net.JoinHostPort(s, cc.Port))
		}
	}
	return out, nil
}

// checkUpstreams validates "host:port" strings (a missing port means 53)
// and refuses our own listen address, which would loop.
func checkUpstreams(in []string, listen netip.AddrPort) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, u := range in {
		host, port, err := net.SplitHostPort(u)
		if err != nil {
			host, port = u, "53"
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil || host == "" {
			return nil, fmt.Errorf("upstream DNS server %q: want host:port", u)
		}
		hp := net.JoinHostPort(host, port)
		if ap, err := netip.ParseAddrPort(hp); err == nil && ap.Addr().Unmap() == listen.Addr().Unmap() && ap.Port() == listen.Port() {
			return nil, fmt.Errorf("upstream DNS server %q is the cluster DNS itself", u)
		}
		out = append(out, hp)
	}
	return out, nil
}

var errNoUpstream = errors.New("no upstream DNS server answered")

// exchange asks each upstream in turn (UDP, then TCP when the answer was
// truncated) and returns the first usable answer. A SERVFAIL or REFUSED
// answer moves on to the next upstream, and is returned if none does
// better.
func (f *forwarder) exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, string, error) {
	n := len(f.upstreams)
	if n == 0 {
		return nil, "", errNoUpstream
	}
	first := int(f.next.Load()) % n
	var fallback *dns.Msg
	var fallbackFrom string
	var errs []error
	for i := 0; i < n; i++ {
		idx := (first + i) % n
		up := f.upstreams[idx]
		resp, err := exchangeOne(ctx, req, up)
		if err != nil {
			errs = append(errs, fmt.Errorf("upstream %s: %w", up, err))
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			if fallback == nil {
				fallback, fallbackFrom = resp, up
			}
			continue
		}
		f.next.Store(int64(idx))
		return resp, up, nil
	}
	if fallback != nil {
		return fallback, fallbackFrom, nil
	}
	return nil, "", fmt.Errorf("%w: %w", errNoUpstream, errors.Join(errs...))
}

func exchangeOne(ctx context.Context, req *dns.Msg, upstream string) (*dns.Msg, error) {
	udp := &dns.Client{Net: "udp", Timeout: upstreamTimeout, UDPSize: dns.DefaultMsgSize}
	resp, _, err := udp.ExchangeContext(ctx, req, upstream)
	if err != nil {
		return nil, err
	}
	if !resp.Truncated {
		return resp, nil
	}
	tcp := &dns.Client{Net: "tcp", Timeout: upstreamTimeout}
	resp, _, err = tcp.ExchangeContext(ctx, req, upstream)
	if err != nil {
		return nil, fmt.Errorf("over TCP after a truncated answer: %w", err)
	}
	return resp, nil
}
