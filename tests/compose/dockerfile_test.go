package compose

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mattn/go-shellwords"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/mod/modfile"
)

type stage struct {
	name  string
	base  string // FROM, with build args substituted: an image or an earlier stage
	nodes []*parser.Node
}

type dockerfile struct {
	metaArgs    map[string]string // ARG before the first FROM: name -> default
	stages      []*stage
	entrypoints map[string][]string // target -> exec-form ENTRYPOINT
	imageDirs   map[string]bool     // directories every service image creates owned by 65532
}

func (d *dockerfile) stage(name string) *stage {
	for _, s := range d.stages {
		if strings.EqualFold(s.name, name) {
			return s
		}
	}
	return nil
}

// chain is the target's stage and the stages it is built FROM, base first.
func (d *dockerfile) chain(target string) []*stage {
	var out []*stage
	for s := d.stage(target); s != nil; s = d.stage(s.base) {
		out = append([]*stage{s}, out...)
		if len(out) > len(d.stages) {
			break
		}
	}
	return out
}

var (
	dfOnce sync.Once
	dfVal  *dockerfile
	dfErr  error
)

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// readDockerfile parses ./Dockerfile with BuildKit's own parser; FROM lines are resolved
// with the build args compose passes (from .env), else the ARG defaults.
func readDockerfile(t testing.TB) *dockerfile {
	t.Helper()
	buildArgs := map[string]string{}
	for _, s := range loadProject(t).Services {
		if s.Build != nil {
			for k, v := range s.Build.Args {
				if v != nil {
					buildArgs[k] = *v
				}
			}
		}
	}
	dfOnce.Do(func() {
		var raw []byte
		raw, dfErr = os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
		if dfErr != nil {
			return
		}
		var res *parser.Result
		res, dfErr = parser.Parse(bytes.NewReader(raw))
		if dfErr != nil {
			return
		}
		d := &dockerfile{metaArgs: map[string]string{}, entrypoints: map[string][]string{}}
		var cur *stage
		for _, n := range res.AST.Children {
			switch strings.ToLower(n.Value) {
			case "arg":
				if cur == nil && n.Next != nil {
					k, v, _ := strings.Cut(n.Next.Value, "=")
					d.metaArgs[k] = v
				}
			case "from":
				base := argRef.ReplaceAllStringFunc(n.Next.Value, func(m string) string {
					k := argRef.FindStringSubmatch(m)[1]
					if v, ok := buildArgs[k]; ok {
						return v
					}
					return d.metaArgs[k]
				})
				cur = &stage{base: base}
				if a := n.Next.Next; a != nil && strings.EqualFold(a.Value, "as") && a.Next != nil {
					cur.name = a.Next.Value
				}
				d.stages = append(d.stages, cur)
			default:
				if cur != nil {
					cur.nodes = append(cur.nodes, n)
				}
			}
		}
		for _, s := range d.stages {
			for _, st := range d.chain(s.name) {
				for _, n := range st.nodes {
					if strings.EqualFold(n.Value, "entrypoint") && n.Attributes["json"] {
						d.entrypoints[s.name] = args(n)
					}
				}
			}
		}
		var dirs map[string]bool
		for _, name := range ourServices {
			got := d.ownedDirs(name)
			if dirs == nil {
				dirs = got
			}
			for k := range dirs {
				if !got[k] {
					delete(dirs, k)
				}
			}
		}
		d.imageDirs = dirs
		dfVal = d
	})
	if dfErr != nil {
		t.Fatalf("Dockerfile: %v", dfErr)
	}
	return dfVal
}

