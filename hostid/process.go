package hostid

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/podnet/podnet/store"
)

// Self describes this process for its Holder record; addr is the host's
// underlay address ("" when it has none).
func Self(addr string) store.Holder {
	h := store.Holder{Instance: randomID(), Addr: addr, PID: os.Getpid()}
	h.Machine, _ = os.Hostname()
	h.Boot = readTrimmed("/proc/sys/kernel/random/boot_id")
	h.PIDNS, _ = os.Readlink("/proc/self/ns/pid")
	h.PIDStart, _ = startTime("self")
	return h
}

// running says whether holder is a process that still runs, when this
// process can tell: same boot and PID namespace (known), and then whether
// its PID exists with the start time it recorded (a reused PID does not
// count).
func running(self, holder store.Holder) (known, alive bool) {
	if self.Boot == "" || holder.Boot != self.Boot || holder.PIDNS == "" || holder.PIDNS != self.PIDNS || holder.PID <= 0 {
		return false, false
	}
	st, err := startTime(strconv.Itoa(holder.PID))
	return true, err == nil && st == holder.PIDStart
}

// startTime reads field 22 of /proc/<pid>/stat: when the process started,
// in clock ticks after boot.
func startTime(pid string) (uint64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%s/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%s/stat: %d fields after the command name", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// describe names a holder for messages: "10.0.0.12 (machine m, pid 42)".
func describe(h *store.Holder) string {
	if h == nil {
		return "a podnetd that does not record its address (an older version?)"
	}
	var parts []string
	if h.Machine != "" {
		parts = append(parts, "machine "+h.Machine)
	}
	if h.PID > 0 {
		parts = append(parts, "pid "+strconv.Itoa(h.PID))
	}
	where := h.Addr
	if where == "" {
		where = "an address it does not record (no multi-host networking)"
	}
	if len(parts) == 0 {
		return where
	}
	return where + " (" + strings.Join(parts, ", ") + ")"
}
