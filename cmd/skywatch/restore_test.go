package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rewriteArchive copies a plain tar archive, letting edit change each
// file's content (by name).
func rewriteArchive(t *testing.T, in, out string, edit func(name string, data []byte) []byte) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	tr, tw := tar.NewReader(f), tar.NewWriter(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		data = edit(hdr.Name, data)
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefuses checks what restore will not do: overwrite a store or
// a records directory, restore a damaged archive or one of a newer format,
// or run beside a server. Each refusal writes nothing.
func TestRestoreRefuses(t *testing.T) {
	dir := t.TempDir()
	path := seedStopped(t, dir, 5)
	good := filepath.Join(dir, "b.tar")
	if code, msg := runCmd("backup", "-config", path, "-out", good); code != 0 {
		t.Fatalf("backup: %s", msg)
	}
	damaged := filepath.Join(dir, "damaged.tar")
	rewriteArchive(t, good, damaged, func(name string, data []byte) []byte {
		if name == archiveStore {
			data[len(data)/2] ^= 0xff
		}
		return data
	})
	newer := func(field string) string {
		out := filepath.Join(dir, "newer-"+field+".tar")
		rewriteArchive(t, good, out, func(name string, data []byte) []byte {
			if name != archiveMeta {
				return data
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			switch field {
			case "archive":
				m["archive_version"] = archiveVersion + 1
			default:
				m["formats"].(map[string]any)[field] = 99
			}
			data, _ = json.Marshal(m)
			return data
		})
		return out
	}
	truncated := filepath.Join(dir, "truncated.tar")
	data, _ := os.ReadFile(good)
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		prepare func(dir string)
		in      string
		want    string
	}{
		{"store exists", func(d string) { os.WriteFile(filepath.Join(d, "alarms.db"), nil, 0o600) }, good, "store.path " + "%s/alarms.db exists"},
		{"records not empty", func(d string) {
			os.MkdirAll(filepath.Join(d, defaultRecordsDir), 0o700)
			os.WriteFile(filepath.Join(d, defaultRecordsDir, "audit.jsonl"), []byte("x\n"), 0o600)
		}, good, "store.records_dir %s/" + defaultRecordsDir + " is not empty"},
		{"damaged", nil, damaged, "store.db: checksum mismatch"},
		{"truncated", nil, truncated, "truncated.tar"},
		{"newer store", nil, newer("store"), "store format 99, this Skywatch reads up to"},
		{"newer records", nil, newer("records"), "records format 99"},
		{"newer archive", nil, newer("archive"), "archive format 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			p := writeServeConfig(t, d, "")
			if tc.prepare != nil {
				tc.prepare(d)
			}
			before := listTree(t, d)
			code, msg := runCmd("restore", "-config", p, "-in", tc.in)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, d)
			}
			if code != 1 || !strings.Contains(msg, want) {
				t.Fatalf("restore: exit %d, want 1 and %q in:\n%s", code, want, msg)
			}
			if after := listTree(t, d); after != before {
				t.Errorf("a refused restore changed the directory:\nbefore %s\nafter  %s", before, after)
			}
			t.Log(strings.TrimSpace(msg))
		})
	}

	t.Run("server running", func(t *testing.T) {
		d := t.TempDir()
		p := writeServeConfig(t, d, "")
		srv := startServing(t, p)
		defer srv.stop()
		code, msg := runCmd("restore", "-config", p, "-in", good)
		if code != 1 || !strings.Contains(msg, "answers on "+filepath.Join(d, defaultControlSocket)+": stop it first") {
			t.Fatalf("restore beside a server: %d\n%s", code, msg)
		}
	})
}

// listTree names the files under dir with their sizes.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%d ", strings.TrimPrefix(p, dir), info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
