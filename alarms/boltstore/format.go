package boltstore

import "github.com/skywatch/skywatch/internal/storeformat"

// FormatVersion is the layout of the store file that this code writes and
// reads, kept as "format" in the meta bucket. Format 1 is the layout from
// before the file carried a version (no "format" key); Open migrates it.
const FormatVersion = 2

// ErrNewerFormat is wrapped by Open's error for a file written by a newer
// Skywatch, whose layout this code would misread.
var ErrNewerFormat = storeformat.ErrNewer
