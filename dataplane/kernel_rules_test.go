package dataplane

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
	l.checkTable(rs)
}

// checkTable checks the kernel's table two ways: `nft list table` prints
// exactly rs's text (so every rule does what its text says), and the
// bytecode equals what nft itself compiles from that text (so registers,
// lengths and byte orders match). Objects are compared in name order:
// the kernel lists them in creation order, which incremental changes mix.
func (l *lab) checkTable(rs *ruleset) {
	t := l.t
	t.Helper()
	listed, err := l.nft("list", "table", "inet", "podnet")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := canonicalListing(listed), canonicalListing(rs.String()); got != want {
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
		t.Fatalf("bytecode differs from nft's own:\nours:\n%s\nnft -f:\n%s", normalizeDebug(ours), normalizeDebug(theirs))
	}
}

// canonicalListing puts each set, map and chain of a listing on one line
// (whitespace collapsed, elements sorted: nft lists them in hash order)
// and sorts those lines by name.
func canonicalListing(s string) string {
	elementsRE := regexp.MustCompile(`elements = \{([^}]*)\}`)
	var blocks []string
	var cur []string
	for _, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "\tset ") || strings.HasPrefix(line, "\tmap ") || strings.HasPrefix(line, "\tchain "):
			cur = []string{trimmed}
		case line == "\t}":
			cur = append(cur, "}")
			blocks = append(blocks, strings.Join(strings.Fields(strings.Join(cur, " ")), " "))
			cur = nil
		case cur != nil:
			cur = append(cur, trimmed)
		}
	}
	for i, b := range blocks {
		blocks[i] = elementsRE.ReplaceAllStringFunc(b, func(m string) string {
			parts := strings.Split(elementsRE.FindStringSubmatch(m)[1], ",")
			for j := range parts {
				parts[j] = strings.TrimSpace(parts[j])
			}
			sort.Strings(parts)
			return "elements = { " + strings.Join(parts, ", ") + " }"
		})
	}
	sort.Strings(blocks)
	return strings.Join(blocks, "\n")
}

// normalizeDebug turns `nft --debug=netlink list table` into blocks (a
// set's elements, a rule's expressions), drops rule handles and the
// numbers of anonymous sets (which depend on creation order), sorts the
// element lines of each set and the blocks by header (rules of one chain
// keep their order), and leaves out the listing that follows.
func normalizeDebug(s string) string {
	handle := regexp.MustCompile(`^(inet podnet \S+)( \d+)+$`)
	anon := regexp.MustCompile(`__(set|map)\d+`)
	type block struct {
		header string
		lines  []string
	}
	var blocks []block
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "table ") {
			break
		}
		line = anon.ReplaceAllString(line, "__$1")
		switch {
		case strings.HasPrefix(line, "inet podnet "):
			blocks = append(blocks, block{header: handle.ReplaceAllString(line, "$1")})
		case line != "" && len(blocks) > 0:
			b := &blocks[len(blocks)-1]
			b.lines = append(b.lines, line)
		}
	}
	text := func(b block) string { return b.header + "\n" + strings.Join(b.lines, "\n") }
	for i := range blocks {
		if strings.HasPrefix(blocks[i].header, "inet podnet @") {
			sort.Strings(blocks[i].lines)
		}
	}
	sort.SliceStable(blocks, func(i, j int) bool {
		a, b := blocks[i], blocks[j]
		if a.header != b.header {
			return a.header < b.header
		}
		// Anonymous sets share a header: order them by content. Rules of
		// one chain keep their order.
		return strings.HasPrefix(a.header, "inet podnet @") && text(a) < text(b)
	})
	var out []string
	for _, b := range blocks {
		out = append(out, text(b))
	}
	return strings.Join(out, "\n\n")
}
