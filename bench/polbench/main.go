// Command polbench is the network policy benchmarks' helper (scripts/bench/policy.sh).
//
//	polbench load -n N -server IP -client IP [-local L]
//	    in the current network namespace: podnet's nftables table with
//	    the policy section of a host holding N policies and N labelled
//	    containers (records synthetic: 10.253.x.y) compiled by the code
//	    podnetd runs (package policy, netpol's conversion, the dataplane
//	    Engine). The container at -server is selected by one policy that
//	    allows the container at -client on TCP; L-1 other local endpoints
//	    are selected by policies of their own. N 0: the table without
//	    policies (B15's anchor). Prints "programmed_ms=…".
//	polbench policies -n N [-select KEY=VALUE]
//	    a file of N policies for podnetctl apply -f (filler: each selects
//	    app=fill-i, allows from app=fill-(i+1) on TCP 80); with -select,
//	    one more that selects KEY=VALUE and allows from the fillers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/netpol"
	"github.com/podnet/podnet/policy"
	"github.com/podnet/podnet/store"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: polbench load|policies [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "load":
		err = load(os.Args[2:])
	case "policies":
		err = policies(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "polbench:", err)
		os.Exit(1)
	}
}

// fillAddr is the address of synthetic container i.
func fillAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 253, byte(i >> 8), byte(i)}) }

func fill(i int) map[string]string { return map[string]string{"app": fmt.Sprintf("fill-%d", i)} }

// fillPolicy i selects fill-i and allows fill-(i+1) in on TCP 80.
func fillPolicy(i, n int) store.NetworkPolicy {
	return store.NetworkPolicy{Name: fmt.Sprintf("fill-%d", i), PodSelector: store.LabelSelector{MatchLabels: fill(i)},
		PolicyTypes: []string{store.PolicyIngress},
		Ingress: []store.PolicyRule{{Peers: []store.PolicyPeer{{PodSelector: &store.LabelSelector{MatchLabels: fill((i + 1) % n)}}},
			Ports: []store.PolicyPort{{Protocol: "TCP", Port: 80}}}}}
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	n := fs.Int("n", 1000, "policies and labelled containers")
	local := fs.Int("local", 50, "local endpoints (the server included)")
	server := fs.String("server", "", "the measured endpoint's address")
	client := fs.String("client", "", "the client's address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err1 := netip.ParseAddr(*server)
	cli, err2 := netip.ParseAddr(*client)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("-server and -client: %w", err)
	}
	eng := dataplane.New(dataplane.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	if err := eng.Sync(ctx); err != nil {
		return err
	}
	start := time.Now()
	var p dataplane.Policy
	if *n > 0 {
		// The server is fill-0: fill-0's policy allows fill-1, which the
		// client is; every other local endpoint i is fill-i.
		var pols []store.NetworkPolicy
		for i := range *n {
			pols = append(pols, fillPolicy(i, *n))
		}
		labels := map[netip.Addr]map[string]string{srv: fill(0), cli: fill(1)}
		for i := 2; i < *n; i++ {
			labels[fillAddr(i)] = fill(i)
		}
		targets := []policy.Target{{ID: "server", Name: "server", Known: true, Labels: fill(0), Addrs: []netip.Addr{srv}}}
		for i := 2; i <= *local; i++ {
			targets = append(targets, policy.Target{ID: fmt.Sprint(i), Known: true, Labels: fill(i), Addrs: []netip.Addr{fillAddr(i)}})
		}
		m := policy.Compile(policy.Input{Policies: pols, Targets: targets, Selected: func(key string) []netip.Addr {
			var out []netip.Addr
			for a, l := range labels {
				if "app="+l["app"] == key {
					out = append(out, a)
				}
			}
			return out
		}})
		p = netpol.ToDataplane(m, false)
	}
	if err := eng.SetPolicy(ctx, p); err != nil {
		return err
	}
	fmt.Printf("programmed_ms=%.2f policies=%d endpoints=%d\n", float64(time.Since(start).Microseconds())/1000, *n, len(p.Endpoints))
	return nil
}

func policies(args []string) error {
	fs := flag.NewFlagSet("policies", flag.ContinueOnError)
	n := fs.Int("n", 1000, "filler policies")
	sel := fs.String("select", "", "KEY=VALUE: one more policy selecting it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var b strings.Builder
	for i := range *n {
		fmt.Fprintf(&b, "- kind: NetworkPolicy\n  name: fill-%d\n  podSelector: {matchLabels: {app: fill-%d}}\n"+
			"  ingress: [{from: [{podSelector: {matchLabels: {app: fill-%d}}}], ports: [{port: 80}]}]\n", i, i, (i+1)%*n)
	}
	if *sel != "" {
		k, v, ok := strings.Cut(*sel, "=")
		if !ok {
			return fmt.Errorf("-select %q: want KEY=VALUE", *sel)
		}
		fmt.Fprintf(&b, "- kind: NetworkPolicy\n  name: selected\n  podSelector: {matchLabels: {%q: %q}}\n"+
			"  ingress: [{from: [{podSelector: {matchLabels: {app: fill-1}}}], ports: [{port: 80}]}]\n", k, v)
	}
	_, err := os.Stdout.WriteString(b.String())
	return err
}
