package main

// flip: benchmark B8 and the convergence figure of the services issue. A
// probe service answers with the name of the container behind it (netcheck
// id-server); a change makes it answer with another one (or refuse), and a
// prober on every lab host, in that host's network namespace, connects to
// the VIP over and over until it sees the new answer. One sample is the
// time from just before the change to the last host seeing it.
//
// Kinds of change (samples alternate between two states, a and b):
//
//	svc  an etcd write of the service record: its selector becomes -sel-a
//	     or -sel-b (what `podnetctl apply` writes, without the CLI)
//	ep   an etcd write of the two containers' endpoint records in one
//	     transaction: the one of the state is ready, the other not (what a
//	     host's Docker watcher writes on a health change)
//	cmd  a command (-cmd-a, -cmd-b: sh -c), timed from before it starts:
//	     podnetctl apply -f, docker pause/unpause (the user's own action)
//
// The records svc and ep change are written back as they were at the
// end; cmd ends in state a.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/podnet/podnet/store"
)

type flipOptions struct {
	kind, service, vip    string
	selA, selB            string // svc: KEY=VALUE
	ctrA, ctrB            string // ep: container names
	cmdA, cmdB            string // cmd
	wantA, wantB          string // the answer in each state ("refused": a refused connection)
	probes                []prober
	samples               int
	interval, gap, within time.Duration
}

func flipCmd(args []string) error {
	fs := flag.NewFlagSet("flip", flag.ContinueOnError)
	var e etcdFlags
	e.register(fs)
	var o flipOptions
	var probes string
	fs.StringVar(&o.kind, "kind", "svc", "svc, ep or cmd")
	fs.StringVar(&o.service, "service", "", "the probe service (svc, ep)")
	fs.StringVar(&o.vip, "vip", "", "VIP:PORT the probers connect to")
	fs.StringVar(&probes, "probe", "", "NAME=NETNS_PATH[@ADDR:PORT],… : where the probers run (and what each probes instead of -vip)")
	fs.StringVar(&o.selA, "sel-a", "", "svc: the selector term of state a (KEY=VALUE)")
	fs.StringVar(&o.selB, "sel-b", "", "svc: the selector term of state b")
	fs.StringVar(&o.ctrA, "ctr-a", "", "ep: the container ready in state a")
	fs.StringVar(&o.ctrB, "ctr-b", "", "ep: the container ready in state b")
	fs.StringVar(&o.cmdA, "cmd-a", "", "cmd: the command that makes state a")
	fs.StringVar(&o.cmdB, "cmd-b", "", "cmd: the command that makes state b")
	fs.StringVar(&o.wantA, "want-a", "", "the probe's answer in state a (refused: connection refused)")
	fs.StringVar(&o.wantB, "want-b", "", "the probe's answer in state b")
	fs.IntVar(&o.samples, "samples", 20, "changes to time")
	fs.DurationVar(&o.interval, "interval", 5*time.Millisecond, "pause between two probes of one prober")
	fs.DurationVar(&o.gap, "gap", 300*time.Millisecond, "pause between samples (plus up to 100 ms at random)")
	fs.DurationVar(&o.within, "timeout", 10*time.Second, "a sample not seen everywhere by then fails")
	fs.DurationVar(&dialTimeout, "dial", dialTimeout, "connect timeout of one probe (a dropped SYN reads \"timeout\" after it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.vip == "" || o.wantA == "" || o.wantB == "" || o.wantA == o.wantB || o.samples < 1 {
		return errors.New("want -vip, -want-a and -want-b (different) and -samples >= 1")
	}
	var err error
	if o.probes, err = startProbers(probes, o.vip); err != nil {
		return err
	}
	var ch changer
	switch o.kind {
	case "svc", "ep":
		st, err := e.open("")
		if err != nil {
			return err
		}
		defer st.Close()
		if o.kind == "svc" {
			ch, err = newServiceChanger(st, o.service, o.selA, o.selB)
		} else {
			ch, err = newEndpointChanger(st, o.ctrA, o.ctrB)
		}
		if err != nil {
			return err
		}
	case "cmd":
		if o.cmdA == "" || o.cmdB == "" {
			return errors.New("kind cmd: want -cmd-a and -cmd-b")
		}
		ch = commandChanger{a: o.cmdA, b: o.cmdB}
	default:
		return fmt.Errorf("unknown -kind %q: want svc, ep or cmd", o.kind)
	}
	return flip(o, ch)
}

// changer makes state a (b false) or b, returning when its write or
// command is done.
type changer interface {
	change(ctx context.Context, b bool) error
	// restore puts back what the benchmark changed.
	restore(ctx context.Context) error
}

