package redisstore

import (
	"context"
	"fmt"

	"github.com/skywatch/skywatch/internal/storeformat"
)

// FormatVersion is the key layout that this code writes and reads, kept in
// field "alarms" of the hash P format (the records of the accounts package
// keep theirs in field "records" of the same hash). Format 1 is the layout
// from before the version was kept; format 2 has the same keys and adds
// the version, so Open migrates format 1 by stamping it. Nodes that start
// together stamp once between them (HSETNX).
const FormatVersion = 2

// ErrNewerFormat is wrapped by Open's error for keys written by a newer
// Skywatch, whose layout this code would misread.
var ErrNewerFormat = storeformat.ErrNewer

// FormatKey is the hash, under the key prefix, that holds the format
// versions of the stores sharing the prefix.
const FormatKey = "format"

// Migration says what Open did to keys of an older format.
type Migration struct {
	From, To int
}

// checkFormat stamps unstamped keys, refuses newer ones, and notes a
// migration when unstamped keys held data (format 1).
func (s *Store) checkFormat(ctx context.Context) error {
	stamped, err := storeformat.CheckRedis(ctx, s.rdb, s.key(FormatKey), "alarms", FormatVersion)
	if err != nil || !stamped {
		return err
	}
	n, err := s.rdb.Exists(ctx, s.key("events"), s.key("devices"), s.key("rejected"), s.key("inc:idx:all"), s.key("units")).Result()
	if err != nil {
		return fmt.Errorf("stamp format: %w", err)
	}
	if n > 0 {
		s.migration = &Migration{From: 1, To: FormatVersion}
	}
	return nil
}

// Migration returns what Open migrated, or nil when the keys were new or
// already at FormatVersion.
func (s *Store) Migration() *Migration { return s.migration }
