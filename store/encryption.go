package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrEncryptionMismatch is returned by EnsureEncryption when this
// podnetd's --encryption is not the cluster's.
var ErrEncryptionMismatch = errors.New("encryption mode disagrees with the cluster's")

// ValidEncryption reports whether mode is an encryption mode.
func ValidEncryption(mode string) bool { return mode == EncryptionNone || mode == EncryptionWireGuard }

// EnsureEncryption records mode as the cluster's encryption when none is
// recorded yet, or checks it against the recorded one: every podnetd of a
// cluster must agree, or one host would send in clear what another only
// accepts encrypted. A disagreement is ErrEncryptionMismatch, naming both
// modes and what to do.
func (s *Store) EnsureEncryption(ctx context.Context, mode, host string) (Encryption, error) {
	if !ValidEncryption(mode) {
		return Encryption{}, fmt.Errorf("encryption %q: want %s or %s", mode, EncryptionNone, EncryptionWireGuard)
	}
	for range 10 {
		var rec Encryption
		_, err := s.Get(ctx, EncryptionKey, &rec)
		switch {
		case err == nil && rec.Mode == mode:
			return rec, nil
		case err == nil:
			return rec, fmt.Errorf("%w: --encryption %s, but the cluster's encryption is %s (recorded by %s on %s): "+
				"start podnetd with --encryption %s, or switch the cluster first with podnetctl encryption set %s",
				ErrEncryptionMismatch, mode, rec.Mode, rec.Host, rec.Since.Format(time.RFC3339), rec.Mode, mode)
		case !errors.Is(err, ErrNotFound):
			return rec, fmt.Errorf("read the cluster's encryption: %w", err)
		}
		rec = Encryption{Mode: mode, Host: host, Since: time.Now().UTC()}
		_, err = s.Create(ctx, EncryptionKey, rec)
		if err == nil {
			return rec, nil
		}
		if !errors.Is(err, ErrExists) {
			return rec, fmt.Errorf("record the cluster's encryption: %w", err)
		}
	}
	return Encryption{}, fmt.Errorf("record the cluster's encryption %s: etcd keeps changing under it; retry", mode)
}

// GetEncryption reads the cluster's encryption (ErrNotFound: none recorded
// yet, which a podnetd of this version reads as "none").
func (s *Store) GetEncryption(ctx context.Context) (Encryption, error) {
	var rec Encryption
	_, err := s.Get(ctx, EncryptionKey, &rec)
	return rec, err
}

// SetEncryption changes the cluster's encryption (podnetctl encryption
// set): running podnetds keep their mode; each must then be restarted
// with --encryption mode, and one started with another mode refuses to.
func (s *Store) SetEncryption(ctx context.Context, mode, by string) (Encryption, error) {
	if !ValidEncryption(mode) {
		return Encryption{}, fmt.Errorf("encryption %q: want %s or %s", mode, EncryptionNone, EncryptionWireGuard)
	}
	rec := Encryption{Mode: mode, Host: by, Since: time.Now().UTC()}
	if err := s.Put(ctx, EncryptionKey, rec); err != nil {
		return rec, fmt.Errorf("record the cluster's encryption: %w", err)
	}
	return rec, nil
}
