package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/podnet/podnet/internal/link"
	"github.com/podnet/podnet/overlay"
	"github.com/podnet/podnet/overlay/wireguard"
	"github.com/podnet/podnet/store"
	"golang.zx2c4.com/wireguard/wgctrl"
)

// setupEncryption makes this host's WireGuard device before anything else
// starts, so that a podnetd asked for encryption on a kernel without
// WireGuard refuses to start at once, naming CONFIG_WIREGUARD, instead of
// running in clear. The private key is read from (or made in) the data
// dir; it never leaves the host. Without encryption, a device left by an
// earlier run with encryption is removed (its routes go with it; the
// overlay then routes over VXLAN). closeFn releases the wgctrl client
// and, if abandon is set (podnetd is not going to run), removes a device
// this call created: a refused start leaves nothing behind.
func setupEncryption(cfg *config, k *link.Kernel, log *slog.Logger) (dev *wireguard.Device, closeFn func(abandon bool), err error) {
	if cfg.Encryption != store.EncryptionWireGuard {
		if err := wireguard.Delete(k); err != nil {
			log.Warn("cannot remove the WireGuard device of an earlier run with encryption", "iface", wireguard.DeviceName, "err", err)
		}
		return nil, func(bool) {}, nil
	}
	key, created, err := wireguard.LoadOrCreateKey(cfg.DataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("--encryption wireguard: %w", err)
	}
	c, err := wgctrl.New()
	if err != nil {
		return nil, nil, fmt.Errorf("--encryption wireguard: wgctrl: %w", err)
	}
	u, uerr := overlay.DetectUnderlay(k, cfg.AdvertiseAddr)
	mtu := 1500 - wireguard.Overhead
	if uerr == nil && u.MTU > 0 {
		mtu = u.MTU - wireguard.Overhead
	}
	dev, err = wireguard.New(wireguard.Config{Kernel: k, Client: c, Key: key, Port: cfg.WireGuardPort, MTU: mtu,
		Logger: log.With("component", "wireguard")})
	made := false
	if err == nil {
		made, err = dev.Ensure()
	}
	if err != nil {
		_ = c.Close()
		if made {
			_ = wireguard.Delete(k)
		}
		return nil, nil, fmt.Errorf("--encryption wireguard: %w", err)
	}
	if created {
		log.Info("WireGuard key generated", "file", cfg.DataDir+"/"+wireguard.KeyFile, "fingerprint", wireguard.Fingerprint(dev.PublicKey()))
	}
	return dev, func(abandon bool) {
		_ = c.Close()
		if abandon && made {
			if err := wireguard.Delete(k); err != nil {
				log.Warn("cannot remove the WireGuard device of a refused start", "iface", wireguard.DeviceName, "err", err)
			}
		}
	}, nil
}

// ensureEncryption checks --encryption against the cluster's (recording
// it when it is the first): a podnetd that disagrees refuses to start,
// naming both. It waits while etcd is unreachable.
func ensureEncryption(ctx context.Context, st *store.Store, cfg *config, log *slog.Logger) error {
	rec, err := st.EnsureEncryption(ctx, cfg.Encryption, cfg.HostName)
	if err != nil {
		return err
	}
	log.Info("encryption between hosts", "mode", rec.Mode, "recordedBy", rec.Host)
	return nil
}

// hostRecord is this host's record: the overlay's (underlay address and,
// with encryption, its public key and port) or a bare one.
func hostRecord(host string, ov *overlay.Overlay) store.Host {
	if ov != nil {
		return ov.HostRecord()
	}
	return store.Host{Name: host}
}
