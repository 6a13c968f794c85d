package redisstore

import "github.com/skywatch/skywatch/internal/storeformat"

// FormatVersion is the key layout that this code writes and reads, kept in
// field "alarms" of the hash P format. Format 1 is the layout from before
// the version was kept; Open stamps it.
const FormatVersion = 2

// ErrNewerFormat is wrapped by Open's error for keys written by a newer
// Skywatch, whose layout this code would misread.
var ErrNewerFormat = storeformat.ErrNewer
