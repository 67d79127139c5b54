package hostid

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/podnet/podnet/store"
)

// Self describes this process for its Holder record; addr is the host's
// underlay address ("" when it has none).
func Self(addr netip.Addr) store.Holder {
	h := store.Holder{Instance: randomID(), Addr: addr, PID: os.Getpid()}
	h.Machine, _ = os.Hostname()
	h.Boot = readTrimmed("/proc/sys/kernel/random/boot_id")
	h.PIDNS, _ = os.Readlink("/proc/self/ns/pid")
	if st, err := procStat("self"); err == nil {
		h.PIDStart = st.start
	}
	return h
}

// running says whether holder is a process that still runs, when this
// process can tell: same boot and PID namespace (known), and then whether
// its PID exists with the start time it recorded (a reused PID does not
// count) and is not a zombie (killed with -9, not yet reaped by its
// parent: it holds nothing any more).
func running(self, holder store.Holder) (known, alive bool) {
	if self.Boot == "" || holder.Boot != self.Boot || holder.PIDNS == "" || holder.PIDNS != self.PIDNS || holder.PID <= 0 {
		return false, false
	}
	st, err := procStat(strconv.Itoa(holder.PID))
	return true, err == nil && st.start == holder.PIDStart && st.state != "Z" && st.state != "X"
}

type stat struct {
	state string // R, S, D, Z (zombie), X (dead), ...
	start uint64 // clock ticks after boot
}

// procStat reads fields 3 (state) and 22 (start time) of /proc/<pid>/stat.
func procStat(pid string) (stat, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return stat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%s/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%s/stat: %d fields after the command name", pid, len(f))
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return stat{state: f[0], start: start}, err
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
	where := "an address it does not record (no multi-host networking)"
	if h.Addr.IsValid() {
		where = h.Addr.String()
	}
	if len(parts) == 0 {
		return where
	}
	return where + " (" + strings.Join(parts, ", ") + ")"
}
