package driver

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/podnet/podnet/dataplane"
	"github.com/podnet/podnet/internal/testutil"
	"github.com/podnet/podnet/store"
	"github.com/vishvananda/netlink"
)

const cniEP = "cccccccccccc3333333333333333333333333333333333333333333333333333"

func cniSpec() AttachSpec {
	return AttachSpec{ID: cniEP, Network: netID, IPv4: netip.MustParsePrefix("10.77.0.9/16"),
		Ports: []dataplane.Binding{{Proto: dataplane.TCP, HostPort: 8080, HostPortEnd: 8080, ContainerPort: 80}},
		CNI:   store.CNIAttachment{Network: "pods", ContainerID: "c0ffee", IfName: "eth0", NetNS: "/run/netns/x"},
		Meta:  store.EndpointMeta{Container: "c0ffee", Name: "web1", Aliases: []string{"web"}, Ready: true}}
}

// A CNI attachment is a Docker endpoint in everything but its caller: the
// same veth on the bridge, one transaction for the endpoint, its address
// ownership and its metadata, ports in the NAT engine; Docker's GC leaves
// it alone; DeadAttachments finds it once its container is gone or when
// the plugin never took its interface; Detach removes everything, twice.
func TestCNIAttachmentLifecycle(t *testing.T) {
	r := newRig(t, nil, "h1")
	ctx := context.Background()
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, bridgeReq(netID, map[string]any{}, false)) })
	pool, ip := netip.MustParsePrefix("10.77.0.0/16"), netip.MustParseAddr("10.77.0.9")
	if _, err := r.st.Create(ctx, store.AddrKey(pool, ip), store.Address{IP: ip, Kind: store.AddrContainer, Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	if n, ok := r.d.NetworkByPool(pool); !ok || n.ID != netID {
		t.Fatalf("NetworkByPool(%s) = %v, %v", pool, n.ID, ok)
	}
	var ep *store.Endpoint
	r.mustCall(func() error {
		var err error
		ep, err = r.d.Attach(ctx, cniSpec())
		return err
	})
	host, err := r.ns.NL.LinkByName(ep.HostVeth)
	if err != nil {
		t.Fatalf("host veth %s: %v", ep.HostVeth, err)
	}
	br, _ := r.ns.NL.LinkByName("pn-aaaaaaaaaaaa")
	if host.Attrs().MasterIndex != br.Attrs().Index {
		t.Fatalf("host veth not on the bridge")
	}
	var rec store.Endpoint
	if _, err := r.st.Get(ctx, store.EndpointKey("h1", cniEP), &rec); err != nil || rec.CNI == nil || rec.CNI.ContainerID != "c0ffee" || len(rec.Ports) != 1 {
		t.Fatalf("endpoint record %+v, %v: want the CNI attachment with its port", rec, err)
	}
	var meta store.EndpointMeta
	if _, err := r.st.Get(ctx, store.EndpointMetaKey("h1", cniEP), &meta); err != nil || meta.Runtime != store.RuntimeCNI ||
		meta.Name != "web1" || meta.IPv4 != ip || meta.Network != netID || !meta.Ready {
		t.Fatalf("metadata %+v, %v: want the container's name and address, written with the endpoint", meta, err)
	}
	var addr store.Address
	if _, err := r.st.Get(ctx, store.AddrKey(pool, ip), &addr); err != nil || addr.Endpoint != cniEP {
		t.Fatalf("address record %+v, %v: want the attachment as owner", addr, err)
	}
	if len(r.ports.published[cniEP]) != 1 {
		t.Fatalf("ports not published: %v", r.ports.published)
	}
	// A retried ADD: the same endpoint, nothing new.
	r.mustCall(func() error {
		again, err := r.d.Attach(ctx, cniSpec())
		if err == nil && again.HostVeth != ep.HostVeth {
			err = errors.New("a retried attach made another endpoint")
		}
		return err
	})
	if _, err := r.d.CheckAttachment(cniEP); err != nil {
		t.Fatalf("check of a healthy attachment: %v", err)
	}

	// The plugin never moved the peer into a container: stranded.
	if dead, err := r.d.DeadAttachments(-time.Second); err != nil || len(dead) != 1 {
		t.Fatalf("DeadAttachments = %v, %v: want the attachment whose peer stayed on the host", dead, err)
	}
	// Now it does; the attachment lives.
	ctr := testutil.NewNetNS(t)
	peer, _ := r.ns.NL.LinkByName(ep.PeerVeth)
	if err := r.ns.NL.LinkSetNsFd(peer, int(ctr.Handle)); err != nil {
		t.Fatal(err)
	}
	if dead, err := r.d.DeadAttachments(-time.Second); err != nil || len(dead) != 0 {
		t.Fatalf("DeadAttachments = %v, %v: want none while the container has its interface", dead, err)
	}
	if dead, _ := r.d.DeadAttachments(time.Hour); len(dead) != 0 {
		t.Fatal("an attachment younger than the grace period counted as dead")
	}
	// Docker never knew it: Docker's GC leaves it alone.
	r.mustCall(func() error {
		res, err := r.d.GC(ctx, Live{Networks: map[string]bool{netID: true}, Endpoints: map[string]bool{}}, -time.Second)
		if err == nil && len(res.Endpoints) != 0 {
			err = errors.New("Docker's GC removed a CNI attachment")
		}
		return err
	})
	// The container's namespace goes: so does the pair, and the
	// attachment is dead.
	if err := ctr.NL.LinkDel(mustLink(t, ctr, ep.PeerVeth)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "host veth gone with its peer", func() error {
		if _, err := r.ns.NL.LinkByName(ep.HostVeth); err == nil {
			return errors.New("host veth still there")
		}
		return nil
	})
	if _, err := r.d.CheckAttachment(cniEP); err == nil {
		t.Fatal("check passed for an attachment without its interface")
	}
	if dead, _ := r.d.DeadAttachments(-time.Second); len(dead) != 1 {
		t.Fatalf("DeadAttachments = %v: want the attachment whose interface is gone", dead)
	}

	r.mustCall(func() error {
		got, err := r.d.Detach(ctx, cniEP)
		if err == nil && (got == nil || got.IPv4 != cniSpec().IPv4) {
			err = errors.New("Detach did not return the endpoint (its addresses are released from it)")
		}
		return err
	})
	for _, key := range []string{store.EndpointKey("h1", cniEP), store.EndpointMetaKey("h1", cniEP)} {
		if _, err := r.st.Get(ctx, key, nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s left after Detach: %v", key, err)
		}
	}
	if _, ok := r.ports.published[cniEP]; ok {
		t.Fatal("ports left after Detach")
	}
	r.mustCall(func() error {
		got, err := r.d.Detach(ctx, cniEP)
		if err == nil && got != nil {
			err = errors.New("a second Detach found an endpoint")
		}
		return err
	})
}

func mustLink(t *testing.T, ns *testutil.NetNS, name string) netlink.Link {
	t.Helper()
	l, err := ns.NL.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// CNI attachments need a bridge: a none network is refused, naming why.
func TestCNIAttachmentRefusedOnNoneNetwork(t *testing.T) {
	r := newRig(t, nil, "h1")
	ctx := context.Background()
	req := &network.CreateNetworkRequest{NetworkID: netID, Options: map[string]any{labelGeneric: map[string]any{"mode": "none"}},
		IPv4Data: []*network.IPAMData{pool("10.77.0.0/16", "10.77.0.1/16")}}
	r.mustCall(func() error { return r.d.CreateNetwork(ctx, req) })
	err := r.call(func() error { _, err := r.d.Attach(ctx, cniSpec()); return err })
	if !errors.Is(err, ErrCNIMode) {
		t.Fatalf("Attach on a none network: %v, want ErrCNIMode", err)
	}
	if _, err := r.st.Get(ctx, store.EndpointKey("h1", cniEP), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused attach left a record: %v", err)
	}
}
