package dist

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Makefile")); err != nil {
		t.Fatalf("no Makefile above dist/: %v", err)
	}
	return root
}

// makeIn runs `make TARGET VAR=...` in the repository.
func makeIn(t *testing.T, target string, vars ...string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed (scripts/deps.sh installs it)")
	}
	cmd := exec.Command("make", append([]string{"-s", "-C", repoRoot(t), target}, vars...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("make %s %s: %v\n%s", target, strings.Join(vars, " "), err, out.String())
	}
	return out.String()
}

// files lists the regular files and symlinks under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInstallStaged: make install DESTDIR=... puts every file where a
// Debian host expects it for PREFIX=/usr/local, keeps edited settings on
// reinstall, and make uninstall removes every file again.
func TestInstallStaged(t *testing.T) {
	dest := t.TempDir()
	makeIn(t, "install", "DESTDIR="+dest)
	want := map[string]string{
		"usr/local/bin/podnetd":                                    "",
		"usr/local/bin/podnetctl":                                  "",
		"opt/cni/bin/podnet":                                       "",
		"usr/local/lib/systemd/system/podnetd.service":             "ExecStart=/usr/local/bin/podnetd",
		"etc/default/podnet":                                       "PODNET_ETCD_ENDPOINTS",
		"usr/local/share/bash-completion/completions/podnetctl":    "__start_podnetctl",
		"usr/local/share/zsh/site-functions/_podnetctl":            "#compdef podnetctl",
		"usr/local/share/fish/vendor_completions.d/podnetctl.fish": "complete -c podnetctl",
		"usr/local/share/podnet/podnet-rules.yml":                  "alert: PodnetdDown",
	}
	got := files(t, dest)
	if len(got) != len(want) {
		t.Fatalf("installed %v, want exactly %d files", got, len(want))
	}
	for f, content := range want {
		p := filepath.Join(dest, f)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s not installed: %v", f, err)
		}
		if (strings.HasPrefix(f, "usr/local/bin/") || strings.HasPrefix(f, "opt/cni/bin/")) && st.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", f)
		}
		if content != "" && !strings.Contains(read(t, p), content) {
			t.Errorf("%s does not contain %q", f, content)
		}
	}
	unit := read(t, filepath.Join(dest, "usr/local/lib/systemd/system/podnetd.service"))
	for _, line := range []string{"Type=notify", "Before=docker.service", "Restart=always",
		"EnvironmentFile=-/etc/default/podnet", "WantedBy=multi-user.target"} {
		if !strings.Contains(unit, "\n"+line+"\n") {
			t.Errorf("unit lacks %q", line)
		}
	}
	if strings.Contains(unit, "@") {
		t.Errorf("unit has an unfilled placeholder:\n%s", unit)
	}
	// The bash completion really completes podnetctl's commands.
	if _, err := exec.LookPath("bash"); err == nil {
		out, err := exec.Command("bash", "-c", `source "$1" && complete -p podnetctl`, "bash",
			filepath.Join(dest, "usr/local/share/bash-completion/completions/podnetctl")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "podnetctl") {
			t.Errorf("bash completion does not register: %v %s", err, out)
		}
	}

	// The CNI plugin answers as a CNI runtime asks it, under the name
	// conflists use.
	cmd := exec.Command(filepath.Join(dest, "opt/cni/bin/podnet"))
	cmd.Env = []string{"CNI_COMMAND=VERSION"}
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), `"1.1.0"`) {
		t.Errorf("installed CNI plugin: VERSION answered %q, %v; want the 1.1.0 spec among its versions", out, err)
	}

	// Settings survive a reinstall (an upgrade).
	settings := filepath.Join(dest, "etc/default/podnet")
	if err := os.WriteFile(settings, []byte("PODNET_ETCD_ENDPOINTS=https://10.0.0.5:2379\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	makeIn(t, "install", "DESTDIR="+dest)
	if s := read(t, settings); s != "PODNET_ETCD_ENDPOINTS=https://10.0.0.5:2379\n" {
		t.Fatalf("reinstall overwrote the settings: %q", s)
	}

	// The installed rules are the repository's, byte for byte.
	if got, want := read(t, filepath.Join(dest, "usr/local/share/podnet/podnet-rules.yml")),
		read(t, filepath.Join(repoRoot(t), "dist/prometheus/podnet-rules.yml")); got != want {
		t.Error("the installed podnet-rules.yml differs from dist/prometheus/podnet-rules.yml")
	}

	makeIn(t, "uninstall", "DESTDIR="+dest)
	if left := files(t, dest); len(left) != 0 {
		t.Fatalf("uninstall left %v", left)
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/local/share/podnet")); !os.IsNotExist(err) {
		t.Errorf("uninstall left share/podnet behind: %v", err)
	}
}

// TestUnitVerifies installs for real into a temporary prefix (so that the
// unit's ExecStart and EnvironmentFile exist) and runs systemd-analyze
// verify on the unit as installed. It needs no running systemd.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (scripts/deps.sh installs package systemd)")
	}
	root := t.TempDir()
	makeIn(t, "install", "PREFIX="+root+"/usr", "SYSCONFDIR="+root+"/etc", "UNITDIR="+root+"/systemd", "CNI_BIN_DIR="+root+"/cni")
	unit := filepath.Join(root, "systemd", "podnetd.service")
	if !strings.Contains(read(t, unit), "ExecStart="+root+"/usr/bin/podnetd\n") {
		t.Fatalf("unit does not start the installed binary:\n%s", read(t, unit))
	}
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	// verify exits 0 on some mistakes (an unknown Type= is only a warning):
	// the unit passes only if it has nothing at all to say.
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
	// The check has teeth: a unit with a typo fails it.
	bad := filepath.Join(root, "systemd", "typo.service")
	if err := os.WriteFile(bad, bytes.Replace([]byte(read(t, unit)), []byte("\nType=notify\n"), []byte("\nType=notfy\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(sa, "verify", bad).CombinedOutput(); len(bytes.TrimSpace(out)) == 0 {
		t.Fatal("systemd-analyze verify says nothing about Type=notfy")
	}
	makeIn(t, "uninstall", "PREFIX="+root+"/usr", "SYSCONFDIR="+root+"/etc", "UNITDIR="+root+"/systemd", "CNI_BIN_DIR="+root+"/cni")
	left := files(t, root)
	if len(left) != 1 || left[0] != "systemd/typo.service" {
		t.Fatalf("uninstall left %v", left)
	}
}