func flip(o flipOptions, ch changer) (err error) {
	ctx := context.Background()
	defer func() {
		if rerr := ch.restore(ctx); rerr != nil && err == nil {
			err = fmt.Errorf("restoring the records: %w", rerr)
		}
	}()
	want := func(b bool) string { return map[bool]string{false: o.wantA, true: o.wantB}[b] }
	// State a, everywhere, untimed.
	if err := ch.change(ctx, false); err != nil {
		return err
	}
	if _, err := o.round(o.wantA, 30*time.Second); err != nil {
		return fmt.Errorf("state a (%s) never seen everywhere: %w", o.wantA, err)
	}
	var all []float64
	failed := 0
	b := false
	for i := 1; i <= o.samples; i++ {
		b = !b
		time.Sleep(o.gap + rand.N(100*time.Millisecond))
		res := o.start(want(b))
		t0 := time.Now()
		cerr := ch.change(ctx, b)
		act := time.Since(t0)
		if cerr != nil {
			<-o.stop(res)
			return cerr
		}
		line := fmt.Sprintf("sample=%d kind=%s to=%s action_ms=%.2f", i, o.kind, want(b), ms(act))
		worst, bad := 0.0, ""
		for _, r := range <-o.wait(res, t0.Add(o.within)) {
			if r.err != nil {
				bad += fmt.Sprintf(" %s:%v", r.name, r.err)
				continue
			}
			d := ms(r.at.Sub(t0))
			worst = max(worst, d)
			line += fmt.Sprintf(" %s_ms=%.2f", r.name, d)
		}
		if bad != "" {
			failed++
			fmt.Printf("%s failed:%s\n", line, bad)
			// Back to a known state before the next sample.
			if _, err := o.round(want(b), 30*time.Second); err != nil {
				return fmt.Errorf("state %s never seen everywhere: %w", want(b), err)
			}
			continue
		}
		all = append(all, worst)
		fmt.Printf("%s all_ms=%.2f\n", line, worst)
	}
	if b {
		if err := ch.change(ctx, false); err != nil {
			return err
		}
		if _, err := o.round(o.wantA, 30*time.Second); err != nil {
			return fmt.Errorf("back to state a: %w", err)
		}
	}
	if len(all) == 0 {
		return fmt.Errorf("all %d samples failed", o.samples)
	}
	slices.Sort(all)
	fmt.Printf("summary kind=%s samples=%d failed=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
		o.kind, len(all), failed, all[len(all)/2], all[(len(all)*99)/100], all[len(all)-1])
	return nil
}

// round probes until every prober sees want (untimed settling).
func (o flipOptions) round(want string, d time.Duration) ([]probeResult, error) {
	res := o.start(want)
	rs := <-o.wait(res, time.Now().Add(d))
	for _, r := range rs {
		if r.err != nil {
			return rs, fmt.Errorf("%s: %w", r.name, r.err)
		}
	}
	return rs, nil
}

// ---------------------------------------------------------------- probers

// prober runs probes from one network namespace: a goroutine locked to an
// OS thread that entered it, so every socket it opens lives there.
type prober struct {
	name string
	reqs chan probeReq
}

type probeReq struct {
	want     string
	interval time.Duration
	stop     chan struct{} // closed: give up
	res      chan probeResult
}

type probeResult struct {
	name   string
	at     time.Time // when the first probe answering want completed
	probes int
	err    error
}

