package recorder

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// playableLength walks the top-level boxes of a fragmented MP4 and returns
// the length up to the end of its last complete fragment (a moof followed
// by its mdat), and how many complete fragments there are. What follows
// (a fragment a crash cut short) is not playable.
func playableLength(r io.ReaderAt, size int64) (int64, int, error) {
	var (
		off, good int64
		frags     int
		sawInit   bool
		moof      bool
		hdr       [16]byte
	)
	for off+8 <= size {
		if _, err := r.ReadAt(hdr[:8], off); err != nil {
			return 0, 0, fmt.Errorf("box at %d: %w", off, err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		switch n {
		case 0: // to the end of the file: only an mdat cut short writes that
			n = size - off
		case 1:
			if off+16 > size {
				return good, frags, nil
			}
			if _, err := r.ReadAt(hdr[8:16], off+8); err != nil {
				return 0, 0, fmt.Errorf("box at %d: %w", off, err)
			}
			n = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if n < 8 || off+n > size {
			break // cut short
		}
		switch typ {
		case "moov":
			sawInit = true
			good = off + n
		case "moof":
			moof = true
		case "mdat":
			if moof && sawInit {
				frags++
				good = off + n
			}
			moof = false
		default:
			if !moof {
				if !sawInit {
					good = off + n // ftyp and the like before moov
				}
			}
		}
		off += n
	}
	if !sawInit {
		return 0, 0, nil
	}
	return good, frags, nil
}

// errNothingPlayable: a clip's file has no complete fragment.
var errNothingPlayable = errors.New("no complete fragment")

// repairClipFile truncates a clip's file after its last complete fragment
// and returns its size and SHA-256. It fails with errNothingPlayable when
// not one fragment is complete.
func repairClipFile(path string) (int64, string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, "", errNothingPlayable
		}
		return 0, "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	good, frags, err := playableLength(f, st.Size())
	if err != nil {
		return 0, "", err
	}
	if frags == 0 {
		return 0, "", errNothingPlayable
	}
	if good < st.Size() {
		if err := f.Truncate(good); err != nil {
			return 0, "", fmt.Errorf("truncate: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return 0, "", fmt.Errorf("sync: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, good)); err != nil {
		return 0, "", fmt.Errorf("hash: %w", err)
	}
	return good, hex.EncodeToString(h.Sum(nil)), nil
}
