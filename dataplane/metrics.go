package dataplane

import (
	"time"

	"github.com/podnet/podnet/internal/metrics"
)

// Kinds of table changes, as labelled in podnet_nft_*.
const (
	syncFull        = "full"
	syncIncremental = "incremental"
)

// measuredNFT times every change an nftBackend makes and keeps
// podnet_nft_map_elements: set from the ruleset on a full sync,
// adjusted by what an incremental update deleted and added. The Engine
// serialises its calls (Engine.mu), so the arithmetic sees them in order.
type measuredNFT struct{ nftBackend }

func measured(b nftBackend) nftBackend { return measuredNFT{b} }

func (m measuredNFT) syncTable(rs *ruleset, rewrite func(name string) bool) (int, error) {
	start := time.Now()
	n, err := m.nftBackend.syncTable(rs, rewrite)
	observeNFT(syncFull, start, err)
	if err == nil {
		metrics.NFTMapElements.Set(float64(mapElements(rs)))
	}
	return n, err
}

// applyDelta is an incremental change of the service section; the element
// count follows what it added and deleted (exact again at the next full
// sync: the elements of a deleted set are counted as they are deleted).
func (m measuredNFT) applyDelta(table string, d *tableDelta) (int, error) {
	start := time.Now()
	n, err := m.nftBackend.applyDelta(table, d)
	observeNFT(syncIncremental, start, err)
	if err == nil {
		metrics.NFTMapElements.Add(float64(len(d.addElems) - len(d.delElems)))
	}
	return n, err
}

func (m measuredNFT) updateElements(table string, del, add []element) error {
	start := time.Now()
	err := m.nftBackend.updateElements(table, del, add)
	observeNFT(syncIncremental, start, err)
	if err == nil {
		metrics.NFTMapElements.Add(float64(len(add) - len(del)))
	}
	return err
}

// setKeys passes LoadPeers' read through, so that measuring the backend
// does not hide what it can do.
func (m measuredNFT) setKeys(table, set string) ([][]byte, error) {
	r, ok := m.nftBackend.(setReader)
	if !ok {
		return nil, nil
	}
	return r.setKeys(table, set)
}

func (m measuredNFT) deleteTable(table string) error {
	err := m.nftBackend.deleteTable(table)
	if err == nil {
		metrics.NFTMapElements.Set(0)
	}
	return err
}

func observeNFT(kind string, start time.Time, err error) {
	metrics.NFTSyncs.WithLabelValues(kind, metrics.Outcome(err)).Inc()
	metrics.Since(metrics.NFTSyncDuration.WithLabelValues(kind), start)
}

// mapElements counts the elements of rs's maps (published ports), not
// those of its plain sets (subnets).
func mapElements(rs *ruleset) int {
	n := 0
	for _, s := range rs.sets {
		if s.isMap {
			n += len(s.elems)
		}
	}
	return n
}

// canaryReason labels a canary-triggered resync: the check failed, or it
// found podnet's rules missing.
func canaryReason(checkErr error) string {
	if checkErr != nil {
		return "check_failed"
	}
	return "missing"
}
