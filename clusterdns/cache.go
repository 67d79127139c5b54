package clusterdns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/podnet/podnet/internal/fsutil"
)

// The records on disk: what the cluster DNS answers is saved, so that a
// podnetd that restarts while etcd is down answers the names it knew
// (and forwards the rest) instead of nothing until etcd returns.
const (
	// cacheVersion is the file format; a file of another version is ignored.
	cacheVersion = 1
	// maxCachedEndpoints bounds the file (~200 bytes an endpoint).
	maxCachedEndpoints = 65536
	// maxCacheBytes bounds what is read back.
	maxCacheBytes = 32 << 20
	// cacheSaveInterval spaces writes: changes within it are saved together.
	cacheSaveInterval = time.Second
)

// cacheFile is the saved form: only answerable endpoints (ready, on a
// live host), since nothing else is ever answered.
type cacheFile struct {
	Version   int              `json:"version"`
	Saved     time.Time        `json:"saved"`
	Endpoints []cachedEndpoint `json:"endpoints"`
	// Services (cache_services.go) is absent in files of podnetds
	// without service DNS, and ignored by them: the version stays 1.
	Services []cachedService `json:"services,omitempty"`
}

type cachedEndpoint struct {
	Key   string     `json:"key"`
	Host  string     `json:"host"`
	Names []string   `json:"names"`
	PTR   string     `json:"ptr,omitempty"`
	V4    netip.Addr `json:"v4,omitzero"`
	V6    netip.Addr `json:"v6,omitzero"`
}

// diskCache tracks whether the records changed since they were saved and
// whether alive/ delivered a first snapshot (before that, memory may hold
// only what was loaded from disk and must not overwrite the file).
type diskCache struct {
	path        string
	aliveLoaded atomic.Bool
	// recGen and svcGen are the records' change count and the catalog's
	// update count at the last save (saveLoop's goroutine only).
	recGen, svcGen uint64
	saved          bool
}

// loadCache fills the records from the file, if there is one and etcd has
// not answered yet.
func (d *Server) loadCache() {
	if d.cache == nil {
		return
	}
	f, err := readCache(d.cache.path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		d.log.Warn("cluster DNS: saved records unusable; starting empty", "file", d.cache.path, "err", err)
		return
	}
	n := d.recs.restore(f)
	var svcs int
	if d.cfg.Services != nil && !d.cfg.Services.Loaded() {
		if s := restoreServices(f.Services); s != nil {
			d.savedSvcs.Store(s)
			svcs = len(s.byName)
		}
	}
	if n > 0 || svcs > 0 {
		d.log.Info("cluster DNS: answering the records saved on disk until etcd answers",
			"file", d.cache.path, "endpoints", n, "services", svcs, "saved", f.Saved)
	}
}

func readCache(path string) (cacheFile, error) {
	var f cacheFile
	fh, err := os.Open(path)
	if err != nil {
		return f, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxCacheBytes+1))
	if err != nil {
		return f, err
	}
	if len(b) > maxCacheBytes {
		return f, fmt.Errorf("larger than %d bytes", maxCacheBytes)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, err
	}
	if f.Version != cacheVersion {
		return f, fmt.Errorf("format version %d, want %d", f.Version, cacheVersion)
	}
	return f, nil
}

// saveLoop writes the records to disk at most every cacheSaveInterval
// while they change, and once more when ctx ends.
func (d *Server) saveLoop(ctx context.Context) {
	if d.cache == nil {
		return
	}
	t := time.NewTicker(cacheSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.saveCache()
			return
		case <-t.C:
			d.saveCache()
		}
	}
}

// saveCache writes the file if the records or the services changed since
// the last write and etcd's view of both is complete.
func (d *Server) saveCache() {
	c := d.cache
	cat := d.cfg.Services
	if !c.aliveLoaded.Load() || cat != nil && !cat.Loaded() {
		return
	}
	var gen uint64
	if cat != nil {
		gen = cat.Generation()
	}
	recGen := d.recs.gen.Load()
	if c.saved && recGen == c.recGen && gen == c.svcGen {
		return
	}
	c.recGen, c.svcGen = recGen, gen
	f := d.recs.export()
	if cat != nil {
		f.Services = cachedServices(exportServices(cat))
		if len(f.Services) > maxCachedEndpoints {
			f.Services = f.Services[:maxCachedEndpoints]
		}
	}
	if len(f.Endpoints) > maxCachedEndpoints {
		d.log.Warn("cluster DNS: too many endpoints to save them all; the rest is answered only while etcd is up",
			"endpoints", len(f.Endpoints), "saved", maxCachedEndpoints)
		f.Endpoints = f.Endpoints[:maxCachedEndpoints]
	}
	b, err := json.Marshal(f)
	if err == nil {
		err = fsutil.WriteFileAtomic(c.path, b, 0o600)
	}
	if err != nil {
		c.saved = false // retried at the next tick
		d.log.Warn("cluster DNS: cannot save the records to disk", "file", c.path, "err", err)
		return
	}
	c.saved = true
}

// export returns what the DNS answers (the names and addresses asked
// for, every endpoint of hosts followed whole, and what it still answers
// from the previous file), sorted by key.
func (r *records) export() cacheFile {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f := cacheFile{Version: cacheVersion, Saved: time.Now().UTC()}
	for key, e := range r.entries {
		if !r.answerable(e) || e.src == fromDisk && r.settledAnyLocked(e) {
			continue
		}
		f.Endpoints = append(f.Endpoints, cachedEndpoint{Key: key, Host: e.host, Names: slices.Clone(e.names),
			PTR: e.ptr, V4: e.v4, V6: e.v6})
	}
	sort.Slice(f.Endpoints, func(i, j int) bool { return f.Endpoints[i].Key < f.Endpoints[j].Key })
	return f
}

// restore loads f into empty records (a snapshot from etcd wins) and
// returns how many endpoints it took. Entries are checked as if they came
// from etcd: index-form names, addresses of the right family.
func (r *records) restore(f cacheFile) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.entries) > 0 || len(r.alive) > 0 {
		return 0
	}
	defer r.gen.Store(0) // nothing new to save
	n := 0
	for _, c := range f.Endpoints {
		if n == maxCachedEndpoints {
			break
		}
		e := &entry{host: c.Host, ptr: c.PTR, ready: true, src: fromDisk}
		for _, name := range c.Names {
			if k, ok := containerLabel(name); ok && !slices.Contains(e.names, k) {
				e.names = append(e.names, k)
			}
		}
		if _, ok := containerLabel(e.ptr); !ok {
			e.ptr = ""
		}
		if c.V4.Unmap().Is4() {
			e.v4 = c.V4.Unmap()
		}
		if c.V6.Is6() && !c.V6.Is4In6() {
			e.v6 = c.V6.WithZone("")
		}
		if c.Key == "" || c.Host == "" || len(e.names) == 0 || !e.v4.IsValid() && !e.v6.IsValid() {
			continue
		}
		r.putLocked(c.Key, e)
		r.alive[c.Host] = 0
		n++
	}
	return n
}

// settledAnyLocked says whether etcd answered for one of e's names.
func (r *records) settledAnyLocked(e *entry) bool {
	for _, n := range e.names {
		if r.settledNames[n] {
			return true
		}
	}
	return false
}
