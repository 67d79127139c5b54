// Command svcbench drives podnet's service engine (package dataplane) for
// the service benchmarks B3–B7 and B13 (README.md "Benchmarks",
// scripts/bench/services.sh) and writes the kube-proxy-shaped iptables
// rulesets they compare against. It acts in the network namespace it runs
// in (`ip netns exec NS svcbench …`) and leaves what it programmed there:
// the namespace's owner deletes it.
//
//	svcbench load      -n N [-eps E]   program N services cold (one Apply replacing the
//	                                   set, into an empty table); prints cold_ms and the
//	                                   measured VIP
//	svcbench change    -n N [-eps E] [-changes K]
//	                                   load, then K single-endpoint changes
//	                                   (an Apply of one service each); prints per-change
//	                                   times and CPU
//	svcbench restart   -n N [-eps E]   load, then time a new engine's first Replace over
//	                                   the table the first one left (podnetd restarting:
//	                                   B14's re-programming, without the control plane)
//	svcbench steady    -n N [-eps E] [-rate R] [-d D] [-idle I]
//	                                   load, run the canary as podnetd does, stay idle
//	                                   for I, then make R changes/s for D; prints the
//	                                   process's CPU share and memory
//	svcbench kubeproxy -n N [-eps E] [-mode full|partial|anchor]
//	                                   write iptables-restore input to stdout
//	svcbench vip       -n N            print the measured service's VIP
//
// and, for the benchmarks that need a whole lab (B8, B14; lab.go, flip.go):
//
//	svcbench services-file, fill, watch, flip
//
// The services are the same for every subcommand: service i (0..N-1) is
// s<i> with VIP 10.96.0.0+i+1, port 80 → 8080 (TCP), and E endpoints
// 10.(100+j).(i>>8).(i&255); the measured one is the last, s<N-1>, whose
// endpoints are the backends 10.250.0.10, .11, … (the harness puts them in
// the backend namespace). In kube-proxy's iptables layout "last" is the
// worst position (KUBE-SERVICES is walked in order); podnet's dispatch
// has no position, and every connection to the measured service goes
// through its pick chain (all E buckets are live).
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/podnet/podnet/dataplane"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	if run, ok := labCommands[os.Args[1]]; ok {
		if err := run(os.Args[2:]); err != nil {
			fail(err)
		}
		return
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	n := fs.Int("n", 1000, "services")
	eps := fs.Int("eps", 10, "endpoints per service")
	changes := fs.Int("changes", 20, "change: single-endpoint changes to make")
	rate := fs.Float64("rate", 10, "steady: changes per second")
	dur := fs.Duration("d", 60*time.Second, "steady: how long to make changes")
	idle := fs.Duration("idle", 30*time.Second, "steady: how long to stay idle first")
	mode := fs.String("mode", "full", "kubeproxy: full (cold restore), partial (KUBE-SERVICES and one service, --noflush), anchor (one DNAT rule)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "load, restart: write a CPU profile of the timed part (the cold Replace; the restarted engine's Sync and Replace) to this file")
	_ = fs.Parse(os.Args[2:])
	if *n < 1 || *eps < 1 || *eps > 200 {
		fail(errors.New("want -n >= 1 and 1 <= -eps <= 200"))
	}
	var err error
	switch os.Args[1] {
	case "load":
		var stop func() error
		if stop, err = profile(); err == nil {
			if _, err = load(*n, *eps); err == nil {
				err = stop()
			}
		}
	case "change":
		err = change(*n, *eps, *changes)
	case "restart":
		err = restart(*n, *eps)
	case "steady":
		err = steady(*n, *eps, *rate, *dur, *idle)
	case "kubeproxy":
		err = kubeProxy(os.Stdout, *n, *eps, *mode)
	case "vip":
		fmt.Println(vip(*n - 1))
	default:
		usage()
	}
	if err != nil {
		fail(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: svcbench load|change|restart|steady|kubeproxy|vip [-n N] [-eps E] [...]\n"+
		"       svcbench services-file|fill|watch|flip [...] (a lab's: see lab.go)")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "svcbench:", err)
	os.Exit(1)
}

// vip is service i's VIP.
func vip(i int) netip.Addr {
	a := netip.MustParseAddr("10.96.0.0").As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) + uint32(i) + 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// endpoint is endpoint j of service i of n (the measured one's are the
// backends).
func endpoint(n, i, j int) netip.Addr {
	if i == n-1 {
		return netip.AddrFrom4([4]byte{10, 250, 0, byte(10 + j)})
	}
	return fillerAddr(i, j)
}

func service(n, eps, i int) dataplane.Service {
	s := dataplane.Service{Name: fmt.Sprintf("s%d", i), ClusterIP: vip(i),
		Ports: []dataplane.ServicePort{{Name: "http", Proto: dataplane.TCP, Port: 80, TargetPort: 8080}}}
	for j := 0; j < eps; j++ {
		s.Endpoints = append(s.Endpoints, dataplane.ServiceEndpoint{Addr: endpoint(n, i, j)})
	}
	return s
}

func services(n, eps int) []dataplane.Service {
	out := make([]dataplane.Service, n)
	for i := range out {
		out[i] = service(n, eps, i)
	}
	return out
}

// replace is the Change that makes svcs the whole set.
func replace(svcs []dataplane.Service) dataplane.Change {
	return dataplane.Change{Services: dataplane.ServiceChanges{Replace: true, Upsert: svcs}}
}

// upsert applies one service; its failure is the error.
func upsert(ctx context.Context, e *dataplane.Engine, s dataplane.Service) error {
	res, err := e.Apply(ctx, dataplane.Change{Services: dataplane.ServiceChanges{Upsert: []dataplane.Service{s}}})
	if err != nil {
		return err
	}
	return res.Services[s.Name]
}

func newEngine() *dataplane.Engine {
	return dataplane.New(dataplane.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
}

// load programs n services into an empty table and prints how long the one
// batch took (a Replace: building it, the kernel applying it).
func load(n, eps int) (*dataplane.Engine, error) {
	svcs := services(n, eps)
	e := newEngine()
	start := time.Now()
	res, err := e.Apply(context.Background(), replace(svcs))
	if err != nil {
		return nil, err
	}
	cold := time.Since(start)
	if err := res.Services[svcs[n-1].Name]; err != nil {
		return nil, err
	}
	fmt.Printf("cold_ms=%.1f vip=%s services=%d endpoints=%d\n", ms(cold), vip(n-1), n, eps)
	return e, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuTime is the process's user+system CPU time, and its children's.
func cpuTime() (self, children time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return self, time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// change loads n services, then changes one endpoint of the middle one k
// times (back and forth between two addresses), each an Apply of it.
func change(n, eps, k int) error {
	e, err := load(n, eps)
	if err != nil {
		return err
	}
	s := service(n, eps, n/2)
	alt := [2]netip.Addr{s.Endpoints[0].Addr, netip.MustParseAddr("10.99.0.1")}
	var times []float64
	cpu0, _ := cpuTime()
	for i := 0; i < k; i++ {
		s.Endpoints[0].Addr = alt[(i+1)%2]
		start := time.Now()
		if err := upsert(context.Background(), e, s); err != nil {
			return err
		}
		times = append(times, ms(time.Since(start)))
	}
	cpu1, _ := cpuTime()
	slices.Sort(times)
	fmt.Printf("change_p50_ms=%.2f change_max_ms=%.2f cpu_ms_per_change=%.3f changes=%d\n",
		times[len(times)/2], times[len(times)-1], ms(cpu1-cpu0)/float64(k), k)
	return nil
}

// cpuProfile is the file of -cpuprofile ("": none).
var cpuProfile string

// profile starts the CPU profile of -cpuprofile, if any; the returned
// function stops it.
func profile() (stop func() error, err error) {
	if cpuProfile == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error { pprof.StopCPUProfile(); return f.Close() }, nil
}

// restart loads n services, then times what a restarted podnetd does:
// a new engine, whose first Sync leaves the service rules in place, and
// whose first Replace compares them with the kernel's and changes
// what differs (nothing, here) in one batch.
func restart(n, eps int) error {
	if _, err := load(n, eps); err != nil {
		return err
	}
	e := newEngine()
	ctx := context.Background()
	stop, err := profile()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := e.Sync(ctx); err != nil {
		return err
	}
	synced := time.Since(start)
	res, err := e.Apply(ctx, replace(services(n, eps)))
	if err != nil {
		return err
	}
	total := time.Since(start)
	fmt.Printf("restart_sync_ms=%.1f restart_replace_ms=%.1f restart_ms=%.1f kernel_changes=%d\n",
		ms(synced), ms(total-synced), ms(total), res.Kernel)
	return stop()
}

// steady is B13: n services loaded, the canary running as in podnetd,
// idle for a while, then changes at rate for d. CPU is the process's own
// plus its children's (the canary's iptables execs).
func steady(n, eps int, rate float64, d, idle time.Duration) error {
	e, err := load(n, eps)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx, 10*time.Second) // podnetd's interval
	// The canary checks every second for its first minute (see Run):
	// measure idle after that, as a long-running podnetd is.
	time.Sleep(65 * time.Second)
	self0, kids0 := cpuTime()
	t0 := time.Now()
	time.Sleep(idle)
	self1, kids1 := cpuTime()
	idleWall := time.Since(t0)
	s := service(n, eps, n/2)
	alt := [2]netip.Addr{s.Endpoints[0].Addr, netip.MustParseAddr("10.99.0.1")}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	t1 := time.Now()
	changes := 0
	for time.Since(t1) < d {
		<-tick.C
		s.Endpoints[0].Addr = alt[(changes+1)%2]
		if err := upsert(ctx, e, s); err != nil {
			return err
		}
		changes++
	}
	self2, kids2 := cpuTime()
	busyWall := time.Since(t1)
	rss, hwm := memory()
	fmt.Printf("idle_cpu_pct=%.3f idle_children_cpu_pct=%.3f busy_cpu_pct=%.3f cpu_ms_per_change=%.3f changes=%d rss_mb=%.1f hwm_mb=%.1f\n",
		100*(self1-self0).Seconds()/idleWall.Seconds(), 100*(kids1-kids0).Seconds()/idleWall.Seconds(),
		100*((self2-self1)+(kids2-kids1)).Seconds()/busyWall.Seconds(),
		ms((self2-self1)+(kids2-kids1))/float64(changes), changes, rss, hwm)
	return nil
}

// memory is VmRSS and VmHWM of this process, in MiB.
func memory() (rss, hwm float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		if _, err := fmt.Sscanf(sc.Text(), "VmRSS: %f kB", &kb); err == nil {
			rss = kb / 1024
		}
		if _, err := fmt.Sscanf(sc.Text(), "VmHWM: %f kB", &kb); err == nil {
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// chainID is kube-proxy's chain suffix: base32 of a sha256, 16 characters.
func chainID(prefix, s string) string {
	h := sha256.Sum256([]byte(s))
	return prefix + base32.StdEncoding.EncodeToString(h[:])[:16]
}

// kubeProxy writes kube-proxy's iptables-mode nat rules for the services
// (performance.md §6.3): KUBE-SERVICES with one rule per service (the
// measured one last) jumping to KUBE-SVC-…, which picks a KUBE-SEP-… with
// the statistic match (probability 1/(E-j)), which marks hairpin traffic
// for masquerade and DNATs. mode partial is what a kube-proxy partial
// sync sends after one endpoint change (for iptables-restore --noflush):
// all of KUBE-SERVICES and the changed service's chains. mode anchor is
// one DNAT rule for the measured VIP (to its first backend).
func kubeProxy(w io.Writer, n, eps int, mode string) error {
	b := bufio.NewWriter(w)
	defer b.Flush()
	fmt.Fprintln(b, "*nat")
	if mode == "anchor" {
		fmt.Fprintf(b, "-A OUTPUT -d %s/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination %s:8080\nCOMMIT\n",
			vip(n-1), endpoint(n, n-1, 0))
		return nil
	}
	changed := n / 2
	var rules strings.Builder
	chains := []string{"KUBE-SERVICES"}
	if mode == "full" {
		chains = append(chains, "KUBE-MARK-MASQ")
		fmt.Fprintln(&rules, "-A PREROUTING -j KUBE-SERVICES")
		fmt.Fprintln(&rules, "-A OUTPUT -j KUBE-SERVICES")
		fmt.Fprintln(&rules, "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000")
	} else if mode != "partial" {
		return fmt.Errorf("unknown mode %q", mode)
	}
	for i := 0; i < n; i++ {
		s := service(n, eps, i)
		svc := chainID("KUBE-SVC-", s.Name)
		comment := fmt.Sprintf("default/%s:http", s.Name)
		fmt.Fprintf(&rules, "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport 80 -j %s\n",
			s.ClusterIP, comment, svc)
		if mode == "partial" && i != changed {
			continue
		}
		if mode == "partial" {
			s.Endpoints[0].Addr = netip.MustParseAddr("10.99.0.1")
		}
		chains = append(chains, svc)
		for j, ep := range s.Endpoints {
			sep := chainID("KUBE-SEP-", s.Name+ep.Addr.String())
			chains = append(chains, sep)
			prob := ""
			if j < len(s.Endpoints)-1 {
				prob = fmt.Sprintf(" -m statistic --mode random --probability %.10f", 1/float64(len(s.Endpoints)-j))
			}
			fmt.Fprintf(&rules, "-A %s -m comment --comment \"%s -> %s:8080\"%s -j %s\n", svc, comment, ep.Addr, prob, sep)
			fmt.Fprintf(&rules, "-A %s -s %s/32 -m comment --comment \"%s\" -j KUBE-MARK-MASQ\n", sep, ep.Addr, comment)
			fmt.Fprintf(&rules, "-A %s -p tcp -m comment --comment \"%s\" -m tcp -j DNAT --to-destination %s:8080\n", sep, comment, ep.Addr)
		}
	}
	if mode == "partial" {
		// The endpoint that left: its chain goes.
		old := service(n, eps, changed).Endpoints[0].Addr
		sep := chainID("KUBE-SEP-", fmt.Sprintf("s%d", changed)+old.String())
		chains = append(chains, sep)
		fmt.Fprintf(&rules, "-X %s\n", sep)
	}
	for _, c := range chains {
		fmt.Fprintf(b, ":%s - [0:0]\n", c)
	}
	b.WriteString(rules.String())
	fmt.Fprintln(b, "COMMIT")
	return nil
}
