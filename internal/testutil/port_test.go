package testutil

import (
	"fmt"
	"net"
	"testing"
)

// A port FreePort gives is bindable and never one the kernel would hand
// an outgoing connection as its source port.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	for range 20 {
		p := FreePort(t)
		if p < 10000 || p >= low {
			t.Fatalf("FreePort gave %d, want 10000 ≤ port < %d", p, low)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		_ = l.Close()
	}
}
