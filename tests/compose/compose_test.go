package compose

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
)

func TestStackServicesPresent(t *testing.T) {
	p := loadProject(t)
	var got []string
	for name := range p.Services {
		got = append(got, name)
	}
	sort.Strings(got)
	for _, want := range stackServices {
		if !slices.Contains(got, want) {
			t.Errorf("`docker compose up` does not start %q (services: %v)", want, got)
		}
	}
	// The profiles' services are there only with their profile.
	for profile, names := range map[string][]string{"loadtest": loadtestServices, "s3": s3Services} {
		for _, name := range names {
			if _, err := p.GetService(name); err == nil {
				t.Errorf("%s runs without the %s profile", name, profile)
			}
			s := service(t, loadProject(t, profile), name)
			if !slices.Equal(s.Profiles, []string{profile}) {
				t.Errorf("%s: profiles %v, want [%s]", name, s.Profiles, profile)
			}
		}
	}
}

// TestScalable: a service with a container_name, a fixed host port or a fixed host name
// cannot run twice; a generator with a fixed instance name would write colliding files.
func TestScalable(t *testing.T) {
	p := loadProject(t, allProfiles...)
	for _, name := range []string{"generator", "ingester", "loadgen", "generator-s3", "ingester-s3"} {
		s := service(t, p, name)
		if s.ContainerName != "" {
			t.Errorf("%s: container_name %q makes it unscalable", name, s.ContainerName)
		}
		if s.Hostname != "" {
			t.Errorf("%s: hostname %q gives every replica the same name", name, s.Hostname)
		}
		for _, port := range s.Ports {
			if port.Published != "" {
				t.Errorf("%s: host port %s:%d; a second replica could not bind it", name, port.Published, port.Target)
			}
		}
		if s.Deploy != nil && s.Deploy.Replicas != nil && *s.Deploy.Replicas != 1 {
			t.Errorf("%s: deploy.replicas fixed at %d; scale with --scale instead", name, *s.Deploy.Replicas)
		}
		env := envOf(s)
		for _, k := range []string{"GENERATOR_INSTANCE", "INGESTER_INSTANCE"} {
			if v, ok := env[k]; ok && v != "" {
				t.Errorf("%s: %s=%q is shared by all its replicas; leave it unset (host name)", name, k, v)
			}
		}
	}
	// No container_name anywhere: the project name keeps two stacks apart.
	for name, s := range p.Services {
		if s.ContainerName != "" {
			t.Errorf("%s: container_name %q", name, s.ContainerName)
		}
	}
}

// TestSharedVolume: generator, ingester and collector mount one named volume at the same
// path, and every directory their settings name lies on it — the generator's output is
// the ingester's input and the collector's backlog.
func TestSharedVolume(t *testing.T) {
	p := loadProject(t, allProfiles...)
	type use struct{ source, target string }
	mounts := map[string]use{}
	for _, name := range []string{"generator", "ingester", "collector", "loadgen"} {
		s := service(t, p, name)
		var vols []use
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume {
				vols = append(vols, use{v.Source, v.Target})
			}
		}
		if len(vols) != 1 {
			t.Fatalf("%s: %d named volumes (%v), want the one shared data volume", name, len(vols), vols)
		}
		mounts[name] = vols[0]
		if _, ok := p.Volumes[vols[0].source]; !ok {
			t.Errorf("%s mounts %q, which is not declared under volumes:", name, vols[0].source)
		}
	}
	ref := mounts["ingester"]
	for name, m := range mounts {
		if m != ref {
			t.Errorf("%s mounts %s at %s; ingester mounts %s at %s", name, m.source, m.target, ref.source, ref.target)
		}
	}
	dirs := map[string]string{
		"generator GENERATOR_OUTPUT_DIR": settingValue(t, "generator", "OUTPUT_DIR"),
		"ingester INGESTER_INPUT_DIR":    settingValue(t, "ingester", "INPUT_DIR"),
		"ingester INGESTER_ARCHIVE_DIR":  settingValue(t, "ingester", "ARCHIVE_DIR"),
		"ingester INGESTER_FAILED_DIR":   settingValue(t, "ingester", "FAILED_DIR"),
		"collector COLLECTOR_WATCH_DIR":  settingValue(t, "collector", "WATCH_DIR"),
	}
	for what, dir := range dirs {
		if dir == "" || !strings.HasPrefix(path.Clean(dir)+"/", path.Clean(ref.target)+"/") {
			t.Errorf("%s=%q is not on the shared volume mounted at %s", what, dir, ref.target)
		}
	}
	in := dirs["ingester INGESTER_INPUT_DIR"]
	for _, k := range []string{"generator GENERATOR_OUTPUT_DIR", "collector COLLECTOR_WATCH_DIR"} {
		if path.Clean(dirs[k]) != path.Clean(in) {
			t.Errorf("%s=%q, but the ingester reads %q", k, dirs[k], in)
		}
	}
	// The images create these directories owned by the nonroot user (see the Dockerfile
	// test), so a fresh named volume is writable.
	df := readDockerfile(t)
	for what, dir := range dirs {
		if !df.imageDirs[path.Clean(dir)] {
			t.Errorf("%s=%q: the Dockerfile's runtime image does not create it owned by 65532 (it creates %v)",
				what, dir, keys(df.imageDirs))
		}
	}
}

