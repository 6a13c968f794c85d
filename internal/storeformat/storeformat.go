// Package storeformat holds what the stores share about their format
// versions: the error for a store written by a newer Skywatch, and the
// atomic stamp of a version in Redis. Each store owns its own version
// number and migrations.
package storeformat

import (
	"errors"
	"fmt"
)

// ErrNewer is wrapped by the error of a store whose format is newer than
// this Skywatch reads. The stores export it as their ErrNewerFormat.
var ErrNewer = errors.New("store format is newer than this Skywatch reads")

// NewerError is the error for a store of format found when this binary
// reads format reads; its message says what to do. It wraps ErrNewer.
type NewerError struct {
	Found, Reads int
}

func (e *NewerError) Error() string {
	return fmt.Sprintf("format %d is newer than this Skywatch reads (%d): run the newer Skywatch, or restore a backup taken by this version", e.Found, e.Reads)
}

// Unwrap makes errors.Is(err, ErrNewer) hold.
func (e *NewerError) Unwrap() error { return ErrNewer }
