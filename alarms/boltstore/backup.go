package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Snapshot is a consistent copy of the store file as of one read
// transaction, for a backup. It is valid only inside the function given to
// Backup or BackupFile: the transaction ends when that function returns.
// Writers are not held up meanwhile (bbolt readers do not block the
// writer), but pages freed while it lasts are reused only after it ends,
// so the file may grow during a long backup.
type Snapshot struct {
	tx *bolt.Tx
}

// Size is the number of bytes WriteTo writes: the file as the transaction
// sees it.
func (s Snapshot) Size() int64 { return s.tx.Size() }

// Events is the number of events in the snapshot.
func (s Snapshot) Events() int {
	b := s.tx.Bucket(bucketEvents)
	if b == nil {
		return 0
	}
	return b.Stats().KeyN
}

// Format is the snapshot's format version (0 for a file that holds
// nothing yet): FormatVersion for a store this code opened, since Open
// migrates older files; a stopped store's file may be older, or newer.
func (s Snapshot) Format() (int, error) {
	n, err := readFormat(s.tx)
	if err != nil {
		return 0, fmt.Errorf("bolt store: snapshot: %w", err)
	}
	return n, nil
}

// WriteTo writes the snapshot, a complete bbolt file that Open accepts.
func (s Snapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := s.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("bolt store: snapshot: %w", err)
	}
	return n, nil
}

// Backup calls fn with a snapshot of the store taken in one read
// transaction: every write that returned before Backup was called is in
// it, and no write is half in it. Writes go on while fn runs.
func (s *Store) Backup(ctx context.Context, fn func(Snapshot) error) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("bolt store: backup: %w", err)
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(Snapshot{tx: tx}) })
}

// BackupFile is Backup of a store file that no process has open: it opens
// path read-only (creating nothing, changing nothing), so that a backup
// can be taken while Skywatch is stopped. When a process holds the file,
// it fails with ErrLocked after lockTimeout.
func BackupFile(path string, lockTimeout time.Duration, fn func(Snapshot) error) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("bolt store: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("bolt store: open %s: %w", path, err)
	}
	err = db.View(func(tx *bolt.Tx) error { return fn(Snapshot{tx: tx}) })
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("bolt store: close %s: %w", path, cerr)
	}
	return err
}
