package store

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
)

func TestURLAddrPorts(t *testing.T) {
	got := URLAddrPorts(context.Background(), []string{
		"http://10.0.0.5:2379", "https://10.0.0.6:2380", "10.0.0.7:2379", "https://[fd00::7]:2379",
		"unix:///var/lib/podnet/etcd.sock", "unix://localhost:0", "http://10.0.0.8", "garbage", "https://localhost:2381",
	}, slog.New(slog.DiscardHandler))
	want := "[10.0.0.5:2379 10.0.0.6:2380 10.0.0.7:2379 [fd00::7]:2379"
	if s := fmt.Sprint(got); len(s) < len(want) || s[:len(want)] != want {
		t.Fatalf("got %v, want %s ... (then localhost's addresses)", got, want)
	}
	for _, ap := range got[4:] {
		if !ap.Addr().IsLoopback() || ap.Port() != 2381 {
			t.Fatalf("localhost resolved to %v", ap)
		}
	}
}
