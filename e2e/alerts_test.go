//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// promRule is one rule as Prometheus's /api/v1/rules reports it.
type promRule struct {
	Name      string  `json:"name"`
	Type      string  `json:"type"` // alerting or recording
	Health    string  `json:"health"`
	LastError string  `json:"lastError"`
	Duration  float64 `json:"duration"` // an alert's for, in seconds
}

// rules lists the rules Prometheus has loaded, by name.
func (p *prometheus) rules(t *testing.T) map[string]promRule {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.base + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				Rules []promRule `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("/api/v1/rules: %v %s", err, r.Status)
	}
	out := map[string]promRule{}
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			out[rule.Name] = rule
		}
	}
	return out
}

// alertState is "firing", "pending" or "" for the alert with these
// label matchers, as ALERTS shows it now.
func (p *prometheus) alertState(t *testing.T, matchers string) string {
	t.Helper()
	for _, s := range []string{"firing", "pending"} {
		v, err := p.value(fmt.Sprintf(`ALERTS{%s,alertstate=%q}`, matchers, s))
		if err != nil {
			t.Fatal(err)
		}
		if v > 0 {
			return s
		}
	}
	return ""
}

// TestPrometheusAlerts: a real Prometheus scraping the 3-host lab loads
// podnet's rules as shipped, and evaluates every one of them without an
// error against the real series. On the healthy lab no host alert is
// active; when h3's podnetd stops, PodnetdDown fires for h3 (and only
// h3) once its for window has run — not before, and soon after — and
// PodnetHostNotAlive fires from the other hosts' view once h3's liveness
// lease has expired and its own window has run; both resolve when h3's
// podnetd is back. About 80 s, most of it the two for windows.
func TestPrometheusAlerts(t *testing.T) {
	l := multi(t)
	p := startPrometheus(t, l)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(root, podnetRules))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Count(string(file), "\n      - alert: ") + strings.Count(string(file), "\n      - record: ")

	// Every rule loaded and evaluated cleanly (a matching error, say,
	// shows only against real series).
	var rules map[string]promRule
	WaitFor(t, shortWait, func() (bool, string) {
		rules = p.rules(t)
		var bad []string
		for _, r := range rules {
			if r.Health != "ok" {
				bad = append(bad, fmt.Sprintf("%s: %s %s", r.Name, r.Health, r.LastError))
			}
		}
		return len(rules) == want && len(bad) == 0, fmt.Sprintf("%d of %d rules loaded; not evaluated cleanly: %v", len(rules), want, bad)
	})
	down, notAlive := rules["PodnetdDown"], rules["PodnetHostNotAlive"]
	if down.Type != "alerting" || down.Duration < 30 || notAlive.Type != "alerting" {
		t.Fatalf("PodnetdDown %+v, PodnetHostNotAlive %+v", down, notAlive)
	}
	forDown := time.Duration(down.Duration * float64(time.Second))
	forNotAlive := time.Duration(notAlive.Duration * float64(time.Second))

	for _, a := range []string{`alertname="PodnetdDown"`, `alertname="PodnetHostNotAlive"`} {
		if s := p.alertState(t, a); s != "" {
			out, _ := l.Exec("h1", "podnetctl", "host", "ls")
			t.Fatalf("%s is %s on the healthy lab:\n%s", a, s, out)
		}
	}

	const host = "h3"
	if err := l.PodnetdStop(host, false); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = l.PodnetdStart(host)
		}
	})

	// Pending within a few scrapes, firing once the for window has run.
	downH3 := fmt.Sprintf(`alertname="PodnetdDown",host=%q`, host)
	var pendingAt, firingAt time.Duration
	WaitFor(t, forDown+45*time.Second, func() (bool, string) {
		s := p.alertState(t, downH3)
		if s == "pending" && pendingAt == 0 {
			pendingAt = time.Since(stopped)
		}
		if s == "firing" {
			firingAt = time.Since(stopped)
		}
		return firingAt > 0, fmt.Sprintf("PodnetdDown for %s: %q %v after the stop", host, s, time.Since(stopped).Round(time.Second))
	})
	t.Logf("PodnetdDown for %s: pending after %v, firing after %v (for: %v)", host, pendingAt.Round(time.Millisecond),
		firingAt.Round(time.Millisecond), forDown)
	if pendingAt == 0 || pendingAt > 15*time.Second {
		t.Errorf("PodnetdDown was not pending within 15 s of the stop (pending after %v)", pendingAt)
	}
	if firingAt < forDown {
		t.Errorf("PodnetdDown fired %v after the stop, before its for window of %v", firingAt, forDown)
	}
	if others := p.must(t, fmt.Sprintf(`count(ALERTS{alertname="PodnetdDown",host!=%q}) or vector(0)`, host)); others != 0 {
		t.Errorf("PodnetdDown is active for %v other hosts", others)
	}

	// The other hosts see h3's lease run out (--liveness-ttl: 6 s in the
	// e2e labs, 30 s by default), then the alert's for window.
	WaitFor(t, 30*time.Second+forNotAlive+45*time.Second, func() (bool, string) {
		s := p.alertState(t, `alertname="PodnetHostNotAlive"`)
		return s == "firing", fmt.Sprintf("PodnetHostNotAlive: %q %v after the stop", s, time.Since(stopped).Round(time.Second))
	})
	notAliveAt := time.Since(stopped)
	t.Logf("PodnetHostNotAlive firing %v after the stop (the lease's TTL, then for: %v)", notAliveAt.Round(time.Second), forNotAlive)
	if notAliveAt < forNotAlive {
		t.Errorf("PodnetHostNotAlive fired %v after the stop, before its for window of %v", notAliveAt, forNotAlive)
	}
	if v := p.must(t, `max(podnet_hosts{state="down",host!="h3"})`); v != 1 {
		t.Errorf("h1 and h2 count %v hosts down, want 1", v)
	}

	if err := l.PodnetdStart(host); err != nil {
		t.Fatal(err)
	}
	restarted = true
	back := time.Now()
	WaitFor(t, 45*time.Second, func() (bool, string) {
		d, n := p.alertState(t, downH3), p.alertState(t, `alertname="PodnetHostNotAlive"`)
		return d == "" && n == "", fmt.Sprintf("with %s's podnetd back: PodnetdDown %q, PodnetHostNotAlive %q", host, d, n)
	})
	t.Logf("both resolved %v after podnetd was back", time.Since(back).Round(time.Second))
}
