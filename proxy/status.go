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

// reportStatus makes svcstatus/<host>/ hold exactly the services the data
// plane of this host fails to program, with the reason; `podnetctl service
// get` shows them. reread reloads what etcd holds first (at start, and
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
	want, have := maps.Clone(p.failing), maps.Clone(p.reported)
	p.mu.Unlock()
	ok := true
	for name, msg := range want {
		if have[name] == msg {
			continue
		}
		rec := store.ServiceStatus{Host: host, Service: name, Error: msg, Since: time.Now().UTC()}
		if err := st.Put(ctx, store.ServiceStatusKey(host, name), rec); err != nil {
			ok = false
			continue
		}
		p.log.Warn("service cannot be programmed on this host", "service", name, "err", msg)
		p.setReported(name, msg, true)
	}
	for name := range have {
		if _, bad := want[name]; bad {
			continue
		}
		if err := st.Delete(ctx, store.ServiceStatusKey(host, name)); err != nil {
			ok = false
			continue
		}
		p.setReported(name, "", false)
	}
	return ok
}

func (p *Agent) setReported(name, msg string, present bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if present {
		p.reported[name] = msg
	} else {
		delete(p.reported, name)
	}
}
