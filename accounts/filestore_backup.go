package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// RecordsFile is one file of a records directory, as a backup takes it.
type RecordsFile struct {
	// Name is the file's name in the directory.
	Name string
	// Size is the number of bytes Body yields.
	Size int64
	// Body is the file's content; it is valid only inside the function
	// that Backup or BackupRecordsDir calls.
	Body io.Reader
}

// Backup calls fn with each file of the directory: prefs.json,
// sessions.json and tokens.json each read under the lock their writers
// take, so each is one whole version; audit.jsonl up to its last whole
// line as of the call (records appended meanwhile are not in it, a torn
// line at its end is left out); the format file; then any other file of
// the directory except a rewrite's temporary files. Files that do not exist yet are
// skipped. The store stays usable meanwhile: the audit log is read
// without holding its lock, since appends only add after its end.
func (s *FileStore) Backup(ctx context.Context, fn func(RecordsFile) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("accounts file store: backup: %w", err)
	}
	if s.isClosed() {
		return fmt.Errorf("accounts file store: backup: %w", ErrClosed)
	}
	locked := []struct {
		name string
		mu   *sync.Mutex
	}{{prefsFile, &s.prefsMu}, {sessionsFile, &s.sessions.mu}, {tokensFile, &s.tokens.mu}}
	for _, f := range locked {
		f.mu.Lock()
		data, err := os.ReadFile(filepath.Join(s.dir, f.name))
		f.mu.Unlock()
		if err := sendWhole(f.name, data, err, fn); err != nil {
			return err
		}
	}
	s.mu.Lock()
	size := s.size
	s.mu.Unlock()
	if err := sendAudit(s.dir, size, fn); err != nil {
		return err
	}
	// Written once, when the store opened.
	data, err := os.ReadFile(filepath.Join(s.dir, FormatFile))
	if err := sendWhole(FormatFile, data, err, fn); err != nil {
		return err
	}
	return sendOthers(s.dir, fn)
}

// BackupRecordsDir is Backup of a records directory that no process has
// open (Skywatch is stopped): it reads the files as they are and changes
// nothing, not even a missing directory.
func BackupRecordsDir(dir string, fn func(RecordsFile) error) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("accounts file store: backup: %w", err)
	}
	for _, name := range []string{prefsFile, sessionsFile, tokensFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err := sendWhole(name, data, err, fn); err != nil {
			return err
		}
	}
	st, err := os.Stat(filepath.Join(dir, auditFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("accounts file store: backup: %w", err)
	default:
		if err := sendAudit(dir, st.Size(), fn); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, FormatFile))
	if err := sendWhole(FormatFile, data, err, fn); err != nil {
		return err
	}
	return sendOthers(dir, fn)
}

// RecordsDirFormat is the format version of the records in dir, for a
// backup of a stopped server's directory: the version its format file
// holds, 1 for records from before it was kept, 0 for a directory without
// records. A FileStore's directory is at RecordsFormatVersion once open.
func RecordsDirFormat(dir string) (int, error) {
	n, err := readDirFormat(dir)
	if err != nil {
		return 0, fmt.Errorf("accounts file store: %w", err)
	}
	return n, nil
}

// RecordsFileNames are the files a records directory holds, in the order
// Backup gives them; others (a format marker) may follow.
func RecordsFileNames() []string {
	return []string{prefsFile, sessionsFile, tokensFile, auditFile, FormatFile}
}

func sendWhole(name string, data []byte, readErr error, fn func(RecordsFile) error) error {
	if errors.Is(readErr, os.ErrNotExist) {
		return nil
	}
	if readErr != nil {
		return fmt.Errorf("accounts file store: backup: %w", readErr)
	}
	return fn(RecordsFile{Name: name, Size: int64(len(data)), Body: bytes.NewReader(data)})
}

// sendAudit gives the audit log up to the last newline at or before size.
func sendAudit(dir string, size int64, fn func(RecordsFile) error) error {
	f, err := os.Open(filepath.Join(dir, auditFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("accounts file store: backup: %w", err)
	}
	defer f.Close()
	end, err := wholeLinesEnd(f, size)
	if err != nil {
		return fmt.Errorf("accounts file store: backup: %s: %w", f.Name(), err)
	}
	return fn(RecordsFile{Name: auditFile, Size: end, Body: io.NewSectionReader(f, 0, end)})
}

// wholeLinesEnd is the offset just after the last newline of f's first
// size bytes (0 when there is none).
func wholeLinesEnd(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 4096)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// sendOthers gives the directory's other regular files, by name, leaving
// out temporary files of an interrupted rewrite.
func sendOthers(dir string, fn func(RecordsFile) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("accounts file store: backup: %w", err)
	}
	known := RecordsFileNames()
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || slices.Contains(known, name) || strings.HasSuffix(name, ".tmp") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err := sendWhole(name, data, err, fn); err != nil {
			return err
		}
	}
	return nil
}
