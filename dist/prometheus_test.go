package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/podnet/podnet/internal/metrics"
	"go.yaml.in/yaml/v3"
)

// The rule file and its unit tests, as prometheus/ holds them.
const (
	rulesFile      = "podnet-rules.yml"
	rulesTestsGlob = "*_test.yml"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name           string `yaml:"name"`
		AlertRuleTests []struct {
			EvalTime  string `yaml:"eval_time"`
			AlertName string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func promDir(t *testing.T) string { return filepath.Join(repoRoot(t), "dist", "prometheus") }

// loadYAML decodes path into v; strict: a field v does not have is an
// error (a misspelt key of a rule would be ignored by nobody else).
func loadYAML(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	loadYAML(t, filepath.Join(promDir(t), rulesFile), &f, true)
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("no rules")
	}
	return out
}

// TestPrometheusRules: Prometheus's own tool accepts the rules (syntax,
// PromQL, templates) and their unit tests pass; a broken copy of the
// rules fails them, so the check has teeth.
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed: the rules are not checked (scripts/deps.sh installs Debian's prometheus package, which has it)")
	}
	dir := promDir(t)
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(dir, "check", "rules", rulesFile); err != nil || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	tests, err := filepath.Glob(filepath.Join(dir, rulesTestsGlob))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no rule tests in %s: %v", dir, err)
	}
	for i := range tests {
		tests[i] = filepath.Base(tests[i])
	}
	if out, err := run(dir, append([]string{"test", "rules"}, tests...)...); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}

	// The same tests against rules with one threshold changed fail.
	broken := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(dir, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	const threshold = "podnet_proxy_last_sync_timestamp_seconds{job=\"podnet\"} > 360"
	if !strings.Contains(string(rules), threshold) {
		t.Fatalf("%s no longer has %q: update this test", rulesFile, threshold)
	}
	mutated := strings.Replace(string(rules), threshold, "podnet_proxy_last_sync_timestamp_seconds{job=\"podnet\"} > 3600", 1)
	for name, content := range map[string]string{rulesFile: mutated} {
		if err := os.WriteFile(filepath.Join(broken, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range tests {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(broken, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := run(broken, append([]string{"test", "rules"}, tests...)...)
	if err == nil || !strings.Contains(out, "PodnetServicesNotSynced") {
		t.Fatalf("the rule tests pass against a rule whose threshold changed: %v\n%s", err, out)
	}
}

// TestRulesConventions checks what promtool does not: every alert has a
// severity and says what happened and what to check; every series a rule
// reads is one podnetd exports (a rule on a series that does not exist can
// never fire) or one the file records; every recorded series is used;
// every podnet series is selected within job="podnet".
func TestRulesConventions(t *testing.T) {
	rules := loadRules(t)
	exported := map[string]bool{}
	for _, n := range metrics.Names() {
		exported[n] = true
	}
	recorded := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			recorded[r.Record] = true
		}
	}
	used := map[string]bool{}
	alerts := map[string]bool{}
	for _, r := range rules {
		what := r.Record
		if r.Alert != "" {
			what = r.Alert
			if alerts[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if !strings.HasPrefix(r.Alert, "Podnet") {
				t.Errorf("alert %s: podnet's alerts are named Podnet...", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if len(strings.TrimSpace(r.Annotations[a])) < 20 {
					t.Errorf("alert %s: annotation %s is missing or too short to help", r.Alert, a)
				}
			}
			if d := r.Annotations["description"]; !strings.Contains(d, "`") {
				t.Errorf("alert %s: the description names no command or query to check (`...`)", r.Alert)
			}
		}
		for _, name := range seriesNames(r.Expr) {
			switch {
			case strings.Contains(name, ":"):
				if !recorded[name] {
					t.Errorf("%s reads %s, which no rule records", what, name)
				}
				used[name] = true
			case !exported[name] && !exported[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")]:
				t.Errorf("%s reads %s, which podnetd does not export (internal/metrics)", what, name)
			}
		}
		for _, sel := range podnetSelectors.FindAllStringSubmatch(r.Expr, -1) {
			if !strings.Contains(sel[2], `job="podnet"`) {
				t.Errorf("%s selects %s%s without job=\"podnet\"", what, sel[1], sel[2])
			}
		}
	}
	for name := range recorded {
		if !used[name] {
			t.Errorf("%s is recorded but no rule reads it", name)
		}
	}
}

var (
	quoted          = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	metricToken     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	podnetSelectors = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:])(podnet_[a-z0-9_]+|up)(\{[^}]*\}|)`)
)

// seriesNames lists the podnet series and recorded series expr reads:
// names starting podnet_, or holding a colon (level:metric:operations).
func seriesNames(expr string) []string {
	var out []string
	for _, tok := range metricToken.FindAllString(quoted.ReplaceAllString(expr, `""`), -1) {
		if (strings.HasPrefix(tok, "podnet_") || strings.Contains(tok, ":")) && !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out
}

// TestRulesTestedBothWays: the unit tests evaluate every alert at least
// once where it fires and once where it must not.
func TestRulesTestedBothWays(t *testing.T) {
	fires, quiet := map[string]bool{}, map[string]bool{}
	tests, err := filepath.Glob(filepath.Join(promDir(t), rulesTestsGlob))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no rule tests: %v", err)
	}
	for _, path := range tests {
		var f testFile
		loadYAML(t, path, &f, false)
		if !slices.Contains(f.RuleFiles, rulesFile) {
			t.Errorf("%s does not load %s", path, rulesFile)
		}
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTests {
				if len(a.ExpAlerts) > 0 {
					fires[a.AlertName] = true
				} else {
					quiet[a.AlertName] = true
				}
			}
		}
	}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		if !fires[r.Alert] {
			t.Errorf("alert %s: no test where it fires", r.Alert)
		}
		if !quiet[r.Alert] {
			t.Errorf("alert %s: no test where it must not fire", r.Alert)
		}
	}
}
