package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

func mp4Box(typ string, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
	return append(append(b, typ...), payload...)
}

func TestRepairClipFile(t *testing.T) {
	dir := t.TempDir()
	init := append(mp4Box("ftyp", []byte("isom")), mp4Box("moov", make([]byte, 20))...)
	frag := append(mp4Box("moof", make([]byte, 16)), mp4Box("mdat", bytes.Repeat([]byte{7}, 100))...)
	whole := append(append(append([]byte{}, init...), frag...), frag...)
	for _, tc := range []struct {
		name  string
		data  []byte
		size  int
		frags bool
	}{
		{"complete", whole, len(whole), true},
		{"cut in an mdat", whole[:len(whole)-10], len(init) + len(frag), true},
		{"cut after a moof", whole[:len(init)+len(frag)+24], len(init) + len(frag), true},
		{"cut in a box header", whole[:len(init)+len(frag)+4], len(init) + len(frag), true},
		{"init only", init, 0, false},
		{"cut in the init", init[:len(init)-3], 0, false},
		{"empty", nil, 0, false},
		{"garbage", bytes.Repeat([]byte{0xff}, 64), 0, false},
	} {
		path := filepath.Join(dir, tc.name+".mp4")
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		size, sum, err := repairClipFile(path)
		if !tc.frags {
			if err != errNothingPlayable {
				t.Errorf("%s: %d %v, want errNothingPlayable", tc.name, size, err)
			}
			continue
		}
		if err != nil || size != int64(tc.size) {
			t.Errorf("%s: size %d %v, want %d", tc.name, size, err, tc.size)
			continue
		}
		data, _ := os.ReadFile(path)
		h := sha256.Sum256(data)
		if len(data) != tc.size || sum != hex.EncodeToString(h[:]) {
			t.Errorf("%s: file %d bytes, hash %s; want %d bytes hashing to %s", tc.name, len(data), sum, tc.size, hex.EncodeToString(h[:]))
		}
	}
	if _, _, err := repairClipFile(filepath.Join(dir, "missing.mp4")); err != errNothingPlayable {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzPlayableLength(f *testing.F) {
	f.Add(append(mp4Box("moov", nil), append(mp4Box("moof", nil), mp4Box("mdat", []byte{1})...)...))
	f.Add([]byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		n, _, err := playableLength(bytes.NewReader(data), int64(len(data)))
		if err == nil && (n < 0 || n > int64(len(data))) {
			t.Fatalf("length %d of %d bytes", n, len(data))
		}
	})
}
