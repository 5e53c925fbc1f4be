package compose

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
)

// Our three programs; each has a Dockerfile target and a compose service of that name.
var ourServices = []string{"generator", "ingester", "collector"}

// Everything `docker compose up` must start (the loadtest profile adds loadgen and psql).
var stackServices = []string{
	"postgres", "migrate", "db-logins", "generator", "ingester", "collector",
	"prometheus", "grafana", "postgres-exporter", "node-exporter", "cadvisor", "alertmanager",
}

var loadtestServices = []string{"loadgen", "psql"}

// The s3 profile's services: generators and ingesters sharing a bucket (versitygw) with
// notifications through NATS, the one-shot that prepares the volumes and the one that
// gives each service its account on the bucket.
var s3Services = []string{"s3-init", "nats", "versitygw", "s3-access", "generator-s3", "ingester-s3"}

// allProfiles loads every service the compose file defines: checks that hold for every
// container (privileges, pins, healthchecks, settings) see the profiles' services too.
var allProfiles = []string{"loadtest", "s3"}

// repoRoot is the repository root: two levels up from this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

var (
	projectOnce sync.Map // profile key -> *types.Project
)

// loadProject reads docker-compose.yml the way `docker compose` does: .env for the
// interpolation, paths resolved against the file's directory, the specification's schema
// validated, and nothing taken from this process's environment (so the test sees what a
// fresh machine sees).
func loadProject(t testing.TB, profiles ...string) *types.Project {
	t.Helper()
	key := strings.Join(profiles, ",")
	if p, ok := projectOnce.Load(key); ok {
		return p.(*types.Project)
	}
	p := loadProjectWith(t, nil, profiles...)
	projectOnce.Store(key, p)
	return p
}

// loadProjectWith is loadProject with shell variables (KEY=VALUE) set, which override
// .env as they do for `docker compose`.
func loadProjectWith(t testing.TB, shell []string, profiles ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(shell),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// dotEnv is .env as compose reads it.
func dotEnv(t testing.TB) map[string]string {
	t.Helper()
	env, err := dotenv.GetEnvFromFile(map[string]string{}, []string{filepath.Join(repoRoot(t), ".env")})
	if err != nil {
		t.Fatalf(".env: %v", err)
	}
	return env
}

func service(t testing.TB, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %q: %v", name, err)
	}
	return s
}

// envOf is a service's environment after interpolation, without unset (nil) entries.
func envOf(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// hostPath maps a path inside a service's container back to the host through its bind
// mounts ("" when no bind mount covers it).
func hostPath(s types.ServiceConfig, containerPath string) (string, bool) {
	best := ""
	var hit types.ServiceVolumeConfig
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if containerPath == v.Target || strings.HasPrefix(containerPath, strings.TrimSuffix(v.Target, "/")+"/") {
			if len(v.Target) > len(best) {
				best, hit = v.Target, v
			}
		}
	}
	if best == "" {
		return "", false
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(containerPath, best), "/")
	return filepath.Join(hit.Source, filepath.FromSlash(rel)), hit.ReadOnly
}

// portOf is the TCP port of an address such as ":8081" or "0.0.0.0:8081".
func portOf(addr string) string {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return ""
	}
	return addr[i+1:]
}

// mdSection is one heading of a Markdown file and its text up to the next heading.
type mdSection struct {
	level       int
	title, body string
}

var mdHeading = regexp.MustCompile(`(?m)^(#{1,6})\s+(.+?)\s*$`)

// readMarkdown splits a file of the repository (a path relative to its root) into its
// sections, in order.
func readMarkdown(t testing.TB, rel string) []mdSection {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	text := string(raw)
	var out []mdSection
	locs := mdHeading.FindAllStringSubmatchIndex(text, -1)
	for i, l := range locs {
		end := len(text)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out = append(out, mdSection{level: l[3] - l[2], title: text[l[4]:l[5]], body: text[l[1]:end]})
	}
	return out
}
