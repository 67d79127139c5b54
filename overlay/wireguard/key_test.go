package wireguard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The key is made once, root-only, and read back the same; a key file
// readable by others is tightened; a file that is no key is refused
// naming it.
func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, created, err := LoadOrCreateKey(dir)
	if err != nil || !created {
		t.Fatalf("first call: created %v, err %v", created, err)
	}
	path := filepath.Join(dir, KeyFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (err %v), want 0600", st.Mode().Perm(), err)
	}
	if d, _ := os.Stat(dir); d.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v, want 0700", d.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(dir)
	if err != nil || created || k2 != k1 {
		t.Fatalf("second call: created %v, same key %v, err %v", created, k2 == k1, err)
	}
	if k1.PublicKey() == k1 || Fingerprint(k1.PublicKey()) == Fingerprint(k1) || len(Fingerprint(k1.PublicKey())) != 16 {
		t.Fatalf("public key or fingerprint wrong: %s", Fingerprint(k1.PublicKey()))
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("a key readable by others was left %v", st.Mode().Perm())
	}
	if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a file that is no key: err %v, want one naming %s", err, path)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("files left in the data dir: %v", ents)
	}
}