func TestDependsOn(t *testing.T) {
	p := loadProject(t, allProfiles...)
	want := map[string]map[string]string{
		"migrate":           {"postgres": types.ServiceConditionHealthy},
		"db-logins":         {"migrate": types.ServiceConditionCompletedSuccessfully},
		"ingester":          {"postgres": types.ServiceConditionHealthy, "migrate": types.ServiceConditionCompletedSuccessfully, "db-logins": types.ServiceConditionCompletedSuccessfully},
		"collector":         {"postgres": types.ServiceConditionHealthy, "migrate": types.ServiceConditionCompletedSuccessfully, "db-logins": types.ServiceConditionCompletedSuccessfully},
		"postgres-exporter": {"postgres": types.ServiceConditionHealthy, "db-logins": types.ServiceConditionCompletedSuccessfully},
		"grafana":           {"prometheus": types.ServiceConditionHealthy},
		"psql":              {"postgres": types.ServiceConditionHealthy},
		// Profile s3: the volumes are the servers' before they start; versitygw publishes
		// a test event to NATS when it starts, so it waits for NATS; s3-access makes the
		// accounts, the bucket and its policy once versitygw answers, and the services
		// wait for it (their keys do not exist before); the ingesters wait only for NATS
		// to start (notifications are a hint).
		"nats":         {"s3-init": types.ServiceConditionCompletedSuccessfully},
		"versitygw":    {"s3-init": types.ServiceConditionCompletedSuccessfully, "nats": types.ServiceConditionHealthy},
		"s3-access":    {"versitygw": types.ServiceConditionHealthy},
		"generator-s3": {"versitygw": types.ServiceConditionHealthy, "s3-access": types.ServiceConditionCompletedSuccessfully},
		"ingester-s3": {"postgres": types.ServiceConditionHealthy, "migrate": types.ServiceConditionCompletedSuccessfully,
			"db-logins": types.ServiceConditionCompletedSuccessfully, "versitygw": types.ServiceConditionHealthy, "s3-access": types.ServiceConditionCompletedSuccessfully,
			"nats": types.ServiceConditionStarted},
		"collector-s3": {"versitygw": types.ServiceConditionHealthy, "s3-access": types.ServiceConditionCompletedSuccessfully},
	}
	for name, deps := range want {
		s := service(t, p, name)
		for dep, cond := range deps {
			got, ok := s.DependsOn[dep]
			if !ok {
				t.Errorf("%s does not depend on %s", name, dep)
				continue
			}
			if got.Condition != cond {
				t.Errorf("%s depends on %s with %q, want %q", name, dep, got.Condition, cond)
			}
		}
	}
	// A condition on a service without a healthcheck would wait forever.
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionHealthy {
				if h := service(t, p, dep).HealthCheck; h == nil || h.Disable {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			}
		}
	}
}

// TestMigrate: the one-shot migration job is the ingester image running `migrate`.
func TestMigrate(t *testing.T) {
	p := loadProject(t)
	m, ing := service(t, p, "migrate"), service(t, p, "ingester")
	if m.Image != ing.Image {
		t.Errorf("migrate runs %q, the ingester %q: one image", m.Image, ing.Image)
	}
	if !slices.Equal([]string(m.Command), []string{"migrate"}) {
		t.Errorf("migrate command %v, want [migrate]", m.Command)
	}
	if m.Restart != "" && m.Restart != types.RestartPolicyNo {
		t.Errorf("migrate restart %q: a one-shot job must not restart", m.Restart)
	}
	if m.Build == nil || ing.Build == nil || m.Build.Target != ing.Build.Target {
		t.Errorf("migrate must build the ingester's target (a fresh machine has no image to pull)")
	}
}

