package accounts

import "github.com/skywatch/skywatch/internal/storeformat"

// RecordsFormatVersion is the layout of the records (audit log,
// preferences, sessions, tokens) that this code writes and reads: in a
// FileStore's directory the file "format", in Redis field "records" of the
// hash P format. Format 1 is the layout from before the version was kept;
// the stores migrate it when they open.
const RecordsFormatVersion = 2

// ErrNewerFormat is wrapped by the error of OpenFileStore or
// OpenRedisStore for records written by a newer Skywatch.
var ErrNewerFormat = storeformat.ErrNewer
