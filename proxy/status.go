package proxy

import (
	"context"
	"maps"
	"strings"
	"time"

	"github.com/podnet/podnet/store"
)

// statusTimeout bounds one round of status writes, so that an etcd outage
// delays the agent's loop by at most this much.
const statusTimeout = 2 * time.Second

// statusOpsPerTxn keeps each status transaction within etcd's default
// --max-txn-ops (128).
const statusOpsPerTxn = 128

// reportStatus makes svcstatus/<host>/ hold exactly the services the data
// plane of this host fails to program, with the reason; `podnetctl service
// get` shows them. Every round's writes and deletes go in one transaction
// (one per 128 keys). reread reloads what etcd holds first (at start, and
// after a failed round). It reports whether etcd is now up to date.
func (p *Agent) reportStatus(ctx context.Context, reread bool) bool {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st, host := p.cfg.Store, p.cfg.Host
	if reread {
		kvs, _, err := st.List(ctx, store.ServiceStatusPrefix(host))
		if err != nil {
			p.log.Debug("service status not reported; retrying", "err", err)
			return false
		}
		have := map[string]string{}
		for _, kv := range kvs {
			var s store.ServiceStatus
			_ = kv.Decode(&s)
			have[strings.TrimPrefix(kv.Key, store.ServiceStatusPrefix(host))] = s.Error
		}
		p.mu.Lock()
		p.reported = have
		p.mu.Unlock()
	}
	p.mu.Lock()
	want, have := p.failingLocked(), maps.Clone(p.reported)
	p.mu.Unlock()
	var ops []store.Op
	now := time.Now().UTC()
	for name, msg := range want {
		if have[name] != msg {
			ops = append(ops, store.Put(store.ServiceStatusKey(host, name),
				store.ServiceStatus{Host: host, Service: name, Error: msg, Since: now}))
		}
	}
	for name := range have {
		if _, bad := want[name]; !bad {
			ops = append(ops, store.Delete(store.ServiceStatusKey(host, name)))
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), statusOpsPerTxn)
		if _, _, err := st.Txn(ctx, nil, ops[:n]); err != nil {
			p.log.Debug("service status not reported; retrying", "err", err)
			return false
		}
		ops = ops[n:]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, msg := range want {
		if p.reported[name] != msg {
			p.log.Warn("service cannot be programmed on this host", "service", name, "err", msg)
		}
	}
	p.reported = want
	return true
}