var pgIsReady = regexp.MustCompile(`\bpg_isready\b`)

// TestHealthRestartLimits: every long-running container has a healthcheck, a restart
// policy, bounded logs and a memory limit; ours check themselves with the binary's
// healthcheck subcommand (distroless has no shell).
func TestHealthRestartLimits(t *testing.T) {
	p := loadProject(t, allProfiles...)
	df := readDockerfile(t)
	oneShot := map[string]bool{"migrate": true, "db-logins": true, "psql": true, "loadgen": true, "s3-init": true, "s3-access": true}
	for name, s := range p.Services {
		if s.Logging == nil || s.Logging.Options["max-size"] == "" {
			t.Errorf("%s: logs are not bounded (the x-logging anchor)", name)
		}
		if oneShot[name] {
			continue
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s: no healthcheck", name)
		}
		switch s.Restart {
		case types.RestartPolicyUnlessStopped, types.RestartPolicyAlways, types.RestartPolicyOnFailure:
		default:
			t.Errorf("%s: restart policy %q", name, s.Restart)
		}
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 {
			t.Errorf("%s: no memory limit", name)
		}
	}
	if h := service(t, p, "postgres").HealthCheck; h == nil || !pgIsReady.MatchString(strings.Join(h.Test, " ")) {
		t.Errorf("postgres: healthcheck must use pg_isready")
	}
	for _, name := range []string{"generator", "ingester", "collector", "loadgen", "generator-s3", "ingester-s3"} {
		s := service(t, p, name)
		if s.Build == nil {
			t.Fatalf("%s: no build section", name)
		}
		entry := df.entrypoints[s.Build.Target]
		if len(entry) == 0 {
			t.Fatalf("%s: Dockerfile target %q has no exec-form ENTRYPOINT", name, s.Build.Target)
		}
		if s.HealthCheck == nil {
			continue
		}
		want := []string{"CMD", entry[0], "healthcheck"}
		if !slices.Equal([]string(s.HealthCheck.Test), want) {
			t.Errorf("%s: healthcheck %v, want %v", name, s.HealthCheck.Test, want)
		}
	}
}

// pinned accepts a digest or a tag that names a concrete version (major.minor at least).
func pinned(ref string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("%q: %w", ref, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return nil
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return fmt.Errorf("%q has no tag (that is :latest)", ref)
	}
	if tagged.Tag() == "latest" || !regexp.MustCompile(`\d+\.\d+`).MatchString(tagged.Tag()) {
		return fmt.Errorf("%q: tag %q is not a concrete version", ref, tagged.Tag())
	}
	return nil
}

func TestImagesPinned(t *testing.T) {
	p := loadProject(t, allProfiles...)
	for name, s := range p.Services {
		if s.Build != nil {
			continue // built from ./Dockerfile; its FROM lines are checked there
		}
		if err := pinned(s.Image); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for k, v := range dotEnv(t) {
		if strings.HasSuffix(k, "_IMAGE") {
			if err := pinned(v); err != nil {
				t.Errorf(".env %s: %v", k, err)
			}
		}
	}
}

// TestPublishedPorts: only Prometheus and Grafana are published, on the address .env names.
func TestPublishedPorts(t *testing.T) {
	p := loadProject(t, allProfiles...)
	want := map[string]uint32{"prometheus": 9090, "grafana": 3000}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.Published == "" {
				continue
			}
			if want[name] != port.Target {
				t.Errorf("%s publishes %s:%d; only Prometheus (9090) and Grafana (3000) are published", name, port.Published, port.Target)
			}
			if port.HostIP != dotEnv(t)["BIND_ADDRESS"] {
				t.Errorf("%s: published on %q, want BIND_ADDRESS %q", name, port.HostIP, dotEnv(t)["BIND_ADDRESS"])
			}
		}
	}
}

func TestGrafanaAccess(t *testing.T) {
	env := envOf(service(t, loadProject(t), "grafana"))
	for k, v := range map[string]string{
		"GF_AUTH_ANONYMOUS_ENABLED":  "true",
		"GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
	} {
		if env[k] != v {
			t.Errorf("grafana: %s=%q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD"} {
		if env[k] == "" {
			t.Errorf("grafana: %s not set (admin login)", k)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
