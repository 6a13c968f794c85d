package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/skywatch/skywatch/internal/storeformat"
)

// RecordsFormatVersion is the layout of the records (audit log,
// preferences, sessions, tokens) that this code writes and reads: in a
// FileStore's directory the file "format", in Redis field "records" of
// the hash P format (beside the alarm store's field). Format 1 is the
// layout from before the version was kept. Format 2 has the same files
// and keys and adds the version: the stores migrate format 1 by checking
// that its files read and stamping it, rewriting nothing.
const RecordsFormatVersion = 2

// ErrNewerFormat is wrapped by the error of OpenFileStore or
// OpenRedisStore for records written by a newer Skywatch.
var ErrNewerFormat = storeformat.ErrNewer

// FormatFile is the file in a FileStore's directory that holds its
// format version in decimal.
const FormatFile = "format"

// RecordsMigration says what a store did to bring older records to
// RecordsFormatVersion.
type RecordsMigration struct {
	From, To int
	// AuditBytes and AuditLines measure the audit log; Prefs, Sessions
	// and Tokens count what the other files hold (FileStore only).
	AuditBytes, AuditLines  int64
	Prefs, Sessions, Tokens int
	Took                    time.Duration
}

// readDirFormat returns the directory's format: its format file's
// version, 1 when it has none but holds records, 0 when it holds none.
func readDirFormat(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, FormatFile))
	if err == nil {
		n, err := strconv.Atoi(string(bytes.TrimSpace(data)))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s: %q is not a format version", filepath.Join(dir, FormatFile), bytes.TrimSpace(data))
		}
		return n, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	for _, name := range []string{auditFile, prefsFile, sessionsFile, tokensFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err == nil && st.Size() > 0 {
			return 1, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
	}
	return 0, nil
}

func writeDirFormat(dir string) error {
	return writeFileAtomic(dir, FormatFile, []byte(strconv.Itoa(RecordsFormatVersion)+"\n"))
}

// countLines counts the newlines of the file at path and its size.
func countLines(path string) (lines, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	for {
		n, err := f.Read(buf)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		size += int64(n)
		if err == io.EOF {
			return lines, size, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
}

// migrateDir stamps a format-1 directory whose files s has read, and
// says what it held.
func (s *FileStore) migrateDir(from int, start time.Time) error {
	m := &RecordsMigration{From: from, To: RecordsFormatVersion, Prefs: len(s.prefs), Sessions: len(s.sessions.all), Tokens: len(s.tokens.all)}
	var err error
	if m.AuditLines, m.AuditBytes, err = countLines(filepath.Join(s.dir, auditFile)); err != nil {
		return err
	}
	if err := writeDirFormat(s.dir); err != nil {
		return err
	}
	m.Took = time.Since(start)
	s.migration = m
	return nil
}

// Migration returns what OpenFileStore migrated, or nil when the
// directory was new or already at RecordsFormatVersion.
func (s *FileStore) Migration() *RecordsMigration { return s.migration }

// checkFormat stamps unstamped records keys and refuses newer ones.
func (s *RedisStore) checkFormat(ctx context.Context) error {
	stamped, err := storeformat.CheckRedis(ctx, s.rdb, s.cfg.KeyPrefix+"format", "records", RecordsFormatVersion)
	if err != nil || !stamped {
		return err
	}
	n, err := s.rdb.Exists(ctx, s.auditStream(), s.prefsHash(), s.sessionsHash(), s.tokensHash()).Result()
	if err != nil {
		return fmt.Errorf("stamp format: %w", err)
	}
	if n > 0 {
		s.migration = &RecordsMigration{From: 1, To: RecordsFormatVersion}
	}
	return nil
}

// Migration returns what OpenRedisStore migrated, or nil when the keys
// were new or already at RecordsFormatVersion.
func (s *RedisStore) Migration() *RecordsMigration { return s.migration }
