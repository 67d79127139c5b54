package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	dnet "github.com/docker/docker/api/types/network"
	"github.com/podnet/podnet/store"
)

// noNetworks is a Docker with no networks that records the creates.
type noNetworks struct{ created []string }

func (f *noNetworks) NetworkInspect(context.Context, string, dnet.InspectOptions) (dnet.Inspect, error) {
	return dnet.Inspect{}, fmt.Errorf("no such network: %w", cerrdefs.ErrNotFound)
}

func (f *noNetworks) NetworkCreate(_ context.Context, name string, o dnet.CreateOptions) (dnet.CreateResponse, error) {
	f.created = append(f.created, fmt.Sprintf("%s %v", name, o.Options))
	return dnet.CreateResponse{ID: name}, nil
}

func (f *noNetworks) NetworkRemove(context.Context, string) error { return nil }

func definitionKV(t *testing.T, d store.LogicalNetwork) store.KV {
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return store.KV{Key: store.LNetKey(d.Subnets[0]), Value: b}
}

// A definition stored before podnetctl validated them (a typo'd option)
// is reported once, naming the fix, and never sent to Docker: no host's
// driver could create it. A valid one next to it is created.
func TestNetSyncReportsAnInvalidDefinitionOnce(t *testing.T) {
	var logs bytes.Buffer
	docker := &noNetworks{}
	s := NewNetSync(NetSyncConfig{Docker: docker, Driver: "podnet", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s.Snapshot([]store.KV{
		definitionKV(t, store.LogicalNetwork{Name: "typo2", Mode: "vxlan", Subnets: []netip.Prefix{netip.MustParsePrefix("10.71.0.0/16")},
			Options: map[string]string{"podnet.masqurade": "false"}}),
		definitionKV(t, store.LogicalNetwork{Name: "good", Mode: "vxlan", VNI: 4096, Subnets: []netip.Prefix{netip.MustParsePrefix("10.72.0.0/16")},
			Options: map[string]string{"podnet.direct-routing": "true"}}),
	})
	for range 3 {
		s.apply(context.Background())
	}
	if n := strings.Count(logs.String(), "cannot be created on any host"); n != 1 {
		t.Fatalf("reported %d times:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `unknown option \"podnet.masqurade\"`) {
		t.Fatalf("log does not name the option:\n%s", logs.String())
	}
	for _, c := range docker.created {
		if strings.HasPrefix(c, "typo2 ") {
			t.Fatalf("invalid definition sent to Docker: %v", docker.created)
		}
	}
	if len(docker.created) != 3 || !strings.HasPrefix(docker.created[0], "good map[mode:vxlan podnet.direct-routing:true podnet.vni:4096]") {
		t.Fatalf("creates: %v", docker.created)
	}
}
