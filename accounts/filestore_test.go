package accounts

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFileStoreConformance(t *testing.T) {
	testStore(t, func(t *testing.T) func() store {
		dir := filepath.Join(t.TempDir(), "accounts")
		return func() store {
			s, err := OpenFileStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

func openFile(t *testing.T, dir string) *FileStore {
	t.Helper()
	s, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendRaw(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

// TestFileStoreTornLine leaves the log as a crash in the middle of a write
// would: the torn line is skipped, and the next record is whole on a line
// of its own.
func TestFileStoreTornLine(t *testing.T) {
	dir := t.TempDir()
	s := openFile(t, dir)
	appendAll(t, s, sample()[:3])
	s.Close()
	path := filepath.Join(dir, auditFile)
	appendRaw(t, path, `{"time":"2026-03-01T08:10:00+08:00","user":"a","act`)

	s = openFile(t, dir)
	if got := details(query(t, s, AuditQuery{}).Records); got != "2,1,0" {
		t.Fatalf("with a torn last line: %s, want 2,1,0", got)
	}
	appendAll(t, s, sample()[3:5])
	if got := details(query(t, s, AuditQuery{}).Records); got != "4,3,2,1,0" {
		t.Errorf("after appending to a torn log: %s, want 4,3,2,1,0", got)
	}
	if got := strings.Join(pages(t, s, AuditQuery{Limit: 2}), "|"); got != "4,3|2,1|0" {
		t.Errorf("pages over the torn line: %s", got)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 6 || !strings.HasSuffix(lines[3], `"act`) {
		t.Errorf("log lines:\n%s", data)
	}
}

// TestFileStoreFailedWrite makes a write fail half-way, as a full disk
// would: the append fails, the half line is skipped, the next append works.
func TestFileStoreFailedWrite(t *testing.T) {
	dir := t.TempDir()
	s := openFile(t, dir)
	rs := sample()
	appendAll(t, s, rs[:2])
	s.write = func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		return n, errors.New("no space left on device")
	}
	if err := s.AppendAudit(context.Background(), rs[2]); err == nil {
		t.Fatal("failed write: no error")
	}
	s.write = (*os.File).Write
	appendAll(t, s, rs[3:5])
	if got := details(query(t, s, AuditQuery{}).Records); got != "4,3,1,0" {
		t.Errorf("after a failed write: %s, want 4,3,1,0", got)
	}
	if got := strings.Join(pages(t, s, AuditQuery{Limit: 1}), "|"); got != "4|3|1|0" {
		t.Errorf("pages after a failed write: %s, want 4|3|1|0", got)
	}
}

// TestFileStoreDamage checks that lines that are not records are skipped
// wherever they are, and that cursors must point at a line.
func TestFileStoreDamage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, auditFile)
	s := openFile(t, dir)
	rs := sample()
	appendAll(t, s, rs[:2])
	s.Close()
	appendRaw(t, path, "\n{}\nnot json\n{\"time\":\"yesterday\"}\n\x00\x00\x00\n")
	s = openFile(t, dir)
	appendAll(t, s, rs[2:4])
	if got := strings.Join(pages(t, s, AuditQuery{Limit: 1}), "|"); got != "3|2|1|0" {
		t.Errorf("pages over damaged lines: %s, want 3|2|1|0", got)
	}
	p := query(t, s, AuditQuery{Limit: 1})
	at, _ := strconv.Atoi(p.Next)
	for _, c := range []int{at - 1, at + 1} {
		_, err := s.QueryAudit(context.Background(), AuditQuery{Cursor: strconv.Itoa(c)})
		if !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %d inside a line: %v, want ErrBadCursor", c, err)
		}
	}
}

// TestFileStoreLongLog reads a log of lines longer than a read chunk and
// more chunks than one, in small pages.
func TestFileStoreLongLog(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	const n = 400
	for i := range n {
		r := AuditRecord{Time: base.Add(time.Duration(i) * time.Second), Action: "watch", Detail: fmt.Sprint(i)}
		if i%50 == 7 {
			r.Target = strings.Repeat("t", backChunk+100) // longer than a chunk
		} else {
			r.Target = strings.Repeat("t", 1500)
		}
		data, _ := json.Marshal(r)
		b.Write(data)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, auditFile), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openFile(t, dir)
	var got []string
	for _, p := range pages(t, s, AuditQuery{Limit: 7}) {
		if p != "" {
			got = append(got, strings.Split(p, ",")...)
		}
	}
	if len(got) != n {
		t.Fatalf("%d records, want %d", len(got), n)
	}
	for i, d := range got {
		if d != fmt.Sprint(n-1-i) {
			t.Fatalf("record %d is %s, want %d", i, d, n-1-i)
		}
	}
	if got := details(query(t, s, AuditQuery{From: base.Add(57 * time.Second), To: base.Add(58 * time.Second)}).Records); got != "57" {
		t.Errorf("the long record: %q", got)
	}
}

func TestFileStoreFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := openFile(t, dir)
	appendAll(t, s, sample()[:1])
	if err := s.SetPrefs(context.Background(), "Li", json.RawMessage(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{auditFile, prefsFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, st.Mode())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", st.Mode())
	}
	data, _ := os.ReadFile(filepath.Join(dir, prefsFile))
	if string(data) != "{\"li\":{\"a\":1}}\n" {
		t.Errorf("prefs.json: %s", data)
	}
	s.Close()

	// A rewrite cut short by a crash leaves a temporary file behind.
	tmp := filepath.Join(dir, prefsFile+".123.tmp")
	if err := os.WriteFile(tmp, []byte(`{"li":`), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openFile(t, dir)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	if p, _ := s.Prefs(context.Background(), "li"); string(p) != `{"a":1}` {
		t.Errorf("prefs %s", p)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("files %v, want %s, %s and %s", entries, auditFile, FormatFile, prefsFile)
	}
	s.Close()

	if err := os.WriteFile(filepath.Join(dir, prefsFile), []byte(`{"li":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(dir); err == nil || !strings.Contains(err.Error(), prefsFile) {
		t.Errorf("damaged prefs.json: %v", err)
	}
}

// BenchmarkFileStoreScan measures a query that reads a log of 100 000
// records (about 25 MB) to its start without finding anything.
func BenchmarkFileStoreScan(b *testing.B) {
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, auditFile))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	const n = 100_000
	var size int
	for i := range n {
		r := AuditRecord{
			Time: base.Add(time.Duration(i) * time.Second), User: "operator-" + fmt.Sprint(i%40), Role: "operator",
			Addr: "10.20.30.40:51234", Action: AuditWatch, Target: "camera:cam-" + fmt.Sprint(i%300), Outcome: "ok",
			Start: base, End: base.Add(time.Duration(i) * time.Second), Detail: "main stream",
		}
		data, _ := json.Marshal(r)
		size += len(data) + 1
		w.Write(data)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	s, err := OpenFileStore(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(int64(size))
	for b.Loop() {
		p, err := s.QueryAudit(context.Background(), AuditQuery{User: "nobody"})
		if err != nil || len(p.Records) != 0 {
			b.Fatal(p, err)
		}
	}
	b.ReportMetric(float64(size)/n, "bytes/record")
}
