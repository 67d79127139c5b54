package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// dnsServer adds port 53 to a bare address.
func dnsServer(server string) string {
	if _, _, err := net.SplitHostPort(server); err != nil {
		return net.JoinHostPort(server, "53")
	}
	return server
}

// dnsA asks server for name's A records once: the addresses and how long
// the answer took.
func dnsA(c *dns.Client, server, name string) ([]net.IP, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, rtt, err := c.Exchange(m, server)
	if err != nil {
		return nil, rtt, err
	}
	var out []net.IP
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A)
		}
	}
	return out, rtt, nil
}

// dnsTimes asks each name once (the first lookup), then repeat times
// more (cached), and prints the latency percentiles of both in
// microseconds and how many first lookups had an answer.
func dnsTimes(server string, repeat int, names []string) error {
	server = dnsServer(server)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	var first, cached []time.Duration
	answered := 0
	for _, n := range names {
		t0 := time.Now()
		ips, _, err := dnsA(c, server, n)
		first = append(first, time.Since(t0))
		if err == nil && len(ips) > 0 {
			answered++
		}
	}
	for range repeat {
		for _, n := range names {
			t0 := time.Now()
			if _, _, err := dnsA(c, server, n); err != nil {
				return err
			}
			cached = append(cached, time.Since(t0))
		}
	}
	pct := func(ds []time.Duration, p float64) int64 {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()
	}
	fmt.Printf("first p50 %d p99 %d cached p50 %d p99 %d answered %d of %d\n",
		pct(first, 0.50), pct(first, 0.99), pct(cached, 0.50), pct(cached, 0.99), answered, len(names))
	return nil
}

// dnsGone asks for name every millisecond until it has no A record (or
// no answer within 50 ms: podnet no longer answers it and forwards it)
// and prints the Unix time in nanoseconds at which that query was sent.
func dnsGone(server, name, timeout string) error {
	server = dnsServer(server)
	ms, err := strconv.Atoi(timeout)
	if err != nil {
		return fmt.Errorf("timeout %q: want milliseconds", timeout)
	}
	c := &dns.Client{Net: "udp", Timeout: 50 * time.Millisecond}
	end := time.Now().Add(time.Duration(ms) * time.Millisecond)
	fmt.Println("asking") // the caller may change the records from now on
	for time.Now().Before(end) {
		sent := time.Now()
		ips, _, err := dnsA(c, server, name)
		if err != nil || len(ips) == 0 {
			fmt.Printf("gone %d\n", sent.UnixNano())
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s still resolves after %s ms", name, timeout)
}
