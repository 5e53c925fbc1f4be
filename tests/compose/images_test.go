package compose

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// imageDoc is one section of docs/images.md: "## VARIABLE", the pin it documents, and the
// section's text.
type imageDoc struct {
	pin  string
	text string
}

var (
	docSection = regexp.MustCompile(`^[A-Z0-9_]+_IMAGE$`)
	docPin     = regexp.MustCompile("(?m)^Pin: `([^`]+)`\\s*$")
	docRefresh = regexp.MustCompile("docker buildx imagetools inspect ([^\\s`]+)")
	docLink    = regexp.MustCompile(`https://[^\s)>\]]+`)
)

// readImageDocs parses docs/images.md into its sections, keyed by variable.
func readImageDocs(t *testing.T) map[string]imageDoc {
	t.Helper()
	out := map[string]imageDoc{}
	for _, sec := range readMarkdown(t, "docs/images.md") {
		if sec.level != 2 || !docSection.MatchString(sec.title) {
			continue
		}
		if _, dup := out[sec.title]; dup {
			t.Errorf("docs/images.md: %s documented twice", sec.title)
		}
		d := imageDoc{text: sec.body}
		if m := docPin.FindAllStringSubmatch(sec.body, -1); len(m) == 1 {
			d.pin = m[0][1]
		} else {
			t.Errorf("docs/images.md: section %s must have exactly one \"Pin: `ref`\" line, has %d", sec.title, len(m))
		}
		out[sec.title] = d
	}
	return out
}

// pinsOfStack is every image reference the stack pins, by the variable that holds it:
// .env's *_IMAGE variables, the Dockerfile's ARG defaults and FROM lines (under the ARG
// they name, or their own reference), and every compose image that is pulled rather than
// built (an image written into docker-compose.yml instead of .env shows up under its
// reference, so it needs a section of that name — which cannot exist — and fails).
func pinsOfStack(t *testing.T) map[string]string {
	t.Helper()
	pins := map[string]string{}
	byRef := map[string]string{}
	add := func(name, ref string) {
		if old, ok := pins[name]; ok && old != ref {
			t.Errorf("%s is pinned to both %s and %s", name, old, ref)
		}
		pins[name] = ref
		byRef[ref] = name
	}
	for k, v := range dotEnv(t) {
		if strings.HasSuffix(k, "_IMAGE") {
			add(k, v)
		}
	}
	df := readDockerfile(t)
	for k, v := range df.metaArgs {
		if strings.HasSuffix(k, "_IMAGE") {
			add(k, v)
		}
	}
	for _, s := range df.stages {
		if df.stage(s.base) != nil || s.base == "scratch" {
			continue
		}
		if _, ok := byRef[s.base]; !ok {
			add(s.base, s.base)
		}
	}
	for name, s := range loadProject(t, allProfiles...).Services {
		if s.Build != nil {
			continue
		}
		if _, ok := byRef[s.Image]; !ok {
			t.Errorf("service %s: image %s is not one of .env's *_IMAGE pins", name, s.Image)
			add(s.Image, s.Image)
		}
	}
	return pins
}

// TestImagesDocumented: docs/images.md and the pins are in step. Every pinned image has
// a section with exactly that reference, evidence that it is published (links), and the
// command that refreshes it; nothing is documented that is not pinned.
func TestImagesDocumented(t *testing.T) {
	docs := readImageDocs(t)
	pins := pinsOfStack(t)
	if len(pins) < 9 {
		t.Fatalf("only %d pins found (%v); the stack has at least nine images", len(pins), keys(pins))
	}
	for name, ref := range pins {
		d, ok := docs[name]
		if !ok {
			t.Errorf("%s=%s is pinned but docs/images.md has no \"## %s\" section", name, ref, name)
			continue
		}
		if d.pin != ref {
			t.Errorf("docs/images.md documents %s as %q, but it is pinned to %q", name, d.pin, ref)
		}
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		repo := reference.FamiliarName(named)
		refresh := false
		for _, m := range docRefresh.FindAllStringSubmatch(d.text, -1) {
			if n, err := reference.ParseNormalizedNamed(m[1]); err == nil && reference.FamiliarName(n) == repo {
				refresh = true
			}
		}
		if !refresh {
			t.Errorf("docs/images.md %s: no `docker buildx imagetools inspect %s...` to refresh it", name, repo)
		}
		if n := len(docLink.FindAllString(d.text, -1)); n < 2 {
			t.Errorf("docs/images.md %s: %d links; cite where the tag is published (release notes, the project's docs, real uses)", name, n)
		}
	}
	var stale []string
	for name := range docs {
		if _, ok := pins[name]; !ok {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	for _, name := range stale {
		t.Errorf("docs/images.md documents %s, which nothing pins", name)
	}
}

// TestCadvisorFromGHCR: cAdvisor v0.53.0 and later are published only on ghcr.io (gcr.io
// answers "manifest unknown"), the v-prefixed tag only from v0.57.0 on; the PostgreSQL
// memory panel needs v0.54 or later (Docker 29's containerd image store).
func TestCadvisorFromGHCR(t *testing.T) {
	ref := dotEnv(t)["CADVISOR_IMAGE"]
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		t.Fatalf("CADVISOR_IMAGE=%q: %v", ref, err)
	}
	if got := named.Name(); got != "ghcr.io/google/cadvisor" {
		t.Errorf("CADVISOR_IMAGE from %s; v0.53.0 and later are on ghcr.io/google/cadvisor only", got)
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		t.Fatalf("CADVISOR_IMAGE=%q has no tag", ref)
	}
	m := regexp.MustCompile(`^(v?)0\.(\d+)\.\d+$`).FindStringSubmatch(tagged.Tag())
	if m == nil {
		t.Fatalf("CADVISOR_IMAGE tag %q is not a 0.x.y release", tagged.Tag())
	}
	minor, _ := strconv.Atoi(m[2]) // digits only: the pattern says so
	if minor < 54 {
		t.Errorf("CADVISOR_IMAGE %s: v0.54 or later reads Docker 29's containerd image store", tagged.Tag())
	}
	if m[1] == "v" && minor < 57 {
		t.Errorf("CADVISOR_IMAGE %s: ghcr.io has v-prefixed tags only from v0.57.0 (before: %s)", tagged.Tag(), strings.TrimPrefix(tagged.Tag(), "v"))
	}
}
