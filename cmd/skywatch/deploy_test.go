package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on deploy/skywatch.service
// (and the backup's service and timer) where systemd is installed. verify wants the Exec binaries to exist, so the
// binary is built into a temporary directory and the unit's path rewritten in
// a temporary copy. Warnings that name the unit (an unknown key, a bad value:
// systemd ignores those and starts anyway, less hardened) fail the test too.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "skywatch.service"))
	if err != nil {
		t.Fatalf("read unit: %v", err)
	}
	const installed = "/usr/local/bin/skywatch"
	if !strings.Contains(string(unit), "ExecStart="+installed+" serve ") ||
		!strings.Contains(string(unit), "ExecStartPre="+installed+" check ") {
		t.Fatalf("unit does not run %s check before %s serve", installed, installed)
	}
	// systemctl reload must send SIGHUP, which serve takes as "reload the config".
	if !strings.Contains(string(unit), "\nExecReload=/bin/kill -HUP $MAINPID\n") {
		t.Fatal("unit has no ExecReload=/bin/kill -HUP $MAINPID: systemctl reload skywatch would fail")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "skywatch")
	// The flags of .ci/run's static build, so that this one comes from the cache.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The nightly backup's service and timer are verified with it.
	var copies []string
	for _, name := range []string{"skywatch.service", "skywatch-backup.service", "skywatch-backup.timer"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if name == "skywatch-backup.service" && !strings.Contains(string(b), installed+" backup -config ") {
			t.Fatalf("%s does not run %s backup", name, installed)
		}
		copyPath := filepath.Join(dir, name)
		if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(b), installed, bin)), 0o644); err != nil {
			t.Fatalf("write unit copy: %v", err)
		}
		copies = append(copies, copyPath)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, copies...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Other units on the machine may draw warnings of their own; only ours count.
	for _, line := range strings.Split(string(out), "\n") {
		for _, c := range copies {
			if strings.Contains(line, c) {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	}
}

// TestReadmeDeploymentConfigChecks runs `skywatch check` on the config file
// of the README's deployment section, as an IT officer fills it in: the
// password hashes in place of the <...>, the data directory where the test
// may write. A key renamed in the code without the README fails here.
func TestReadmeDeploymentConfigChecks(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i := strings.Index(s, "\n## Deployment\n")
	if i < 0 {
		t.Fatal("README has no Deployment section")
	}
	const open = "```yaml\n"
	j := strings.Index(s[i:], open)
	if j < 0 {
		t.Fatal("the Deployment section has no yaml block")
	}
	block := s[i+j+len(open):]
	block = block[:strings.Index(block, "```")]
	for _, want := range []string{"tls_cert:", "tls_address:", "cameras:", "devices:", "units:", "areas:", "users:"} {
		if !strings.Contains(block, want) {
			t.Errorf("the deployment config has no %s", want)
		}
	}
	hash := testPasswordHash(t, "readme-secret")
	n := 0
	for {
		a := strings.Index(block, `"<hash`)
		if a < 0 {
			break
		}
		b := strings.Index(block[a+1:], `"`)
		block = block[:a] + `"` + hash + `"` + block[a+1+b+1:]
		n++
	}
	if n != 3 {
		t.Errorf("%d hashes to fill in, want 3 (administrator, panel, patrol car)", n)
	}
	dir := t.TempDir()
	block = strings.ReplaceAll(block, "/var/lib/skywatch", dir)
	path := filepath.Join(dir, "skywatch.yaml")
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"check", "-config", path}, &out, &errOut); code != 0 {
		t.Fatalf("check exited %d:\n%s%s\nconfig:\n%s", code, out.String(), errOut.String(), block)
	}
	if !strings.Contains(out.String(), "is valid: 1 cameras") {
		t.Errorf("check printed %q", out.String())
	}
}

// TestAlertRulesNameExistingMetrics checks that every Skywatch metric named
// in deploy/prometheus-alerts.yml and in the README's alerting table is one
// that some non-test Go file of the repository exports, so that a renamed
// metric cannot leave an alert that never fires.
func TestAlertRulesNameExistingMetrics(t *testing.T) {
	var src strings.Builder
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			src.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code := src.String()
	exported := func(name string) bool {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && strings.Contains(code, `"`+base+`"`) {
				return true
			}
		}
		if strings.Contains(code, `"`+name+`"`) {
			return true
		}
		// The embedded broker's counters are named "skywatch_alarms_mqtt_" + name.
		rest, ok := strings.CutPrefix(name, "skywatch_alarms_mqtt_")
		return ok && strings.Contains(code, `"skywatch_alarms_mqtt_"`) && strings.Contains(code, `"`+rest+`"`)
	}
	metric := regexp.MustCompile(`skywatch_[a-z0-9_]+`)
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rules, &parsed); err != nil {
		t.Fatalf("prometheus-alerts.yml: %v", err)
	}
	checked := 0
	for _, g := range parsed.Groups {
		for _, r := range g.Rules {
			for _, name := range metric.FindAllString(r.Expr, -1) {
				checked++
				if !exported(name) {
					t.Errorf("alert %s: metric %s is not exported by any Go file", r.Alert, name)
				}
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i := strings.Index(s, "### Metrics worth alerting on")
	if i < 0 {
		t.Fatal("README has no alerting section")
	}
	section := s[i:]
	if j := strings.Index(section[1:], "\n## "); j >= 0 {
		section = section[:j+1]
	}
	for _, name := range metric.FindAllString(section, -1) {
		checked++
		if !exported(name) {
			t.Errorf("README alerting table: metric %s is not exported by any Go file", name)
		}
	}
	if checked < 20 {
		t.Errorf("only %d metric names found in the rules and the README: did their format change?", checked)
	}
}
