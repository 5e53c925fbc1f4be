package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestLineNamesTheProgramVersionRevisionAndGo(t *testing.T) {
	got := Line("ingester")
	for _, want := range []string{"ingester", "version " + Version, Revision(), runtime.Version()} {
		if !strings.Contains(got, want) {
			t.Errorf("Line = %q, lacks %q", got, want)
		}
	}
}
