package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Reading back what fmp4Writer wrote: top-level boxes, and in each moof
// what the index and exports need (track base times, durations, the first
// sample's sync flag), with the byte offsets of the fields an export
// rewrites. Only the box layout fmp4Writer (mediacommon) produces is read.

var errBadFile = errors.New("not a recording")

// maxMoofBytes bounds a moof read into memory (120 fps for a minute needs
// under 400 KB).
const maxMoofBytes = 4 << 20

// maxTrunSamples bounds the samples of one track run (a fragment of a
// second holds a few dozen).
const maxTrunSamples = 1 << 16

// fragInfo is one fragment (moof+mdat) of a file.
type fragInfo struct {
	off, size int64 // of moof+mdat in the file
	moofSize  int64
	seqOff    int64 // offset in the moof of mfhd's sequence number
	tracks    []trafInfo
}

type trafInfo struct {
	id       uint32
	base     uint64 // tfdt
	baseOff  int64  // offset in the moof of tfdt's base time (8 bytes)
	duration uint64 // sum of the sample durations
	sync     bool   // the first sample is a sync sample
	samples  int
}

// track returns the traf of track id, or nil.
func (f *fragInfo) track(id uint32) *trafInfo {
	for i := range f.tracks {
		if f.tracks[i].id == id {
			return &f.tracks[i]
		}
	}
	return nil
}

// fileScan is what scanFile found.
type fileScan struct {
	initSize int64 // ftyp+moov
	frags    []fragInfo
	valid    int64 // end of the last complete fragment (initSize when none)
}

// videoEnd returns the end of the file's last picture, in ticks from the
// file's start.
func (s *fileScan) videoEnd() (int64, bool) {
	for i := len(s.frags) - 1; i >= 0; i-- {
		if t := s.frags[i].track(1); t != nil {
			return int64(t.base + t.duration), true
		}
	}
	return 0, false
}

// boxHeader reads the box header at off: its size and type.
func boxHeader(r io.ReaderAt, off, limit int64) (size int64, typ string, hdr int64, err error) {
	var b [16]byte
	if off+8 > limit {
		return 0, "", 0, io.ErrUnexpectedEOF
	}
	if _, err := r.ReadAt(b[:8], off); err != nil {
		return 0, "", 0, err
	}
	size, typ, hdr = int64(binary.BigEndian.Uint32(b[:4])), string(b[4:8]), 8
	if size == 1 {
		if off+16 > limit {
			return 0, "", 0, io.ErrUnexpectedEOF
		}
		if _, err := r.ReadAt(b[8:16], off+8); err != nil {
			return 0, "", 0, err
		}
		size, hdr = int64(binary.BigEndian.Uint64(b[8:16])), 16
	}
	if size < hdr {
		return 0, "", 0, fmt.Errorf("%w: box %q of size %d", errBadFile, typ, size)
	}
	return size, typ, hdr, nil
}

// scanFile reads the boxes of a recording of length size: ftyp, moov, then
// moof+mdat pairs. It stops at the first incomplete or unexpected box
// (what a crash leaves); valid says how far the file is whole. It fails
// only when the init segment itself is not whole.
func scanFile(r io.ReaderAt, size int64) (fileScan, error) {
	var s fileScan
	off := int64(0)
	for _, want := range []string{"ftyp", "moov"} {
		n, typ, _, err := boxHeader(r, off, size)
		if err != nil || typ != want || off+n > size {
			return s, fmt.Errorf("%w: no %s", errBadFile, want)
		}
		off += n
	}
	s.initSize, s.valid = off, off
	for off < size {
		n, typ, _, err := boxHeader(r, off, size)
		if err != nil || typ != "moof" || n > maxMoofBytes || off+n > size {
			break
		}
		dn, dtyp, _, err := boxHeader(r, off+n, size)
		if err != nil || dtyp != "mdat" || off+n+dn > size {
			break
		}
		moof := make([]byte, n)
		if _, err := r.ReadAt(moof, off); err != nil {
			break
		}
		fi, err := parseMoof(moof)
		if err != nil {
			break
		}
		fi.off, fi.size, fi.moofSize = off, n+dn, n
		s.frags = append(s.frags, fi)
		off += n + dn
		s.valid = off
	}
	return s, nil
}

