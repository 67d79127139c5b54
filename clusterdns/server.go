package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/podnet/podnet/catalog"
	"github.com/podnet/podnet/feed"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/store"
)

// Config wires the cluster DNS server.
type Config struct {
	// Feeds are the etcd prefixes it reads (epmeta/, alive/), shared with
	// the other readers of this podnetd.
	Feeds *feed.Hub
	// Listen is where to serve UDP and TCP, e.g. 10.96.0.10:53 (the
	// caller puts the address on a local interface first).
	Listen netip.AddrPort
	// Upstreams ("host:port") get every query for a name podnet does not
	// know. nil means the nameservers of ResolvConf, minus Listen's address
	// and Docker's 127.0.0.11; an empty non-nil slice means none (unknown
	// names are then NXDOMAIN).
	Upstreams []string
	// ResolvConf is where default upstreams are read (default
	// /etc/resolv.conf).
	ResolvConf string
	// TTL of podnet's answers (default 5 s).
	TTL time.Duration
	// CacheFile, if set, keeps the answerable records on disk (root only,
	// replaced atomically, bounded) and serves them at start until etcd
	// answers (cache.go).
	CacheFile string
	Logger    *slog.Logger
	// Services, when set, answers service names (services.go) in
	// Domain, the cluster domain (default podnet.local).
	Services *catalog.Catalog
	Domain   string
}

// Server is the cluster DNS server.
type Server struct {
	cfg   Config
	log   *slog.Logger
	ttl   uint32
	recs  *records
	lk    *lookups
	fwd   *forwarder
	cache *diskCache // nil without CacheFile
	// savedSvcs are the services loaded from CacheFile, answered until
	// the catalog has read etcd (nil then, and without a file).
	savedSvcs atomic.Pointer[savedServices]
}

// New checks cfg and builds the server; Run serves it.
func New(cfg Config) (*Server, error) {
	if cfg.Feeds == nil {
		return nil, errors.New("cluster DNS: no feeds of etcd")
	}
	if !cfg.Listen.IsValid() || cfg.Listen.Port() == 0 {
		return nil, fmt.Errorf("cluster DNS: invalid listen address %q (want ip:port)", cfg.Listen)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	cfg.Domain = strings.ToLower(strings.Trim(cfg.Domain, "."))
	ups := cfg.Upstreams
	if ups == nil {
		var err error
		ups, err = defaultUpstreams(cfg.ResolvConf, cfg.Listen.Addr(), netip.MustParseAddr(dockerEmbeddedDNS))
		if err != nil {
			cfg.Logger.Warn("cluster DNS has no upstream servers: unknown names get NXDOMAIN", "err", err)
		}
	}
	ups, err := checkUpstreams(ups, cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", err)
	}
	cfg.Upstreams = ups
	recs := newRecords(cfg.Logger)
	d := &Server{
		cfg:  cfg,
		log:  cfg.Logger,
		ttl:  uint32(max(cfg.TTL/time.Second, 1)),
		recs: recs,
		lk:   newLookups(cfg.Feeds, recs),
		fwd:  &forwarder{upstreams: ups},
	}
	if cfg.CacheFile != "" {
		d.cache = &diskCache{path: cfg.CacheFile}
	}
	return d, nil
}

// Upstreams returns the servers unknown names are forwarded to.
func (d *Server) Upstreams() []string { return slices.Clone(d.cfg.Upstreams) }

// Lookup returns the addresses podnet answers for name (IPv4 first, each
// family sorted): ready containers on live hosts. It is empty until Run has
// loaded the records; a name not asked before is read from etcd first
// (waiting at most firstLookupWait).
func (d *Server) Lookup(name string) []netip.Addr {
	n, ok := normalizeName(name)
	if !ok {
		return nil
	}
	if l, ok := containerLabel(n); ok {
		d.lk.name(context.Background(), l)
	}
	v4, v6 := d.recs.lookup(n)
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	return append(v4, v6...)
}

// Run follows the records and serves DNS on Listen (UDP and TCP) until ctx
// ends. It returns at once if it cannot bind.
func (d *Server) Run(ctx context.Context) error {
	addr := d.cfg.Listen.String()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("cluster DNS on udp %s: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("cluster DNS on tcp %s: %w", addr, err)
	}

	d.loadCache()
	fctx, stopFollow := context.WithCancel(ctx)
	var wg sync.WaitGroup
	af := aliveFollower{r: d.recs, l: d.lk, loaded: new(atomic.Bool)}
	if d.cache != nil {
		af.loaded = &d.cache.aliveLoaded
	}
	stopAlive := d.cfg.Feeds.Subscribe(store.AlivePrefix, af)
	wg.Go(func() { d.saveLoop(fctx) })
	wg.Go(func() { d.lk.expireLoop(fctx) })
	defer func() {
		stopAlive()
		d.lk.stop()
		stopFollow()
		wg.Wait()
	}()

	h := queryHandler{d: d, ctx: ctx}
	servers := []*dns.Server{
		{PacketConn: pc, Handler: h},
		{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
	}
	errc := make(chan error, len(servers))
	var started sync.WaitGroup
	for _, s := range servers {
		started.Add(1)
		s.NotifyStartedFunc = started.Done
		go func() { errc <- s.ActivateAndServe() }()
	}
	startedCh := make(chan struct{})
	go func() { started.Wait(); close(startedCh) }()
	select {
	case <-startedCh:
	case err := <-errc:
		pc.Close()
		ln.Close()
		return fmt.Errorf("cluster DNS on %s: %w", addr, err)
	}
	d.log.Info("cluster DNS serving", "listen", addr, "upstreams", d.cfg.Upstreams, "ttl", d.cfg.TTL)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("cluster DNS on %s: %w", addr, err)
	}
	for _, s := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.ShutdownContext(sctx)
		cancel()
	}
	pc.Close()
	ln.Close()
	d.log.Info("cluster DNS stopped", "listen", addr)
	return runErr
}

