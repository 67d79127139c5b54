package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/podnet/podnet/internal/testutil"
)

// TestKernelSyncKeepsConnectionsAndRestores: Sync replaces the table
// without dropping an established connection, and brings published ports
// back after the table was deleted behind the engine's back.
func TestKernelSyncKeepsConnectionsAndRestores(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	c1 := l.container(n, 2)
	serve(t, c1.ns, 80, "c1")
	l.addNetwork(n)
	l.publish("ep1", n, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})

	var conn net.Conn
	if err := l.client.Do(func() (err error) { conn, err = net.DialTimeout("tcp", hostIP4+":8080", time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	echo := func(msg string) {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := fmt.Fprintln(conn, msg); err != nil {
			t.Fatalf("write on established connection: %v", err)
		}
		if got, err := r.ReadString('\n'); err != nil || strings.TrimSpace(got) != msg {
			t.Fatalf("established connection: read %q, %v; want %q", got, err, msg)
		}
	}
	if greeting, err := r.ReadString('\n'); err != nil || strings.TrimSpace(greeting) != "c1 "+clientIP4 {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	echo("before sync")
	l.do(func() error { return l.eng.Sync(l.ctx) })
	echo("after sync")

	if _, err := l.nft("delete", "table", "inet", "podnet"); err != nil {
		t.Fatal(err)
	}
	mustNotConnect(t, l.client, hostIP4+":8080")
	l.do(func() error { return l.eng.Sync(l.ctx) })
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)
	echo("after delete and sync")
}

// TestKernelRunCanary: Run notices `nft flush ruleset` (which also takes
// iptables-nft's tables) and a removed iptables jump, and resyncs.
func TestKernelRunCanary(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	n := l.bridge(1)
	c1 := l.container(n, 2)
	serve(t, c1.ns, 80, "c1")
	// Docker's FORWARD policy, with DOCKER-USER as a running dockerd has it.
	dockerChains(t, l, "iptables")
	l.addNetwork(n)
	l.publish("ep1", n, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.host.Do(func() error { l.eng.Run(ctx, 50*time.Millisecond); return nil })
	}()
	defer func() { cancel(); <-done }()
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)

	l.host.MustExec(t, "nft", "flush", "ruleset")
	// Docker re-creates its chains (dockerd restart): the canary must put
	// our jump back into DOCKER-USER.
	dockerChains(t, l, "iptables")
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)
	waitJump(t, l, "iptables", "DOCKER-USER")

	l.host.MustExec(t, "iptables", "-D", "DOCKER-USER", "-j", "PODNET-FORWARD")
	waitJump(t, l, "iptables", "DOCKER-USER")
	mustHello(t, l.client, "tcp", hostIP4+":8080", "c1 "+clientIP4)
}

// dockerChains sets up what dockerd leaves in the filter table: FORWARD
// policy DROP and an empty DOCKER-USER jumped to first.
func dockerChains(t *testing.T, l *lab, bin string) {
	t.Helper()
	l.host.MustExec(t, bin, "-P", "FORWARD", "DROP")
	l.host.MustExec(t, bin, "-N", "DOCKER-USER")
	l.host.MustExec(t, bin, "-A", "DOCKER-USER", "-j", "RETURN")
	l.host.MustExec(t, bin, "-I", "FORWARD", "1", "-j", "DOCKER-USER")
}

// waitJump waits until `<bin> -S <parent>` starts with our jump.
func waitJump(t *testing.T, l *lab, bin, parent string) {
	t.Helper()
	want := fmt.Sprintf("-A %s -j PODNET-FORWARD", parent)
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%s -S %s starts with %q", bin, parent, want), func() error {
		out, _ := l.host.Exec(bin, "-S", parent)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) > 1 && lines[1] == want {
			return nil
		}
		return fmt.Errorf("got:\n%s", out)
	})
}
