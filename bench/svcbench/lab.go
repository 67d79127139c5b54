package main

// The subcommands of the benchmarks that need a whole lab (B8, B14 and
// the convergence figure of the services issue): they talk to the lab's
// etcd with the store package podnetd uses, and probe the lab hosts'
// network namespaces (flip.go).
//
//	svcbench services-file -n N         the YAML of N services for podnetctl apply -f:
//	                                    s<i> selects svcbench=s<i>, port 80 → 8080
//	svcbench fill -n N -eps E -hosts H [etcd flags] [-remove]
//	                                    E fake endpoints per service, as etcd records of
//	                                    containers on H fake live hosts
//	svcbench watch [-samples K] [etcd flags]
//	                                    etcd write → store.Follow event latency
//	svcbench flip -kind svc|ep|cmd …    B8: a change flips a probe service on every host
//
// Why fake endpoints. 1000 × 10 endpoints would be 10 000 containers; the
// lab machine runs a few dozen. A fake endpoint is what a podnetd's Docker
// watcher would write for a running container (epmeta/<host>/<endpoint>),
// on a host whose liveness key is present: the control plane and the data
// plane treat it like any other remote endpoint. Nothing answers at its
// address (10.(100+j).x.y, outside every pool): probes use real
// containers. The fake hosts' liveness keys share one lease with a long
// TTL instead of a process renewing them, so they survive the benchmark's
// steps (each runs in its own process) and vanish with the lab's etcd.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/podnet/podnet/store"
)

// labCommands are the subcommands with flags of their own.
var labCommands = map[string]func(args []string) error{
	"services-file": servicesFileCmd,
	"fill":          fillCmd,
	"watch":         watchCmd,
	"flip":          flipCmd,
}

// labelKey is the label the loaded services select on.
const labelKey = "svcbench"

// etcdFlags reach the lab's etcd (scripts/lab.sh: TLS with client
// certificates; the admin certificate works).
type etcdFlags struct{ endpoints, cacert, cert, key, prefix string }

func (e *etcdFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.endpoints, "etcd", "", "etcd endpoints, comma-separated")
	fs.StringVar(&e.cacert, "cacert", "", "etcd CA certificate")
	fs.StringVar(&e.cert, "cert", "", "etcd client certificate")
	fs.StringVar(&e.key, "key", "", "etcd client key")
	fs.StringVar(&e.prefix, "prefix", store.DefaultPrefix, "podnet's etcd prefix")
}

// open connects with podnet's prefix, or another one (watch).
func (e *etcdFlags) open(prefix string) (*store.Store, error) {
	if e.endpoints == "" {
		return nil, errors.New("want -etcd")
	}
	if prefix == "" {
		prefix = e.prefix
	}
	return store.Open(store.Config{Endpoints: strings.Split(e.endpoints, ","), CACert: e.cacert, Cert: e.cert, Key: e.key,
		Prefix: prefix, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

// servicesFileCmd writes the services the lab benchmarks load.
func servicesFileCmd(args []string) error {
	fs := flag.NewFlagSet("services-file", flag.ContinueOnError)
	n := fs.Int("n", 1000, "services")
	if err := parse(fs, args); err != nil {
		return err
	}
	return servicesFile(os.Stdout, *n)
}

func servicesFile(w io.Writer, n int) error {
	for i := range n {
		if _, err := fmt.Fprintf(w, "- name: s%d\n  selector: {%s: s%d}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n",
			i, labelKey, i); err != nil {
			return err
		}
	}
	return nil
}

// fillerAddr is the address of fake endpoint j of service i.
func fillerAddr(i, j int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(100 + j), byte(i >> 8), byte(i)})
}

// fakeHost names fake host k.
func fakeHost(prefix string, k int) string { return fmt.Sprintf("%s%05d", prefix, k) }

// fillOptions: what fill writes (or removes).
type fillOptions struct {
	n, eps, hosts int
	prefix        string
	ttl           time.Duration
}

func fillCmd(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ContinueOnError)
	var e etcdFlags
	e.register(fs)
	var o fillOptions
	fs.IntVar(&o.n, "n", 1000, "services")
	fs.IntVar(&o.eps, "eps", 10, "fake endpoints per service")
	fs.IntVar(&o.hosts, "hosts", 10, "fake hosts the endpoints are spread over")
	fs.StringVar(&o.prefix, "host-prefix", "svcbench", "fake host names: PREFIX00000, …")
	fs.DurationVar(&o.ttl, "ttl", 4*time.Hour, "lease of the fake hosts' liveness keys")
	remove := fs.Bool("remove", false, "delete what fill wrote instead")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.n < 1 || o.n > 65536 || o.eps < 1 || o.eps > 100 || o.hosts < 1 {
		return errors.New("want 1 <= -n <= 65536, 1 <= -eps <= 100, -hosts >= 1")
	}
	st, err := e.open("")
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if *remove {
		if err := unfill(ctx, st, o); err != nil {
			return err
		}
		fmt.Printf("removed hosts=%d\n", o.hosts)
		return nil
	}
	if err := fill(ctx, st, o); err != nil {
		return err
	}
	fmt.Printf("filled services=%d endpoints=%d hosts=%d fill_ms=%.0f\n", o.n, o.n*o.eps, o.hosts, ms(time.Since(start)))
	return nil
}