func args(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

func flag(n *parser.Node, name string) (string, bool) {
	for _, f := range n.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// ownedDirs: directories a target's image contains owned by uid 65532, i.e. those that a
// RUN mkdir made in another stage and a COPY --chown=65532 brought into the chain.
func (d *dockerfile) ownedDirs(target string) map[string]bool {
	out := map[string]bool{}
	for _, st := range d.chain(target) {
		for _, n := range st.nodes {
			if !strings.EqualFold(n.Value, "copy") {
				continue
			}
			chown, _ := flag(n, "chown")
			from, ok := flag(n, "from")
			if !ok || !(strings.HasPrefix(chown, "65532") || strings.HasPrefix(chown, "nonroot")) {
				continue
			}
			a := args(n)
			if len(a) != 2 {
				continue
			}
			src, dst := path.Clean(a[0]), path.Clean(a[1])
			out[dst] = true
			for _, fs := range d.chain(from) {
				for _, rn := range fs.nodes {
					if !strings.EqualFold(rn.Value, "run") {
						continue
					}
					for _, w := range strings.Fields(strings.Join(args(rn), " ")) {
						if rel, ok := strings.CutPrefix(path.Clean(w), src+"/"); ok && strings.Contains(strings.Join(args(rn), " "), "mkdir") {
							out[path.Join(dst, rel)] = true
						}
					}
				}
			}
		}
	}
	return out
}

// goBuild is one `go build` in a RUN line: its arguments and the binary it writes.
type goBuild struct {
	node   *parser.Node
	args   []string // after "go build"
	output string
	pkgs   []string
}

func goBuilds(s *stage) []goBuild {
	var out []goBuild
	for _, n := range s.nodes {
		if !strings.EqualFold(n.Value, "run") {
			continue
		}
		for _, cmd := range regexp.MustCompile(`&&|;|\|\|`).Split(strings.Join(args(n), " "), -1) {
			words, err := shellwords.Parse(strings.TrimSpace(cmd))
			if err != nil || len(words) < 2 || words[0] != "go" || words[1] != "build" {
				continue
			}
			b := goBuild{node: n, args: words[2:]}
			for i := 0; i < len(b.args); i++ {
				a := b.args[i]
				switch {
				case a == "-o" && i+1 < len(b.args):
					b.output = b.args[i+1]
					i++
				case strings.HasPrefix(a, "-o="):
					b.output = a[3:]
				case strings.HasPrefix(a, "-"):
					if !strings.Contains(a, "=") && slices.Contains([]string{"-ldflags", "-gcflags", "-tags", "-mod"}, a) {
						i++
					}
				default:
					b.pkgs = append(b.pkgs, a)
				}
			}
			out = append(out, b)
		}
	}
	return out
}

func TestDockerfileImagesPinned(t *testing.T) {
	d := readDockerfile(t)
	for _, s := range d.stages {
		if d.stage(s.base) != nil {
			continue
		}
		if err := pinned(s.base); err != nil {
			t.Errorf("FROM %s (stage %q): %v", s.base, s.name, err)
		}
	}
	// A plain `docker build` uses the ARG defaults, compose uses .env: the same pins.
	env := dotEnv(t)
	for k, v := range d.metaArgs {
		if e, ok := env[k]; ok && e != v {
			t.Errorf("Dockerfile ARG %s=%s but .env has %s", k, v, e)
		}
		if err := pinned(v); err != nil {
			t.Errorf("Dockerfile ARG %s: %v", k, err)
		}
	}
	runtime := d.stage("runtime")
	if runtime == nil || !strings.HasPrefix(runtime.base, "gcr.io/distroless/static") || !strings.Contains(runtime.base, ":nonroot") {
		t.Errorf("the runtime stage must be distroless static nonroot, got %+v", runtime)
	}
}

// TestComposeBuildsFromDockerfile: every built service uses the root context (go.work is
// visible), this Dockerfile, a target it has and only build args it declares.
func TestComposeBuildsFromDockerfile(t *testing.T) {
	d := readDockerfile(t)
	root := repoRoot(t)
	built := map[string]bool{}
	for name, s := range loadProject(t, allProfiles...).Services {
		if s.Build == nil {
			continue
		}
		if filepath.Clean(s.Build.Context) != root {
			t.Errorf("%s: build context %s, want the repository root", name, s.Build.Context)
		}
		if s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s: dockerfile %q", name, s.Build.Dockerfile)
		}
		if d.stage(s.Build.Target) == nil {
			t.Errorf("%s: target %q is not a stage of the Dockerfile", name, s.Build.Target)
		}
		for k := range s.Build.Args {
			if _, ok := d.metaArgs[k]; !ok {
				t.Errorf("%s: build arg %s is not an ARG of the Dockerfile", name, k)
			}
		}
		built[s.Build.Target] = true
	}
	for _, name := range ourServices {
		if !built[name] {
			t.Errorf("no compose service builds target %q", name)
		}
	}
}

// TestDockerfileBuildsServices: each service's target runs a binary that a `go build` of
// ./services/<name> produced, built the way the style asks (module download before the
// sources, cache mounts, CGO off, -trimpath), as the nonroot user; and that very `go build`
// succeeds here.
func TestDockerfileBuildsServices(t *testing.T) {
	d := readDockerfile(t)
	root := repoRoot(t)
	for _, name := range ourServices {
		t.Run(name, func(t *testing.T) {
			entry := d.entrypoints[name]
			if len(entry) == 0 {
				t.Fatalf("target %s has no exec-form ENTRYPOINT", name)
			}
			chain := d.chain(name)
			var build *goBuild
			var buildStage *stage
			user := ""
			for _, st := range chain {
				for _, n := range st.nodes {
					switch strings.ToLower(n.Value) {
					case "user":
						user = args(n)[0]
					case "copy":
						from, ok := flag(n, "from")
						a := args(n)
						if !ok || len(a) != 2 || a[1] != entry[0] {
							continue
						}
						bs := d.stage(from)
						if bs == nil {
							t.Fatalf("COPY --from=%s: no such stage", from)
						}
						for _, b := range goBuilds(bs) {
							if path.Clean(b.output) == path.Clean(a[0]) {
								build, buildStage = &b, bs
							}
						}
					}
				}
			}
			if build == nil {
				t.Fatalf("the ENTRYPOINT %s of target %s is not copied from a stage's `go build -o`", entry[0], name)
			}
			if want := "./services/" + name; !slices.Equal(build.pkgs, []string{want}) {
				t.Errorf("target %s runs a build of %v, want %s", name, build.pkgs, want)
			}
			if !slices.Contains(build.args, "-trimpath") {
				t.Errorf("go build of %s lacks -trimpath", name)
			}
			if u := strings.Split(user, ":")[0]; u != "65532" && u != "nonroot" {
				t.Errorf("target %s runs as user %q, want 65532 (nonroot)", name, user)
			}
			// What the build stage's chain does, in order.
			var env, mounts []string
			downloadAt, sourcesAt := -1, -1
			i := 0
			for _, st := range d.chain(buildStage.name) {
				for _, n := range st.nodes {
					i++
					switch strings.ToLower(n.Value) {
					case "env":
						env = append(env, n.Original)
					case "run":
						line := strings.Join(args(n), " ")
						if strings.Contains(line, "go mod download") && downloadAt < 0 {
							downloadAt = i
						}
						if n == build.node {
							mounts = append(mounts, n.Flags...)
						}
					case "copy":
						if a := args(n); len(a) == 2 && a[0] == "." {
							if _, from := flag(n, "from"); !from && sourcesAt < 0 {
								sourcesAt = i
							}
						}
					}
				}
			}
			if downloadAt < 0 || sourcesAt < 0 || downloadAt > sourcesAt {
				t.Errorf("stage %s: `go mod download` (step %d) must come before the sources are copied (step %d)",
					buildStage.name, downloadAt, sourcesAt)
			}
			if !strings.Contains(strings.Join(env, " "), "CGO_ENABLED=0") {
				t.Errorf("stage %s does not set CGO_ENABLED=0", buildStage.name)
			}
			for _, target := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
				if !slices.ContainsFunc(mounts, func(m string) bool {
					return strings.Contains(m, "type=cache") && strings.Contains(m, "target="+target)
				}) {
					t.Errorf("go build of %s has no cache mount at %s", name, target)
				}
			}
			// The same build, here. The Dockerfile builds with CGO off and without VCS stamps.
			out := filepath.Join(t.TempDir(), name)
			argv := []string{"build"}
			for i := 0; i < len(build.args); i++ {
				if build.args[i] == "-o" {
					argv = append(argv, "-o", out)
					i++
					continue
				}
				argv = append(argv, build.args[i])
			}
			cmd := exec.Command("go", argv...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go %s (the Dockerfile's build of %s) fails: %v\n%s", strings.Join(argv, " "), name, err, msg)
			}
			// The program itself accepts the environment each compose service gives it:
			// settings are decoded from the environment before --help is looked at.
			for svc, prog := range programOf {
				if prog != name {
					continue
				}
				run := exec.Command(out, "--help")
				run.Dir = t.TempDir()
				for k, v := range envOf(service(t, loadProject(t, allProfiles...), svc)) {
					run.Env = append(run.Env, k+"="+v)
				}
				if msg, err := run.CombinedOutput(); err != nil {
					t.Errorf("%s --help with the environment of compose service %s: %v\n%s", name, svc, err, msg)
				}
			}
		})
	}
}

// TestDockerIgnore: the build context keeps every file a build of the workspace needs.
func TestDockerIgnore(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".git", "bin", ".env"} {
		if ok, _ := pm.MatchesOrParentMatches(p); !ok {
			t.Errorf(".dockerignore should exclude %s", p)
		}
	}
	raw, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	work, err := modfile.ParseWork("go.work", raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	need := []string{"go.work"}
	if _, err := os.Stat(filepath.Join(root, "go.work.sum")); err == nil {
		need = append(need, "go.work.sum")
	}
	for _, u := range work.Use {
		dir := filepath.Join(root, filepath.FromSlash(u.Path))
		_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == "testdata" {
				return filepath.SkipDir
			}
			if !e.IsDir() && !strings.HasSuffix(p, "_test.go") {
				rel, _ := filepath.Rel(root, p)
				need = append(need, filepath.ToSlash(rel))
			}
			return nil
		})
	}
	excluded := 0
	for _, p := range need {
		if ok, _ := pm.MatchesOrParentMatches(p); ok {
			excluded++
			if excluded <= 10 {
				t.Errorf(".dockerignore excludes %s, which the build needs", p)
			}
		}
	}
	t.Logf("%d files of %d workspace modules are in the build context", len(need), len(work.Use))
}
