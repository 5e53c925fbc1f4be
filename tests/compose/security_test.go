package compose

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// Capabilities a container that drops ALL adds back, with the reason where it is granted:
// the one-shot that hands the s3 profile's fresh volumes to the servers' non-root user.
var capabilityExceptions = map[string][]string{"s3-init": {"CHOWN"}}

// Containers that keep privileges, each with the reason written where it is granted.
var privilegedExceptions = map[string]bool{
	"postgres": true, // the official entrypoint chowns its data directory, then drops to postgres
	"cadvisor": true, // reads every container's cgroups and the runtime's state
}

func noNewPrivileges(s types.ServiceConfig) bool {
	for _, o := range s.SecurityOpt {
		if o == "no-new-privileges:true" || o == "no-new-privileges" {
			return true
		}
	}
	return false
}

// TestOurContainersLeastPrivilege: generator, ingester, collector, the migrate job and
// loadgen run with a read-only root file system, no capabilities at all and no way to gain
// privileges; they write only to the shared volume.
func TestOurContainersLeastPrivilege(t *testing.T) {
	p := loadProject(t, allProfiles...)
	ours := 0
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		ours++
		if !s.ReadOnly {
			t.Errorf("%s: read_only is not true", name)
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: cap_drop %v, want [ALL]", name, s.CapDrop)
		}
		if len(s.CapAdd) > 0 {
			t.Errorf("%s: cap_add %v; our programs need no capability", name, s.CapAdd)
		}
		if !noNewPrivileges(s) {
			t.Errorf("%s: security_opt %v, want no-new-privileges:true", name, s.SecurityOpt)
		}
		if s.Privileged || s.User == "root" || s.User == "0" {
			t.Errorf("%s: privileged=%v user=%q", name, s.Privileged, s.User)
		}
		// With a read-only root, every path a program writes must be a volume or a tmpfs.
		for _, dir := range writablePaths(t, name) {
			if !onWritableMount(s, dir) {
				t.Errorf("%s: writes %s, which is on the read-only root file system", name, dir)
			}
		}
	}
	if ours != 9 {
		t.Errorf("%d services are built from the Dockerfile, want 9 (migrate, generator, ingester, collector, loadgen, generator-s3, ingester-s3, collector-s3, s3-access)", ours)
	}
}

// writablePaths are the directories a service of ours writes, from its settings.
func writablePaths(t *testing.T, name string) []string {
	t.Helper()
	switch name {
	case "generator", "loadgen":
		return []string{settingValue(t, name, "OUTPUT_DIR")}
	case "generator-s3", "ingester-s3", "s3-access":
		return nil // they write to the bucket (and its gateway's accounts), through the network
	case "ingester":
		return []string{settingValue(t, name, "INPUT_DIR"), settingValue(t, name, "ARCHIVE_DIR"), settingValue(t, name, "FAILED_DIR")}
	}
	return nil
}

func onWritableMount(s types.ServiceConfig, dir string) bool {
	for _, v := range s.Volumes {
		if !v.ReadOnly && (dir == v.Target || strings.HasPrefix(dir, strings.TrimSuffix(v.Target, "/")+"/")) {
			return true
		}
	}
	for _, tmp := range s.Tmpfs {
		target := strings.SplitN(tmp, ":", 2)[0]
		if dir == target || strings.HasPrefix(dir, strings.TrimSuffix(target, "/")+"/") {
			return true
		}
	}
	return false
}