// fill writes eps fake endpoints of each of n services (service i
// selects svcbench=s<i>) on hosts fake hosts, then their liveness keys.
func fill(ctx context.Context, st *store.Store, o fillOptions) error {
	now := time.Now().UTC()
	var ops []store.Op
	for i := range o.n {
		for j := range o.eps {
			h := fakeHost(o.prefix, (i*o.eps+j)%o.hosts)
			id := fmt.Sprintf("svcbench-%d-%d", i, j)
			ops = append(ops, store.Put(store.EndpointMetaKey(h, id), store.EndpointMeta{Endpoint: id, Network: "svcbench",
				Container: "c-" + id, Name: fmt.Sprintf("s%d-%d", i, j), Labels: map[string]string{labelKey: fmt.Sprintf("s%d", i)},
				IPv4: fillerAddr(i, j), Ready: true, Updated: now}))
		}
	}
	if err := txnBatches(ctx, st, ops); err != nil {
		return err
	}
	// The hosts come alive last, with every endpoint in place, as a
	// podnetd's host does after a restart.
	lease, err := st.Grant(ctx, o.ttl)
	if err != nil {
		return err
	}
	ops = ops[:0]
	for k := range o.hosts {
		h := fakeHost(o.prefix, k)
		ops = append(ops, store.PutLeased(store.AliveKey(h), store.HostAlive{Name: h, Started: now, Version: "svcbench"}, lease))
	}
	return txnBatches(ctx, st, ops)
}

// unfill deletes what fill wrote.
func unfill(ctx context.Context, st *store.Store, o fillOptions) error {
	var ops []store.Op
	for k := range o.hosts {
		h := fakeHost(o.prefix, k)
		ops = append(ops, store.DeletePrefix(store.EndpointMetaPrefix(h)), store.Delete(store.AliveKey(h)))
	}
	return txnBatches(ctx, st, ops)
}

// txnBatches runs ops in transactions of 100 (etcd's default limit is
// 128 operations per transaction).
func txnBatches(ctx context.Context, st *store.Store, ops []store.Op) error {
	for len(ops) > 0 {
		k := min(100, len(ops))
		if _, _, err := st.Txn(ctx, nil, ops[:k]); err != nil {
			return err
		}
		ops = ops[k:]
	}
	return nil
}

// watchCmd measures how long a write takes to come back through
// store.Follow (the way every podnetd follows services/ and epmeta/), on
// a prefix of its own that no podnetd follows: the etcd part of the B8
// floor.
func watchCmd(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	var e etcdFlags
	e.register(fs)
	samples := fs.Int("samples", 50, "writes")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := e.open("/svcbench/")
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &keyFollower{snap: make(chan struct{}, 1), keys: make(chan string, 16)}
	go st.Follow(ctx, "watch/", f)
	select {
	case <-f.snap:
	case <-time.After(10 * time.Second):
		return errors.New("watch: no listing of the watch prefix within 10 s")
	}
	var lat []float64
	for k := range *samples {
		key := fmt.Sprintf("watch/%d", k)
		t0 := time.Now()
		if err := st.Put(ctx, key, k); err != nil {
			return err
		}
		if err := f.await(key, 5*time.Second); err != nil {
			return err
		}
		lat = append(lat, ms(time.Since(t0)))
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.DeletePrefix(ctx, "watch/"); err != nil {
		return err
	}
	slices.Sort(lat)
	fmt.Printf("watch_p50_ms=%.2f watch_p99_ms=%.2f watch_max_ms=%.2f samples=%d\n",
		lat[len(lat)/2], lat[(len(lat)*99)/100], lat[len(lat)-1], len(lat))
	return nil
}

// keyFollower passes the keys of the changes it sees on.
type keyFollower struct {
	snap chan struct{}
	keys chan string
}

func (f *keyFollower) Snapshot([]store.KV) {
	select {
	case f.snap <- struct{}{}:
	default:
	}
}

func (f *keyFollower) Changes(evs []store.Event) {
	for _, ev := range evs {
		if ev.Type == store.EventPut {
			f.keys <- ev.Key
		}
	}
}

func (f *keyFollower) await(key string, d time.Duration) error {
	deadline := time.After(d)
	for {
		select {
		case k := <-f.keys:
			if k == key {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("watch: no event for %s within %v", key, d)
		}
	}
}
