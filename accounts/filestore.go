package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/skywatch/skywatch/internal/storeformat"
)

// File names in a FileStore's directory.
const (
	auditFile = "audit.jsonl"
	prefsFile = "prefs.json"
)

// FileStore keeps the audit log and the preferences in files in one
// directory, for a single Skywatch process:
//
//	audit.jsonl  one audit record per line (JSON), oldest first
//	prefs.json   {"username": {preferences}, ...}, user names in lower case
//	sessions.json  console sessions, under a hash of their cookie's token
//	tokens.json  the console's API tokens, hashed, by lower-case name
//	format       RecordsFormatVersion in decimal (see format.go)
//
// A record is on disk (written and fsynced) when AppendAudit returns, so
// the log survives a crash of the process or the machine. A crash in the
// middle of a write can leave a torn last line: QueryAudit skips lines that
// are not records, and the next record starts on a line of its own.
// prefs.json is replaced whole (written to a temporary file, fsynced,
// renamed), so it is always the old or the new version.
//
// QueryAudit reads the log backwards from the end (or the cursor) until
// the page is full, so the newest pages are quick at any size. A query
// whose page is not filled, such as a filter matching little or the last
// page, reads the whole file: about 250 bytes and 3 to 7 µs of one core a
// record (BenchmarkFileStoreScan), so a busy county's year of a million
// records (250 MB) takes some 3 to 7 seconds to search.
//
// A FileStore is safe for concurrent use.
type FileStore struct {
	dir string

	prefsMu sync.Mutex // taken before mu
	prefs   map[string]json.RawMessage

	sessions *fileSessions // its lock is taken before mu
	tokens   *fileTokens   // its lock is taken before mu

	mu     sync.Mutex
	closed bool
	audit  *os.File // opened with O_APPEND
	size   int64    // bytes of the log that hold whole lines or a torn one
	torn   bool     // the log does not end with a newline
	// write appends to the log; tests make it fail half-way.
	write func(f *os.File, b []byte) (int, error)
	// migration is what OpenFileStore migrated, nil if nothing.
	migration *RecordsMigration
}

// OpenFileStore opens the store in dir, making dir (mode 0700) and the
// files (mode 0600) when they do not exist.
func OpenFileStore(dir string) (*FileStore, error) {
	start := time.Now()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("accounts file store: %w", err)
	}
	// Before anything is written: a newer directory stays as it is.
	from, err := readDirFormat(dir)
	if err != nil {
		return nil, fmt.Errorf("accounts file store: %w", err)
	}
	if from > RecordsFormatVersion {
		return nil, fmt.Errorf("accounts file store: %s: %w", dir, &storeformat.NewerError{Found: from, Reads: RecordsFormatVersion})
	}
	s := &FileStore{dir: dir, write: (*os.File).Write}
	if s.prefs, err = readPrefsFile(filepath.Join(dir, prefsFile)); err != nil {
		return nil, fmt.Errorf("accounts file store: %w", err)
	}
	if s.sessions, err = openFileSessions(dir); err != nil {
		return nil, fmt.Errorf("accounts file store: %w", err)
	}
	if s.tokens, err = openFileTokens(dir); err != nil {
		return nil, fmt.Errorf("accounts file store: %w", err)
	}
	// Temporary files of a rewrite that a crash interrupted.
	for _, name := range []string{prefsFile, sessionsFile, tokensFile, FormatFile} {
		if tmps, err := filepath.Glob(filepath.Join(dir, name+".*.tmp")); err == nil {
			for _, t := range tmps {
				_ = os.Remove(t)
			}
		}
	}
	if s.audit, err = os.OpenFile(filepath.Join(dir, auditFile), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("accounts file store: %w", err)
	}
	if err := s.openLog(); err != nil {
		_ = s.audit.Close()
		return nil, fmt.Errorf("accounts file store: %s: %w", s.audit.Name(), err)
	}
	// The log's directory entry must survive a crash too.
	if err := syncDir(dir); err != nil {
		_ = s.audit.Close()
		return nil, fmt.Errorf("accounts file store: %w", err)
	}
	switch from {
	case 0:
		err = writeDirFormat(dir)
	case 1:
		err = s.migrateDir(from, start)
	}
	if err != nil {
		_ = s.audit.Close()
		return nil, fmt.Errorf("accounts file store: %s: migrate format %d to %d: %w", dir, from, RecordsFormatVersion, err)
	}
	return s, nil
}

