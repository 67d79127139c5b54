package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/store"
)

// Encryption reports the cluster's encryption between hosts (none while
// no podnetd recorded one) and the mode each host's record says it runs.
func (m *Manager) Encryption(ctx context.Context) (admin.Encryption, error) {
	rec, err := m.st.GetEncryption(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = store.Encryption{Mode: store.EncryptionNone}
	case err != nil:
		return admin.Encryption{}, err
	}
	hs, err := m.Hosts(ctx)
	if err != nil {
		return admin.Encryption{}, err
	}
	out := admin.Encryption{Mode: rec.Mode, RecordedBy: rec.Host, Since: rec.Since, Hosts: map[string]string{}}
	for _, h := range hs {
		out.Hosts[h.Name] = h.Encryption
	}
	return out, nil
}

// SetEncryption changes the cluster's encryption for a rolling switch:
// the hosts keep running as they are, and each podnetd must then be
// restarted with --encryption mode (one started with another mode
// refuses to). Between an encrypted host and one not yet switched no
// traffic passes (fail closed).
func (m *Manager) SetEncryption(ctx context.Context, mode, by string) (admin.Encryption, error) {
	if !store.ValidEncryption(mode) {
		return admin.Encryption{}, inputf("encryption %q: want %s or %s", mode, store.EncryptionNone, store.EncryptionWireGuard)
	}
	if _, err := m.st.SetEncryption(ctx, mode, by); err != nil {
		return admin.Encryption{}, fmt.Errorf("set the cluster's encryption: %w", err)
	}
	m.log.Info("cluster encryption changed; restart every podnetd with the new --encryption", "mode", mode, "by", by)
	return m.Encryption(ctx)
}
