package dir

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

type noSink struct{ aside map[string]string }

func (noSink) Found(source.Item, bool)     {}
func (noSink) Removed(string)              {}
func (noSink) Listed(time.Time)            {}
func (s noSink) Aside(name, reason string) { s.aside[name] = reason }

// A listing moves aside only the entry it saw: a regular file renamed over a FIFO's
// name between the listing and the move is a new version to be read, not moved aside
// unread (the move carries the identity the listing saw, not the zero identity that
// matches anything).
func TestAnEntryReplacedBeforeItIsMovedAsideStaysToBeRead(t *testing.T) {
	root := t.TempDir()
	d := New(Options{Input: filepath.Join(root, "in"), Failed: filepath.Join(root, "failed")})
	if err := d.Prepare(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.opt.Input, "swap.csv")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(d.opt.Input)
	if err != nil {
		t.Fatal(err)
	}
	sink := noSink{aside: map[string]string{}}
	asides := d.report(sink, ents, false)
	if len(asides) != 1 || asides[0].reason != ReasonNotRegularFile {
		t.Fatalf("asides %+v", asides)
	}
	os.WriteFile(p+".new", []byte("h\n1\n"), 0o644)
	os.Rename(p+".new", p)
	d.moveAside(sink, asides)
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the regular file that took the name was moved aside: %v", err)
	}
	if len(sink.aside) != 0 {
		t.Fatalf("counted as moved aside: %v", sink.aside)
	}
}