// parseMoof reads a moof box (whole, header included).
func parseMoof(b []byte) (fragInfo, error) {
	var fi fragInfo
	bad := func(what string) (fragInfo, error) {
		return fragInfo{}, fmt.Errorf("%w: moof: %s", errBadFile, what)
	}
	// children of moof start after its 8-byte header
	for off := 8; off+8 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		if n < 8 || off+n > len(b) {
			return bad("box size")
		}
		switch typ {
		case "mfhd":
			if n < 16 {
				return bad("mfhd")
			}
			fi.seqOff = int64(off + 12)
		case "traf":
			t, err := parseTraf(b[off:off+n], off)
			if err != nil {
				return fragInfo{}, err
			}
			fi.tracks = append(fi.tracks, t)
		}
		off += n
	}
	if fi.seqOff == 0 || len(fi.tracks) == 0 {
		return bad("no mfhd or traf")
	}
	return fi, nil
}

func parseTraf(b []byte, at int) (trafInfo, error) {
	var t trafInfo
	bad := func(what string) (trafInfo, error) {
		return trafInfo{}, fmt.Errorf("%w: traf: %s", errBadFile, what)
	}
	var defDur uint32
	var defFlags uint32
	haveTfdt := false
	for off := 8; off+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		if n < 12 || off+n > len(b) {
			return bad("box size")
		}
		ver := b[off+8]
		flags := binary.BigEndian.Uint32(b[off+8:]) & 0xffffff
		p := b[off+12 : off+n]
		switch typ {
		case "tfhd":
			if len(p) < 4 {
				return bad("tfhd")
			}
			t.id = binary.BigEndian.Uint32(p)
			q := p[4:]
			skip := func(k int) bool {
				if len(q) < k {
					return false
				}
				q = q[k:]
				return true
			}
			if flags&0x01 != 0 && !skip(8) {
				return bad("tfhd")
			}
			if flags&0x02 != 0 && !skip(4) {
				return bad("tfhd")
			}
			if flags&0x08 != 0 {
				if len(q) < 4 {
					return bad("tfhd")
				}
				defDur = binary.BigEndian.Uint32(q)
				q = q[4:]
			}
			if flags&0x10 != 0 && !skip(4) {
				return bad("tfhd")
			}
			if flags&0x20 != 0 {
				if len(q) < 4 {
					return bad("tfhd")
				}
				defFlags = binary.BigEndian.Uint32(q)
			}
		case "tfdt":
			if ver != 1 || len(p) < 8 {
				return bad("tfdt")
			}
			t.base = binary.BigEndian.Uint64(p)
			t.baseOff = int64(at + off + 12)
			haveTfdt = true
		case "trun":
			if len(p) < 4 {
				return bad("trun")
			}
			count := int(binary.BigEndian.Uint32(p))
			q := p[4:]
			if flags&0x01 != 0 {
				q = q[min(4, len(q)):]
			}
			first := defFlags
			if flags&0x04 != 0 {
				if len(q) < 4 {
					return bad("trun")
				}
				first = binary.BigEndian.Uint32(q)
				q = q[4:]
			}
			per := 0
			for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
				if flags&bit != 0 {
					per += 4
				}
			}
			if count < 0 || count > maxTrunSamples || count*per > len(q) {
				return bad("trun entries")
			}
			for i := 0; i < count; i++ {
				e := q[i*per:]
				d := defDur
				if flags&0x100 != 0 {
					d = binary.BigEndian.Uint32(e)
					e = e[4:]
				}
				if flags&0x200 != 0 {
					e = e[4:]
				}
				sf := defFlags
				if i == 0 && flags&0x04 != 0 {
					sf = first
				}
				if flags&0x400 != 0 {
					sf = binary.BigEndian.Uint32(e)
				}
				if i == 0 {
					t.sync = sf&0x10000 == 0
				}
				t.duration += uint64(d)
			}
			t.samples += count
		}
		off += n
	}
	if !haveTfdt || t.id == 0 {
		return bad("no tfhd or tfdt")
	}
	return t, nil
}
