package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckRecordingKeysAgainstTheDisk(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "a-file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, recordings string
		code             int
		want             string
	}{
		{"fine", "path: " + filepath.Join(dir, "new", "recordings"), 0, "warning: cameras[0].record_stream: camera cam1 has no sub stream"},
		{"path is a file", "path: " + notDir, 1, "recordings.path: "},
		{"max_bytes beyond the disk", "path: " + dir + "\n  max_bytes: 1000TB", 1, "recordings.max_bytes: "},
		{"min_free beyond the disk", "path: " + dir + "\n  min_free: 1000TB", 1, "recordings.min_free: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := "users:\n  - username: admin\n    role: admin\n    password_hash: \"$2a$10$.v/Mam3EQQ0ngqX4ZWn2Culr875hoO/NelOAFE5nUct5xoNKdkszS\"\n" +
				"cameras:\n  - id: cam1\n    url: rtsp://192.0.2.1/live\n    record: always\n    record_stream: sub\nrecordings:\n  " + tc.recordings + "\n"
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"check", "-config", path}, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", code, tc.code, out.String(), errOut.String(), tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Errorf("check created the recordings path: %v", err)
	}
}
