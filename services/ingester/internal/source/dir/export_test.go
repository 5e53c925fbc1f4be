package dir

import "github.com/ecomstream/ecomstream/services/ingester/internal/source"

// OverflowPeak is how many overflow listings ran at once at most.
func OverflowPeak(d *Dir) int32 { return d.overflowPeak.Load() }

// WaitOverflow waits for a running overflow listing.
func WaitOverflow(d *Dir) { d.overflowWG.Wait() }

// Overflow is what inotify's IN_Q_OVERFLOW does.
func Overflow(d *Dir, sink source.Sink) { d.overflow(sink) }
