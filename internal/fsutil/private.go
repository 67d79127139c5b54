package fsutil

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrForeignOwner says a directory podnet keeps secrets in belongs to
// another user than the one podnetd runs as.
var ErrForeignOwner = errors.New("owned by another user")

// ForeignOwnerError is ErrForeignOwner with the directory and both users.
type ForeignOwnerError struct {
	Dir        string
	Owner, Own int
}

func (e *ForeignOwnerError) Error() string {
	return fmt.Sprintf("%s is owned by uid %d, not by podnetd's uid %d: whoever owns it can read podnet's keys and "+
		"swap its state; chown -R %d %s (or pick another directory)", e.Dir, e.Owner, e.Own, e.Own, e.Dir)
}

func (e *ForeignOwnerError) Unwrap() error { return ErrForeignOwner }

// PrivateDir makes dir (mkdir -p) and keeps it private: mode 0700 and
// owned by the user podnetd runs as. A directory open to others is made
// 0700 and its previous mode returned (callers log it); one owned by
// another user is refused with a *ForeignOwnerError, since its owner could
// read the keys in it and replace podnet's state whatever its mode. dir
// may be a symbolic link: what it points to is checked.
func PrivateDir(dir string) (was os.FileMode, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("state directory %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return 0, fmt.Errorf("state directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return 0, fmt.Errorf("state directory %s: not a directory", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return 0, &ForeignOwnerError{Dir: dir, Owner: int(sys.Uid), Own: os.Geteuid()}
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return 0, fmt.Errorf("state directory %s: make it private (0700): %w", dir, err)
		}
		return perm, nil
	}
	return 0o700, nil
}
