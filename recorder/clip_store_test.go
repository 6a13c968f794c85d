package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIncidentDirName(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"inc-20260101-0123abcd", "inc-20260101-0123abcd"},
		{"../../etc", "%2E%2E%2F%2E%2E%2Fetc"},
		{".hidden", "%2Ehidden"},
		{"a/b\\c\x00", "a%2Fb%5Cc%00"},
		{"100%", "100%25"},
	} {
		got, err := incidentDirName(tc.id)
		if err != nil || got != tc.want {
			t.Errorf("incidentDirName(%q) = %q, %v; want %q", tc.id, got, err, tc.want)
		}
		if strings.ContainsAny(got, "/\\\x00") || strings.HasPrefix(got, ".") {
			t.Errorf("incidentDirName(%q) = %q is not one safe path element", tc.id, got)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", maxIncidentID+1)} {
		if _, err := incidentDirName(id); err == nil {
			t.Errorf("incidentDirName of %d bytes: no error", len(id))
		}
	}
	for _, id := range []string{"", ".", "..", "a/b", "a b"} {
		if validCameraID(id) {
			t.Errorf("validCameraID(%q) = true", id)
		}
	}
}

// TestRepairClipFile cuts a clip written by the muxer at every kind of
// place a crash can leave it, and checks that the repair keeps exactly the
// complete fragments, hashes them, and says how long they last.
func TestRepairClipFile(t *testing.T) {
	dir := t.TempDir()
	clip := loadTestClip(t, "gop1s")
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	feed := newUnitFeed(t, clip, start, true)
	var buf bytes.Buffer
	var clk unitClock
	tracks := clip.tracks(true)
	w, err := newFMP4Writer(&buf, tracks, start)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int // file length after each fragment
	for buf.Len() == 0 || len(ends) < 4 {
		n := buf.Len()
		u := feed.next(t)
		if err := w.write(u, clk.at(u, tracks)); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != n && n > 0 {
			ends = append(ends, buf.Len())
		}
	}
	whole := buf.Bytes()[:ends[2]]
	for _, tc := range []struct {
		name string
		cut  int
		want int
	}{
		{"complete", ends[2], ends[2]},
		{"cut in an mdat", ends[2] - 10, ends[1]},
		{"cut after a moof header", ends[1] + 9, ends[1]},
		{"cut in a box header", ends[1] + 4, ends[1]},
		{"init only", ends[0] - 1, 0},
	} {
		path := filepath.Join(dir, tc.name+".mp4")
		if err := os.WriteFile(path, whole[:tc.cut], 0o600); err != nil {
			t.Fatal(err)
		}
		size, sum, length, err := repairClipFile(path)
		if tc.want == 0 {
			if err != errNothingPlayable {
				t.Errorf("%s: %d %v, want errNothingPlayable", tc.name, size, err)
			}
			continue
		}
		if err != nil || size != int64(tc.want) {
			t.Errorf("%s: size %d %v, want %d", tc.name, size, err, tc.want)
			continue
		}
		data, _ := os.ReadFile(path)
		h := sha256.Sum256(data)
		if len(data) != tc.want || sum != hex.EncodeToString(h[:]) {
			t.Errorf("%s: file %d bytes, hash %s; want %d bytes hashing to %s", tc.name, len(data), sum, tc.want, hex.EncodeToString(h[:]))
		}
		if length < 500*time.Millisecond || length > 3*time.Second {
			t.Errorf("%s: %s of video", tc.name, length)
		}
	}
	for _, data := range [][]byte{nil, bytes.Repeat([]byte{0xff}, 64)} {
		path := filepath.Join(dir, "bad.mp4")
		_ = os.WriteFile(path, data, 0o600)
		if _, _, _, err := repairClipFile(path); err != errNothingPlayable {
			t.Errorf("%d bytes of garbage: %v", len(data), err)
		}
	}
	if _, _, _, err := repairClipFile(filepath.Join(dir, "missing.mp4")); err != errNothingPlayable {
		t.Errorf("missing file: %v", err)
	}
}
