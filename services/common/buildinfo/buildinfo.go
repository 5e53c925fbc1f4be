// Package buildinfo says which build a binary is: the version a release build stamps in,
// the commit it was built from and the Go version. `--version` prints it and the
// ecomstream_build_info metric carries it as labels, so both always agree.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the product's version; a release build sets it with
// -ldflags "-X github.com/ecomstream/ecomstream/services/common/buildinfo.Version=v1.2.3".
var Version = "dev"

// Commit is the commit a build stamps in (make build: -ldflags "-X .../buildinfo.Commit=...");
// Go's own version control stamp is missing from builds in a go.work workspace.
var Commit = ""

// Revision is the commit the binary was built from: Commit, else Go's version control
// stamp ("unknown" when the build had neither, e.g. a build from a tarball), with
// "-dirty" when the working tree had changes.
func Revision() string {
	if Commit != "" {
		return Commit
	}
	rev, modified := "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		rev += "-dirty"
	}
	return rev
}

// GoVersion is the Go release the binary was built with.
func GoVersion() string { return runtime.Version() }

// Line is what `program --version` prints.
func Line(program string) string {
	return fmt.Sprintf("%s version %s (revision %s, %s)", program, Version, Revision(), GoVersion())
}