func startProbers(spec, vip string) ([]prober, error) {
	var out []prober
	for _, item := range strings.Split(spec, ",") {
		name, path, ok := strings.Cut(item, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("-probe %q: want NAME=NETNS_PATH[@ADDR:PORT],…", spec)
		}
		target := vip
		if p, addr, ok := strings.Cut(path, "@"); ok {
			path, target = p, addr
		}
		p := prober{name: name, reqs: make(chan probeReq)}
		ready := make(chan error, 1)
		go p.run(filepath.Clean(path), target, ready)
		if err := <-ready; err != nil {
			return nil, fmt.Errorf("prober %s: %w", name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (p prober) run(path, vip string, ready chan<- error) {
	// Never unlocked: the thread ends with the goroutine instead of
	// going back to the pool in another namespace.
	runtime.LockOSThread()
	h, err := netns.GetFromPath(path)
	if err == nil {
		err = netns.Set(h)
		h.Close()
	}
	ready <- err
	if err != nil {
		return
	}
	for req := range p.reqs {
		r := probeResult{name: p.name}
		for {
			select {
			case <-req.stop:
				r.err = fmt.Errorf("%q not seen after %d probes", req.want, r.probes)
			default:
			}
			if r.err != nil {
				break
			}
			got := probe(vip)
			r.probes++
			if got == req.want {
				r.at = time.Now()
				break
			}
			time.Sleep(req.interval)
		}
		req.res <- r
	}
}

// dialTimeout is a probe's connect timeout (-dial).
var dialTimeout = 200 * time.Millisecond

// probe connects to addr and reads the answer: the first line, or
// "refused" (a TCP reset to the SYN), "timeout" or "error: …".
func probe(addr string) string {
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "refused"
		}
		return outcome(err)
	}
	defer func() {
		// A reset instead of FIN: no TIME_WAIT, however many probes.
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if n > 0 {
		return strings.TrimSpace(string(buf[:n]))
	}
	return outcome(err)
}

func outcome(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "error: " + err.Error()
}

// start sends every prober after want; stop and wait end the round.
func (o flipOptions) start(want string) []probeReq {
	reqs := make([]probeReq, len(o.probes))
	for i, p := range o.probes {
		reqs[i] = probeReq{want: want, interval: o.interval, stop: make(chan struct{}), res: make(chan probeResult, 1)}
		p.reqs <- reqs[i]
	}
	return reqs
}

// wait collects the results, stopping the probers still looking at
// deadline.
func (o flipOptions) wait(reqs []probeReq, deadline time.Time) <-chan []probeResult {
	out := make(chan []probeResult, 1)
	go func() {
		timer := time.AfterFunc(time.Until(deadline), func() {
			for _, r := range reqs {
				close(r.stop)
			}
		})
		var rs []probeResult
		for _, r := range reqs {
			rs = append(rs, <-r.res)
		}
		timer.Stop()
		out <- rs
	}()
	return out
}

func (o flipOptions) stop(reqs []probeReq) <-chan []probeResult {
	return o.wait(reqs, time.Now())
}

// ---------------------------------------------------------------- changers

// serviceChanger rewrites the probe service's selector.
type serviceChanger struct {
	st         *store.Store
	name       string
	orig       store.Service
	selA, selB [2]string
}

func newServiceChanger(st *store.Store, name, a, b string) (*serviceChanger, error) {
	c := &serviceChanger{st: st, name: name}
	for _, x := range []struct {
		s   string
		dst *[2]string
	}{{a, &c.selA}, {b, &c.selB}} {
		k, v, ok := strings.Cut(x.s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("selector term %q: want KEY=VALUE", x.s)
		}
		*x.dst = [2]string{k, v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := st.Get(ctx, store.ServiceKey(name), &c.orig); err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	return c, nil
}

func (c *serviceChanger) write(ctx context.Context, sel map[string]string) error {
	kv, err := c.st.GetKV(ctx, store.ServiceKey(c.name))
	if err != nil {
		return err
	}
	var s store.Service
	if err := kv.Decode(&s); err != nil {
		return err
	}
	s.Selector, s.Updated = sel, time.Now().UTC()
	// The VIP and ports are unchanged: the claims stay valid, only the
	// record is written (conditioned on nobody else having changed it).
	return c.st.Update(ctx, store.ServiceKey(c.name), kv.ModRev, s)
}

func (c *serviceChanger) change(ctx context.Context, b bool) error {
	t := c.selA
	if b {
		t = c.selB
	}
	return c.write(ctx, map[string]string{t[0]: t[1]})
}

func (c *serviceChanger) restore(ctx context.Context) error { return c.write(ctx, c.orig.Selector) }

// endpointChanger flips the readiness of two containers' endpoint
// records.
type endpointChanger struct {
	st     *store.Store
	a, b   []store.KV // the records of each container, as found
	origin map[string]store.EndpointMeta
}

func newEndpointChanger(st *store.Store, a, b string) (*endpointChanger, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kvs, _, err := st.List(ctx, store.EndpointMetaPrefix(""))
	if err != nil {
		return nil, err
	}
	c := &endpointChanger{st: st, origin: map[string]store.EndpointMeta{}}
	for _, kv := range kvs {
		var m store.EndpointMeta
		if kv.Decode(&m) != nil {
			continue
		}
		switch m.Name {
		case a:
			c.a = append(c.a, kv)
		case b:
			c.b = append(c.b, kv)
		default:
			continue
		}
		c.origin[kv.Key] = m
	}
	if len(c.a) == 0 || len(c.b) == 0 {
		return nil, fmt.Errorf("no endpoint records of containers %q and %q (found %d and %d)", a, b, len(c.a), len(c.b))
	}
	return c, nil
}

// write sets each record's readiness (ready(name)) in one transaction,
// conditioned on the records being as last read or written.
func (c *endpointChanger) write(ctx context.Context, ready func(key string) bool) error {
	var cmps []store.Cmp
	var ops []store.Op
	now := time.Now().UTC()
	for _, kv := range slices.Concat(c.a, c.b) {
		m := c.origin[kv.Key]
		m.Ready, m.Updated = ready(kv.Key), now
		cmps = append(cmps, store.ModRevIs(kv.Key, kv.ModRev))
		ops = append(ops, store.Put(kv.Key, m))
	}
	ok, rev, err := c.st.Txn(ctx, cmps, ops)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("an endpoint record changed under the benchmark (the Docker watcher wrote it)")
	}
	for _, set := range [][]store.KV{c.a, c.b} {
		for i := range set {
			set[i].ModRev = rev
		}
	}
	return nil
}

func (c *endpointChanger) change(ctx context.Context, b bool) error {
	inA := map[string]bool{}
	for _, kv := range c.a {
		inA[kv.Key] = true
	}
	return c.write(ctx, func(key string) bool { return inA[key] != b })
}

func (c *endpointChanger) restore(ctx context.Context) error {
	return c.write(ctx, func(key string) bool { return c.origin[key].Ready })
}

// commandChanger runs the user's own command.
type commandChanger struct{ a, b string }

func (c commandChanger) change(ctx context.Context, b bool) error {
	s := c.a
	if b {
		s = c.b
	}
	out, err := exec.CommandContext(ctx, "sh", "-c", s).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", s, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (commandChanger) restore(context.Context) error { return nil }
