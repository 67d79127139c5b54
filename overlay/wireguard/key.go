package wireguard

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// KeyFile is the private key's file name in podnetd's data dir: base64,
// one line, as `wg genkey` writes it. It is an upgrade contract: a host
// whose file goes (a wiped data dir) gets a new key, which every other
// host picks up from etcd.
const KeyFile = "wireguard.key"

// Key is a WireGuard key (private or public).
type Key = wgtypes.Key

// LoadOrCreateKey reads the private key from dir/KeyFile, or generates one
// and writes it there (root-only: the dir 0700, the file 0600, written
// to a temporary file and renamed so that a crash never leaves half a
// key). created reports a new key. A key file readable by others is
// tightened to 0600, not refused: the key itself is not known to have
// leaked.
func LoadOrCreateKey(dir string) (priv Key, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, false, fmt.Errorf("wireguard key: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := wgtypes.ParseKey(strings.TrimSpace(string(b)))
		if err != nil {
			return Key{}, false, fmt.Errorf("wireguard key %s is not a base64 WireGuard key (remove it and a new one is made): %w", path, err)
		}
		if err := ensureMode(path); err != nil {
			return Key{}, false, err
		}
		return k, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return Key{}, false, fmt.Errorf("wireguard key: read %s: %w", path, err)
	}
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return Key{}, false, fmt.Errorf("wireguard key: generate: %w", err)
	}
	tmp, err := os.CreateTemp(dir, KeyFile+".*")
	if err != nil {
		return Key{}, false, fmt.Errorf("wireguard key: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(k.String() + "\n")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return Key{}, false, fmt.Errorf("wireguard key: write %s: %w", path, err)
	}
	return k, true, nil
}

// ensureMode makes the key file 0600.
func ensureMode(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("wireguard key: %w", err)
	}
	if st.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("wireguard key %s is readable by others and cannot be made 0600: %w", path, err)
	}
	return nil
}

// ParseKey reads a base64 public key, as host records carry it.
func ParseKey(s string) (Key, error) { return wgtypes.ParseKey(s) }

// Fingerprint is a short, stable name for a public key: the first 16 hex
// digits of its SHA-256 (podnetctl host ls). `podnetctl host ls -o json`
// and `wg show pnwg peers` give the whole key.
func Fingerprint(pub Key) string {
	s := sha256.Sum256(pub[:])
	return hex.EncodeToString(s[:8])
}
