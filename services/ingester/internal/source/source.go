// Package source is the seam between where input comes from and the runner that commits
// it. A source discovers items (files in a directory, objects in a bucket), opens one
// version of an item for reading, and finishes items once their outcome is committed
// (archive, delete, keep, or move aside as failed with a reason). What is the same for
// every source stays outside it: the queue (order, backoff, attempts), the claim (a
// PostgreSQL advisory lock on the item's name) and the ledger (ingested_files, committed
// in the same transaction as the rows).
//
// The first implementation is a directory (package source/dir); the runner knows nothing
// of os.* paths. A second, in-memory one (package source/memory) drives the runner's
// fast tests. A bucket is the next.
//
// Errors are control flow: ErrGone (nothing there any more: another replica finished it)
// and ErrChanged (the name now holds other bytes than the version that was taken, or
// something that must not be read) are verdicts about the name, never about content.
// Every other error of Open or Finish is the operating system's or the network's and is
// retried; no source may turn one into a rejection. Of those, ErrUnavailable marks the
// ones that say nothing about the item at all (the store cannot be reached or answers
// "later"): they do not count against the item's attempts.
package source

import (
	"context"
	"errors"
	"io"
	"time"
)

var (
	// ErrGone: the item no longer exists (moved or deleted, usually by another replica).
	ErrGone = errors.New("item gone")
	// ErrChanged: the name no longer holds the version that was taken (a new version was
	// written over it) or holds something that must never be read (a symlink, a FIFO).
	// Nothing of it was read or moved; a new version is discovered and loaded as such.
	ErrChanged = errors.New("item changed")
	// ErrUnavailable wraps an error of the store itself, not of the item: no answer (a
	// refused or reset connection, a timeout) or an answer meaning "later" (5xx,
	// throttling). Every item would meet it alike, so it counts against no
	// item's attempts: an outage of any length never moves an item aside, and the items
	// are tried again, with backoff, until the store answers.
	ErrUnavailable = errors.New("source unavailable")
)

// Version identifies the bytes behind a name at one moment: for a file its device,
// inode, size and modification time; for an object its ETag (and size, time). The zero
// Version means "not known".
type Version struct {
	Size    int64
	ModTime time.Time
	Dev     uint64 // files
	Ino     uint64 // files
	ETag    string // objects
}

// IsZero tells whether nothing is known of the version.
func (v Version) IsZero() bool {
	return v.Size == 0 && v.ModTime.IsZero() && v.Dev == 0 && v.Ino == 0 && v.ETag == ""
}

// Same tells whether v and o name the same bytes, comparing what both know. Where both
// know an ETag, it decides with the size, and the times are not compared: an object's
// time is what each request saw (Last-Modified in whole seconds in a listing, the
// event's time in a notification, the producer's finer mtime on a read), so the same
// version carries different times, while an ETag names its bytes.
func (v Version) Same(o Version) bool {
	if v.Size != o.Size {
		return false
	}
	if v.ETag != "" && o.ETag != "" {
		return v.ETag == o.ETag
	}
	if !v.ModTime.Equal(o.ModTime) {
		return false
	}
	if v.Ino != 0 && o.Ino != 0 && (v.Ino != o.Ino || v.Dev != o.Dev) {
		return false
	}
	return true
}

// Item is one unit of input as discovery saw it.
type Item struct {
	// Name is the item's name in the ledger (ingested_files.file_name), in
	// events.source_file and in rejected_records, and the key of its claim: unique
	// across every source that shares the database. A directory's items are named by
	// their base name (as before sources existed); a bucket's by their URL
	// (s3://bucket/key), so the two can never collide.
	Name    string
	Version        // what discovery saw; Open checks it where it is known
	Path    string // where a person finds it (a path, a URL), for logs and errors only
}

// Action is what happens to an item once its outcome is committed.
type Action int

const (
	Archive Action = iota // keep a copy in the archive, then remove it from the input
	Delete                // remove it from the input (only after its rows are committed)
	Keep                  // leave it where it is; the ledger alone says it is done
	Fail                  // move it aside with its reason (a failed directory or prefix)
)

func (a Action) String() string {
	switch a {
	case Archive:
		return "archive"
	case Delete:
		return "delete"
	case Keep:
		return "keep"
	case Fail:
		return "fail"
	}
	return "unknown"
}

// Finish is one item to take out of the input after its outcome was committed (or, for
// Fail, after the runner gave up on it). Version is the version that was read: a source
// finishes the item only while its name still holds that version (ErrChanged otherwise;
// the new version stays to be loaded).
type Finish struct {
	Item    Item
	Version Version
	Action  Action
	Reason  string // with Fail: written beside the item (name.reason.txt)
}

// Sink is what discovery feeds: the runner's queue.
type Sink interface {
	// Found records an item that exists now. complete says it may be read at once
	// (renamed into place, an uploaded object); otherwise the queue waits until the
	// source's Settled says so.
	Found(it Item, complete bool)
	// Removed forgets an item that left the source.
	Removed(name string)
	// Listed ends a full listing that began at began: items not found since then (and
	// not in a worker's hands) are forgotten. Events that arrived during the listing are
	// kept.
	Listed(began time.Time)
	// Aside counts an entry that discovery moved aside unread, with its reason (a name
	// the ledger cannot record, a symlink, a FIFO...).
	Aside(name, reason string)
}

// Source is where items come from.
type Source interface {
	// String names the source in logs (a directory's path, s3://bucket/prefix).
	String() string
	// Discover follows the source until ctx ends, telling sink what it finds: at once
	// from events where the source has them (inotify, bucket notifications), and by a
	// full listing every interval, the backstop for lost events. The first listing is
	// done before Discover returns its first error; a source that cannot list at start
	// returns that error.
	Discover(ctx context.Context, sink Sink) error
	// Open opens it for reading, only if the name still holds it.Version where that is
	// known (ErrChanged otherwise); the returned Version is what is actually read. The
	// reader yields the stored bytes (the ledger's checksum is of these).
	Open(ctx context.Context, it Item) (io.ReadCloser, Version, error)
	// Settled tells whether an item found incomplete may be read now, and returns it as
	// it is now (a source whose items are always complete returns it, true).
	Settled(ctx context.Context, it Item) (Item, bool)
	// Finish takes committed items out of the input, a batch at a time (one fsync per
	// directory, one delete request per batch). errs[i] is fs[i]'s outcome: nil, ErrGone
	// (already done elsewhere: as good as nil), ErrChanged, or an error to retry.
	Finish(ctx context.Context, fs []Finish) (errs []error)
}
