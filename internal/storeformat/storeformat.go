// Package storeformat holds what the stores share about their format
// versions: the error for a store written by a newer Skywatch, and the
// atomic stamp of a version in Redis. Each store owns its own version
// number and migrations.
package storeformat

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
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

// StampRedis records version in field of the hash key unless the field
// holds one already, and returns what it held: 0 when it was empty and
// this call stamped it. HSETNX makes this atomic: of several nodes that
// start at once on unstamped keys, one stamps and the others read its
// version.
func StampRedis(ctx context.Context, rdb redis.Cmdable, key, field string, version int) (int, error) {
	set, err := rdb.HSetNX(ctx, key, field, version).Result()
	if err != nil {
		return 0, fmt.Errorf("stamp format: %w", err)
	}
	if set {
		return 0, nil
	}
	v, err := rdb.HGet(ctx, key, field).Result()
	if err != nil {
		return 0, fmt.Errorf("read format: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s field %s: %q is not a format version", key, field, v)
	}
	return n, nil
}

// CheckRedis stamps version (see StampRedis) and tells whether the keys
// were unstamped; keys of a newer format are a *NewerError.
func CheckRedis(ctx context.Context, rdb redis.Cmdable, key, field string, version int) (stamped bool, err error) {
	found, err := StampRedis(ctx, rdb, key, field, version)
	switch {
	case err != nil:
		return false, err
	case found == 0:
		return true, nil
	case found > version:
		return false, &NewerError{Found: found, Reads: version}
	case found < version:
		// Format 1 was never stamped: a lower stamp is no Skywatch's.
		return false, fmt.Errorf("%s field %s: format %d has no migration to %d", key, field, found, version)
	}
	return false, nil
}
