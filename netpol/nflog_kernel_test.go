package netpol

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/testutil"
)

// TestKernelNFLOG: a packet an nft log statement sends to the policy log
// group arrives with its prefix, addresses, protocol and ports.
func TestKernelNFLOG(t *testing.T) {
	ns := testutil.NewNetNS(t)
	ns.MustExec(t, "nft", "add table inet t")
	ns.MustExec(t, "nft", "add chain inet t out { type filter hook output priority 0; }")
	ns.MustExec(t, "nft", `add rule inet t out udp dport 9 log prefix "`+dataplane.PolicyLogPrefixOut+` " group 1742`)
	var n *nflogConn
	if err := ns.Do(func() (err error) { n, err = dialNFLOG(logGroup); return err }); err != nil {
		t.Fatal(err)
	}
	defer n.close()
	got := make(chan []loggedPacket, 1)
	go func() {
		ps, _ := n.receive()
		got <- ps
	}()
	if err := ns.Do(func() error {
		c, err := net.Dial("udp", "127.0.0.1:9")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case ps := <-got:
		if len(ps) != 1 || ps[0].prefix != dataplane.PolicyLogPrefixOut || ps[0].proto != "udp" || ps[0].dstPort != 9 ||
			ps[0].dst != netip.MustParseAddr("127.0.0.1") || ps[0].srcPort == 0 {
			t.Fatalf("logged %+v", ps)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing logged")
	}
}
