package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// errNothingPlayable: a clip's file has no complete fragment.
var errNothingPlayable = errors.New("no complete fragment")

// repairClipFile truncates a clip's file after its last complete fragment
// (what a crash leaves after it is not playable) and returns its size,
// SHA-256 and how long its video lasts from the file's time 0. It fails
// with errNothingPlayable when not one fragment is complete.
func repairClipFile(path string) (int64, string, time.Duration, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, "", 0, errNothingPlayable
		}
		return 0, "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, "", 0, err
	}
	scan, err := scanFile(f, st.Size())
	if errors.Is(err, errBadFile) || err == nil && len(scan.frags) == 0 {
		return 0, "", 0, errNothingPlayable
	}
	if err != nil {
		return 0, "", 0, err
	}
	if scan.valid < st.Size() {
		if err := f.Truncate(scan.valid); err != nil {
			return 0, "", 0, fmt.Errorf("truncate: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return 0, "", 0, fmt.Errorf("sync: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, scan.valid)); err != nil {
		return 0, "", 0, fmt.Errorf("hash: %w", err)
	}
	endTicks, _ := scan.videoEnd()
	return scan.valid, hex.EncodeToString(h.Sum(nil)), ticksToDuration(endTicks, videoTimescale), nil
}
