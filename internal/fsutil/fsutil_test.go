package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAtomicReplacesAndLeavesNoTemporaryFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "f.json")
	for _, content := range []string{"first", "second"} {
		if err := WriteFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode(), err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, %v; want 0700", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only f.json", len(entries))
	}
	// A failed write (the target is a directory) leaves nothing behind.
	if err := WriteFileAtomic(dir, []byte("x"), 0o600); err == nil {
		t.Fatal("replacing a directory succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Fatalf("a failed write left %d entries", len(entries))
	}
}

func TestPrivateDirMakesAndTightens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "podnet")
	if was, err := PrivateDir(dir); err != nil || was != 0o700 {
		t.Fatalf("fresh: %v %v", was, err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("fresh directory mode %v, %v; want 0700", st.Mode(), err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if was, err := PrivateDir(dir); err != nil || was != 0o755 {
		t.Fatalf("open directory: was %v, %v; want 0755 reported", was, err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("open directory left at %v", st.Mode().Perm())
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := PrivateDir(file); err == nil {
		t.Fatal("a file was accepted as a state directory")
	}
}

func TestPrivateDirRefusesAnotherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	dir := filepath.Join(t.TempDir(), "podnet")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := PrivateDir(dir)
	var fe *ForeignOwnerError
	if !errors.As(err, &fe) || !errors.Is(err, ErrForeignOwner) || fe.Owner != 65534 {
		t.Fatalf("foreign owner: %v", err)
	}
	if !strings.Contains(err.Error(), "uid 65534") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error does not name the owner and directory: %v", err)
	}
}
