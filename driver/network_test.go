package driver

import (
	"context"
	"errors"
	"github.com/podnet/podnet/netspec"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/store"
)

// A vxlan network on a host without multi-host setup is refused with the
// reason that setup failed; the check goes by the error's identity.
func TestVXLANUnavailableSaysWhy(t *testing.T) {
	st, err := store.Open(store.Config{Endpoints: []string{"http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := New(Config{Host: "h1", Store: st, Ports: newFakePorts(), Kernel: &link.Kernel{},
		OverlayUnavailable: "no address on the default route's interface"})
	if err != nil {
		t.Fatal(err)
	}
	err = d.CreateNetwork(context.Background(), req(map[string]any{"mode": "vxlan"}, pool("10.1.0.0/16", "")))
	if !errors.Is(err, netspec.ErrModeUnavailable) || !strings.Contains(err.Error(), "no address on the default route's interface") {
		t.Fatalf("got %v, want the mode refused with the overlay's reason", err)
	}
}