// openLog finds the log's size and whether it ends in a torn line.
func (s *FileStore) openLog() error {
	st, err := s.audit.Stat()
	if err != nil {
		return err
	}
	s.size = st.Size()
	if s.size > 0 {
		last := make([]byte, 1)
		if _, err := s.audit.ReadAt(last, s.size-1); err != nil {
			return err
		}
		s.torn = last[0] != '\n'
	}
	return nil
}

func readPrefsFile(path string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, err
	}
	prefs := map[string]json.RawMessage{}
	if err := json.Unmarshal(data, &prefs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return prefs, nil
}

// Close closes the store. It is idempotent.
func (s *FileStore) Close() error {
	s.prefsMu.Lock()
	defer s.prefsMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.audit.Close(); err != nil {
		return fmt.Errorf("accounts file store: close: %w", err)
	}
	return nil
}

// AppendAudit adds a record to the log and returns when it is on disk.
// Appends wait for each other's fsync: a few milliseconds each on common
// disks, plenty for people logging in and watching cameras.
func (s *FileStore) AppendAudit(ctx context.Context, r AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("accounts file store: append audit: %w", err)
	}
	data, err := json.Marshal(r.prepare(time.Now()))
	if err != nil {
		return fmt.Errorf("accounts file store: append audit: %w", err)
	}
	data = append(data, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("accounts file store: append audit: %w", ErrClosed)
	}
	if s.torn {
		data = append([]byte{'\n'}, data...)
	}
	n, err := s.write(s.audit, data)
	if err != nil {
		// Part of the line may be there: the next record starts afresh.
		s.torn = true
		if st, serr := s.audit.Stat(); serr == nil {
			s.size = st.Size()
		} else {
			s.size += int64(n)
		}
		return fmt.Errorf("accounts file store: append audit: %w", err)
	}
	s.size += int64(n)
	s.torn = false
	if err := s.audit.Sync(); err != nil {
		return fmt.Errorf("accounts file store: append audit: sync: %w", err)
	}
	return nil
}

// QueryAudit returns a page of the records q selects, newest first. The
// cursor is the byte offset where the previous page's last record starts.
func (s *FileStore) QueryAudit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	page, err := s.queryAudit(ctx, q)
	if err != nil {
		return AuditPage{}, fmt.Errorf("accounts file store: query audit: %w", err)
	}
	return page, nil
}

func (s *FileStore) queryAudit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	if err := ctx.Err(); err != nil {
		return AuditPage{}, err
	}
	s.mu.Lock()
	closed, size := s.closed, s.size
	s.mu.Unlock()
	if closed {
		return AuditPage{}, ErrClosed
	}
	// A file of its own, so that Close does not pull it away mid-read.
	// Appends only add after size.
	f, err := os.Open(filepath.Join(s.dir, auditFile))
	if err != nil {
		return AuditPage{}, err
	}
	defer f.Close()

	end := size
	if q.Cursor != "" {
		c, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || c < 0 || c > size || !lineStart(f, c) {
			return AuditPage{}, ErrBadCursor
		}
		end = c
	}
	limit := q.limit()
	var page AuditPage
	lines := backLines{f: f, start: end, end: end}
	for n := 0; ; n++ {
		if n%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return AuditPage{}, err
			}
		}
		line, at, err := lines.prev()
		if err == io.EOF {
			return page, nil
		}
		if err != nil {
			return AuditPage{}, err
		}
		var r AuditRecord
		if json.Unmarshal(line, &r) != nil || r.Time.IsZero() {
			continue // a torn line, or not a record
		}
		if !q.match(&r) {
			continue
		}
		page.Records = append(page.Records, r)
		if len(page.Records) == limit {
			if at > 0 {
				page.Next = strconv.FormatInt(at, 10)
			}
			return page, nil
		}
	}
}

