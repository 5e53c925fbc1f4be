// Package watch follows the input directory with inotify and tells the directory source
// (source/dir) what happened to each file.
//
// It reads inotify directly (golang.org/x/sys/unix) rather than through fsnotify:
// fsnotify reports IN_CREATE and IN_MOVED_TO both as Create, and that difference is the
// settle rule itself — a file renamed into place is complete and must be taken at once,
// a file created in place may still be being written.
package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sink receives what inotify says about the directory.
type Sink interface {
	Renamed(name string) // IN_MOVED_TO: complete on arrival
	Written(name string) // IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE: written in place
	Removed(name string) // IN_MOVED_FROM, IN_DELETE
	Overflow()           // IN_Q_OVERFLOW: events were lost, rescan
}

// Watch follows dir until ctx ends. It returns an error if the watch cannot be set up;
// the caller then relies on rescans alone.
func Watch(ctx context.Context, dir string, sink Sink) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify init: %w", err)
	}
	// os.NewFile puts the non-blocking descriptor on Go's poller, so Close wakes Read.
	f := os.NewFile(uintptr(fd), "inotify")
	const mask = unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE |
		unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_ONLYDIR
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		f.Close()
		return fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("inotify read: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			name := cstring(nameBytes)
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				sink.Overflow()
			case name == "":
			case ev.Mask&unix.IN_MOVED_TO != 0:
				sink.Renamed(name)
			case ev.Mask&(unix.IN_MOVED_FROM|unix.IN_DELETE) != 0:
				sink.Removed(name)
			case ev.Mask&(unix.IN_CREATE|unix.IN_MODIFY|unix.IN_CLOSE_WRITE) != 0:
				sink.Written(name)
			}
		}
	}
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
