//go:build !linux

package watch

import (
	"context"
	"errors"
)

// Sink receives what the watcher says about the directory.
type Sink interface {
	Renamed(name string)
	Written(name string)
	Removed(name string)
	Overflow()
}

// Watch is not available off Linux; the ingester relies on rescans there.
func Watch(ctx context.Context, dir string, sink Sink) error {
	return errors.New("inotify is only available on Linux; using rescans alone")
}