// lineStart tells whether a line starts at offset off of f.
func lineStart(f *os.File, off int64) bool {
	if off == 0 {
		return true
	}
	b := make([]byte, 1)
	_, err := f.ReadAt(b, off-1)
	return err == nil && b[0] == '\n'
}

// backLines reads a file's lines backwards from an offset.
type backLines struct {
	f          *os.File
	buf        []byte // the file from start to end, not yet returned
	start, end int64
}

// backChunk is how much backLines reads at a time.
const backChunk = 256 << 10

// prev returns the line before the current offset (without its newline)
// and where it starts, or io.EOF at the start of the file. The line is
// valid until the next call.
func (b *backLines) prev() ([]byte, int64, error) {
	for {
		if b.end == 0 {
			return nil, 0, io.EOF
		}
		if len(b.buf) > 0 {
			body := b.buf
			if body[len(body)-1] == '\n' {
				body = body[:len(body)-1]
			}
			if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
				b.buf = b.buf[:i+1]
				b.end = b.start + int64(i+1)
				return body[i+1:], b.end, nil
			}
			if b.start == 0 {
				b.buf, b.end = b.buf[:0], 0
				return body, 0, nil
			}
		}
		k := min(backChunk, b.start)
		buf := make([]byte, k+int64(len(b.buf)))
		if _, err := b.f.ReadAt(buf[:k], b.start-k); err != nil {
			return nil, 0, err
		}
		copy(buf[k:], b.buf)
		b.buf, b.start = buf, b.start-k
	}
}

// Prefs returns a user's preferences, or nil when there are none.
func (s *FileStore) Prefs(ctx context.Context, username string) (json.RawMessage, error) {
	key, err := prefsKey(username)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("accounts file store: prefs of %q: %w", username, err)
	}
	s.prefsMu.Lock()
	defer s.prefsMu.Unlock()
	if s.isClosed() {
		return nil, fmt.Errorf("accounts file store: prefs of %q: %w", username, ErrClosed)
	}
	return slices.Clone(s.prefs[key]), nil
}

// SetPrefs stores a user's preferences, a JSON object of at most
// MaxPrefsSize bytes, and returns when they are on disk. It rewrites the
// whole file: fine for the preferences of a few hundred users, which the
// console saves only after a change.
func (s *FileStore) SetPrefs(ctx context.Context, username string, prefs json.RawMessage) error {
	key, err := prefsKey(username)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		prefs, err = checkPrefs(prefs)
	}
	if err != nil {
		return fmt.Errorf("accounts file store: set prefs of %q: %w", username, err)
	}
	s.prefsMu.Lock()
	defer s.prefsMu.Unlock()
	if s.isClosed() {
		return fmt.Errorf("accounts file store: set prefs of %q: %w", username, ErrClosed)
	}
	all := maps.Clone(s.prefs)
	all[key] = prefs
	// Without HTML escaping, the file keeps the bytes the user stored.
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	enc.SetEscapeHTML(false)
	err = enc.Encode(all)
	if err == nil {
		err = writeFileAtomic(s.dir, prefsFile, data.Bytes())
	}
	if err != nil {
		return fmt.Errorf("accounts file store: set prefs of %q: %w", username, err)
	}
	s.prefs = all
	return nil
}

func (s *FileStore) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// writeFileAtomic replaces dir/name with data: after a crash the file is
// either the old or the new one, whole.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, name+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return syncDir(dir)
}

// syncDir makes a directory's entries (a new or renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