// TestEveryContainerDropsPrivileges: the monitoring containers drop every capability
// and cannot gain privileges too; only cAdvisor is privileged, only postgres keeps
// capabilities, and each exception says why in a comment right where it is defined.
func TestEveryContainerDropsPrivileges(t *testing.T) {
	p := loadProject(t, allProfiles...)
	for name, s := range p.Services {
		if s.Privileged && name != "cadvisor" {
			t.Errorf("%s is privileged; only cAdvisor is", name)
		}
		if privilegedExceptions[name] {
			continue
		}
		if !slices.Contains(s.CapDrop, "ALL") || !noNewPrivileges(s) {
			t.Errorf("%s: cap_drop %v, security_opt %v; want [ALL] and no-new-privileges:true", name, s.CapDrop, s.SecurityOpt)
		}
		if want := capabilityExceptions[name]; !slices.Equal([]string(s.CapAdd), want) {
			t.Errorf("%s: cap_add %v, want %v", name, s.CapAdd, want)
		}
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	// The comment block right above `privileged: true` explains what cAdvisor reads and
	// what the grant means.
	m := regexp.MustCompile(`(?m)((?:^    #.*\n){4,})    privileged: true\n`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("docker-compose.yml: no comment of four lines or more right above cAdvisor's `privileged: true`")
	}
	for _, word := range []string{"/sys", "/var/lib/docker", "socket", "root"} {
		if !strings.Contains(m[1], word) {
			t.Errorf("docker-compose.yml: the comment above `privileged: true` does not mention %q", word)
		}
	}
	// s3-init's one capability is explained in the comment right above it.
	if m := regexp.MustCompile(`(?m)((?:^  #.*\n)+)  s3-init:\n`).FindStringSubmatch(text); m == nil || !strings.Contains(m[1], "CHOWN") {
		t.Error("docker-compose.yml: s3-init keeps CHOWN without a comment right above it saying why")
	}
	if !regexp.MustCompile(`(?m)^  #.*\n(?:  #.*\n)*  postgres:\n`).MatchString(text) ||
		!strings.Contains(text, "CHOWN") {
		t.Error("docker-compose.yml: postgres keeps its capabilities without a comment above it saying why (CHOWN ...)")
	}
}

// TestPrometheusLifecycleAPIOff: with --web.enable-lifecycle (or the admin API) anyone
// who reaches Prometheus' port could shut it down or delete its data.
func TestPrometheusLifecycleAPIOff(t *testing.T) {
	s := service(t, loadProject(t), "prometheus")
	for _, a := range s.Command {
		if strings.HasPrefix(a, "--web.enable-lifecycle") || strings.HasPrefix(a, "--web.enable-admin-api") {
			t.Errorf("prometheus runs with %s", a)
		}
	}
}

// TestCredentialsLabelledLocalOnly: .env's credentials sit under a comment that calls
// them local-only and says what to change before BIND_ADDRESS=0.0.0.0.
func TestCredentialsLabelledLocalOnly(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), ".env"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	creds := []string{"POSTGRES_PASSWORD", "POSTGRES_INGESTER_PASSWORD", "POSTGRES_COLLECTOR_PASSWORD",
		"POSTGRES_EXPORTER_PASSWORD", "GRAFANA_ADMIN_USER", "GRAFANA_ADMIN_PASSWORD", "S3_SECRET_KEY",
		"S3_GENERATOR_SECRET_KEY", "S3_INGESTER_SECRET_KEY", "S3_COLLECTOR_SECRET_KEY"}
	for _, cred := range creds {
		at := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, cred+"=") })
		if at < 0 {
			t.Errorf(".env: no %s", cred)
			continue
		}
		// The comment block above the run of settings the credential belongs to.
		i := at
		for i > 0 && !strings.HasPrefix(lines[i-1], "#") {
			i--
		}
		var block []string
		for i > 0 && strings.HasPrefix(lines[i-1], "#") {
			block = append([]string{lines[i-1]}, block...)
			i--
		}
		comment := strings.Join(block, "\n")
		if !strings.Contains(comment, "LOCAL-ONLY") || !strings.Contains(comment, "BIND_ADDRESS=0.0.0.0") {
			t.Errorf(".env: %s is not under a comment labelling it LOCAL-ONLY with what to change before BIND_ADDRESS=0.0.0.0:\n%s", cred, comment)
		}
		if cred != "GRAFANA_ADMIN_USER" && !strings.Contains(comment, cred) {
			t.Errorf(".env: the comment above %s does not say what to do with it", cred)
		}
	}
}
