package ops

import (
	"context"
	"time"
)

// store is where the ingester's input waits and its failed files are kept: a directory
// (dirStore) or a bucket prefix (bucketStore). The commands measure, list and retry
// through it, so what they print and how they match the ledger is written once.
type store interface {
	// inputPlace and failedPlace name the input and the failed place in messages.
	inputPlace() string
	failedPlace() string
	// pending measures the backlog at now: what the ingester would take.
	pending(ctx context.Context, now time.Time) (Backlog, error)
	// countFailed counts the failed files (not their reasons).
	countFailed(ctx context.Context) (int64, error)
	// failedFiles lists the failed files that failed after since, with their reasons and
	// checksums; original is the ledger's name of what failed, when known.
	failedFiles(ctx context.Context, since time.Time) ([]*dirFile, error)
	// head returns the first n lines of failed file name, escaped and bounded.
	head(ctx context.Context, name string, n int) ([]Line, error)
	// retry puts failed file name back under a fresh retry name, then removes it and its
	// reason from the failed place; already says an earlier retry that stopped half-way
	// had placed the same bytes (as newName), and only its removal was left.
	retry(ctx context.Context, name string, ledger ledgerLookup) (newName string, already bool, err error)
}

// ledgerLookup returns the ledger's names that start with stem + ".retry", and the one
// among them that committed the bytes of checksum sum as ingested, if any.
type ledgerLookup func(ctx context.Context, stem, sum string) (taken map[string]bool, done string, err error)

// dirStore is the input and failed directories on a local file system.
type dirStore struct{ s Settings }

// src is the store the commands work on: the bucket when the source is one, else the
// directories of the settings (made afresh: tests change the settings of an env).
func (e *env) src() store {
	if e.store != nil {
		return e.store
	}
	return dirStore{s: e.s}
}

func (d dirStore) inputPlace() string  { return d.s.InputDir }
func (d dirStore) failedPlace() string { return d.s.FailedDir }