// queryHandler serves one query; ctx is the server's lifetime.
type queryHandler struct {
	d   *Server
	ctx context.Context
}

func (h queryHandler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	start := time.Now()
	resp, source := h.d.answer(h.ctx, req)
	metrics.DNSQueries.WithLabelValues(queryResult(source, resp.Rcode)).Inc()
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	if !tcp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	err := w.WriteMsg(resp)
	if h.d.log.Enabled(h.ctx, slog.LevelDebug) {
		var q dns.Question
		if len(req.Question) > 0 {
			q = req.Question[0]
		}
		h.d.log.Debug("dns query", "client", w.RemoteAddr().String(), "name", q.Name,
			"type", dns.TypeToString[q.Qtype], "tcp", tcp, "rcode", dns.RcodeToString[resp.Rcode],
			"answers", len(resp.Answer), "truncated", resp.Truncated, "from", source,
			"took", time.Since(start), "err", err)
	}
}

// answer answers req from the records or through an upstream; source says
// which ("podnet", an upstream address, or why neither).
func (d *Server) answer(ctx context.Context, req *dns.Msg) (*dns.Msg, string) {
	m := new(dns.Msg)
	if req.Opcode != dns.OpcodeQuery {
		return m.SetRcode(req, dns.RcodeNotImplemented), "podnet"
	}
	if len(req.Question) != 1 {
		return m.SetRcode(req, dns.RcodeFormatError), "podnet"
	}
	if local := d.local(ctx, req); local != nil {
		return local, "podnet"
	}
	return d.forward(ctx, req)
}

// local answers from the records, or returns nil for names podnet does not
// know (no ready container on a live host).
func (d *Server) local(ctx context.Context, req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return nil
	}
	if m := d.serviceAnswer(req); m != nil {
		return m
	}
	anyType := q.Qtype == dns.TypeANY
	if addr, ok := parseReverse(q.Name); ok {
		d.lk.address(ctx, addr)
		names := d.recs.ptr(addr)
		if len(names) == 0 {
			return nil
		}
		m := d.reply(req)
		if q.Qtype == dns.TypePTR || anyType {
			for _, n := range names {
				m.Answer = append(m.Answer, &dns.PTR{Hdr: d.hdr(q.Name, dns.TypePTR), Ptr: dns.Fqdn(n)})
			}
		}
		return m
	}
	name, ok := containerLabel(q.Name)
	if !ok {
		return nil // dotted names are never containers'
	}
	d.lk.name(ctx, name)
	v4, v6 := d.recs.lookup(name)
	if len(v4)+len(v6) == 0 {
		return nil
	}
	// A known name without a record of the asked type is NOERROR with no
	// answer: NXDOMAIN would tell resolvers the name has no A either.
	m := d.reply(req)
	if q.Qtype == dns.TypeA || anyType {
		rand.Shuffle(len(v4), func(i, j int) { v4[i], v4[j] = v4[j], v4[i] })
		for _, a := range v4 {
			m.Answer = append(m.Answer, &dns.A{Hdr: d.hdr(q.Name, dns.TypeA), A: a.AsSlice()})
		}
	}
	if q.Qtype == dns.TypeAAAA || anyType {
		rand.Shuffle(len(v6), func(i, j int) { v6[i], v6[j] = v6[j], v6[i] })
		for _, a := range v6 {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: d.hdr(q.Name, dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	return m
}

func (d *Server) reply(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	m.Compress = true
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(dns.DefaultMsgSize, false)
	}
	return m
}

func (d *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: d.ttl}
}

// forward relays req to the upstreams: NXDOMAIN when there are none,
// SERVFAIL when none answers.
func (d *Server) forward(ctx context.Context, req *dns.Msg) (*dns.Msg, string) {
	m := new(dns.Msg)
	if len(d.fwd.upstreams) == 0 {
		m.SetRcode(req, dns.RcodeNameError)
		m.RecursionAvailable = true
		return m, "no upstream"
	}
	start := time.Now()
	resp, from, err := d.fwd.exchange(ctx, req)
	observeForward(start, err)
	if err != nil {
		d.log.Debug("dns forward failed", "err", err)
		m.SetRcode(req, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		return m, "upstreams failed"
	}
	resp.Id = req.Id
	return resp, from
}
