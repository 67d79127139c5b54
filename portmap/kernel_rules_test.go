package portmap

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/testutil"
)

// TestKernelTableMatchesNft loads the engine's table and checks it two
// ways: `nft list table` prints exactly the ruleset's text (so every rule
// does what its text says), and the bytecode equals what nft itself
// compiles from that text (so registers, lengths and byte orders match).
func TestKernelTableMatchesNft(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	web := l.bridge(1)
	db := l.bridge(2)
	db.Internal, db.Masquerade = true, false
	c1 := l.container(web, 2)
	l.addNetwork(web)
	l.addNetwork(db)
	l.publish("3f2a1b4c5d6e00000000", web, c1, Binding{Proto: TCP, HostPort: 8080, ContainerPort: 80},
		Binding{Proto: UDP, HostIP: netip.MustParseAddr(hostIP4b), HostPort: 5353, ContainerPort: 53},
		Binding{Proto: SCTP, HostIP: netip.MustParseAddr(hostIP6), HostPort: 9000, ContainerPort: 9})

	var rs *ruleset
	l.do(func() error {
		l.eng.mu.Lock()
		defer l.eng.mu.Unlock()
		rs = buildRuleset(rulesetInput{table: "podnet", bridgePrefix: "pn-", nets: l.eng.nets, eps: l.eng.eps})
		return nil
	})
	l.assertMatchesNft(rs)
}

// assertMatchesNft checks the table in the lab's host two ways against
// rs: `nft list table` prints exactly rs's text, and the bytecode equals
// what nft itself compiles from that text.
func (l *lab) assertMatchesNft(rs *ruleset) {
	t := l.t
	t.Helper()
	listed, err := l.nft("list", "table", "inet", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortElements(listed), sortElements(rs.String()); got != want {
		t.Fatalf("nft list table inet podnet:\n%s\nwant:\n%s", got, want)
	}
	t.Logf("nft list table inet podnet:\n%s", listed)

	text := filepath.Join(t.TempDir(), "podnet.nft")
	if err := os.WriteFile(text, []byte(rs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := testutil.NewNetNS(t)
	ref.MustExec(t, "nft", "-f", text)
	theirs := ref.MustExec(t, "nft", "--debug=netlink", "list", "table", "inet", "podnet")
	ours, err := l.nft("--debug=netlink", "list", "table", "inet", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	if normalizeDebug(ours) != normalizeDebug(theirs) {
		t.Fatalf("bytecode differs from nft's own:\nours:\n%s\nnft -f:\n%s", ours, theirs)
	}
}

// sortElements collapses whitespace and sorts the elements of every set,
// which nft lists in hash order.
func sortElements(s string) string {
	elementsRE := regexp.MustCompile(`elements = \{([^}]*)\}`)
	s = strings.Join(strings.Fields(s), " ")
	return elementsRE.ReplaceAllStringFunc(s, func(m string) string {
		inner := elementsRE.FindStringSubmatch(m)[1]
		parts := strings.Split(inner, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		sort.Strings(parts)
		return "elements = { " + strings.Join(parts, ", ") + " }"
	})
}

// normalizeDebug sorts element lines within each set block and drops rule
// handles, which may differ between two loads.
func normalizeDebug(s string) string {
	handle := regexp.MustCompile(`^(inet podnet \S+)( \d+)+$`)
	var out, block []string
	flush := func() { sort.Strings(block); out = append(out, block...); block = nil }
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "\telement ") {
			block = append(block, line)
			continue
		}
		flush()
		out = append(out, handle.ReplaceAllString(line, "$1"))
	}
	flush()
	return strings.Join(out, "\n")
}
