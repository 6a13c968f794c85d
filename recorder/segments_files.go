package recorder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Segment files: {path}/segments/{camera}/{YYYY-MM-DD}/{start}.mp4 while
// written, renamed {start}_{ms}.mp4 when closed, where start is the UTC
// time of its first picture to the nanosecond (20261203T101500.040000000Z)
// and ms its length in milliseconds. Names sort by time; the index is
// rebuilt from names alone, except for a file left without a length by a
// crash, which is read, cut after its last whole fragment, and renamed.

const stampLayout = "20060102T150405.000000000"

// segmentName returns the file name of a segment; length < 0 for one
// still being written.
func segmentName(start time.Time, length time.Duration) string {
	n := start.UTC().Format(stampLayout) + "Z"
	if length >= 0 {
		n += "_" + strconv.FormatInt(length.Milliseconds(), 10)
	}
	return n + ".mp4"
}

// parseSegmentName reads a name segmentName made; length is -1 when the
// name has none.
func parseSegmentName(name string) (start time.Time, length time.Duration, ok bool) {
	base, found := strings.CutSuffix(name, ".mp4")
	if !found {
		return time.Time{}, 0, false
	}
	stamp, ms, hasLen := strings.Cut(base, "_")
	stamp, found = strings.CutSuffix(stamp, "Z")
	if !found {
		return time.Time{}, 0, false
	}
	start, err := time.ParseInLocation(stampLayout, stamp, time.UTC)
	if err != nil {
		return time.Time{}, 0, false
	}
	length = -1
	if hasLen {
		v, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || v < 0 || v > int64(24*time.Hour/time.Millisecond) {
			return time.Time{}, 0, false
		}
		length = time.Duration(v) * time.Millisecond
	}
	return start, length, true
}

// segmentPath returns where a segment of camera starting at start goes.
// With a node (Config.Node) a segment being written is named with it
// (openNodeMark), so that another node sharing the directory knows the
// file is not its own to repair or delete.
func (s *segments) segmentPath(camera string, start time.Time, length time.Duration) string {
	name := segmentName(start, length)
	if length < 0 && s.r.cfg.Node != "" {
		name = strings.TrimSuffix(name, ".mp4") + openNodeMark + s.r.cfg.Node + ".mp4"
	}
	return filepath.Join(s.dir, camera, start.UTC().Format("2006-01-02"), name)
}

// openNodeMark separates, in the name of a segment being written, the
// name from the node that writes it: 20260101T000000.000000000Z~sky-a.mp4.
const openNodeMark = "~"

// splitOpenNode takes the writer's node out of a segment's file name; ""
// when the name has none.
func splitOpenNode(name string) (plain, node string) {
	base, ok := strings.CutSuffix(name, ".mp4")
	if !ok {
		return name, ""
	}
	base, node, ok = strings.Cut(base, openNodeMark)
	if !ok {
		return name, ""
	}
	return base + ".mp4", node
}

// segmentFile is an open segment being written.
type segmentFile interface {
	io.Writer
	Sync() error
	Close() error
}

func openSegmentFile(name string) (segmentFile, error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if os.IsNotExist(err) {
		// Retention removed the day's directory when it emptied.
		if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// statfs returns the free space (for unprivileged users) and the size of
// the file system that holds path.
func statfs(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// load rebuilds the index from the disk. A file that is not a segment is
// left alone (and logged); a segment cut short by a crash is repaired, or
// removed when nothing in it plays.
func (s *segments) load() error {
	camDirs, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("recordings.path: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cd := range camDirs {
		if !cd.IsDir() || !validCameraDir(cd.Name()) {
			continue
		}
		cam := cd.Name()
		days, err := os.ReadDir(filepath.Join(s.dir, cam))
		if err != nil {
			s.r.logger.Warn("cannot read a camera's segments", "camera", cam, "error", err)
			continue
		}
		ci := s.cam(cam)
		for _, day := range days {
			dir := filepath.Join(s.dir, cam, day.Name())
			if !day.IsDir() {
				continue
			}
			files, err := os.ReadDir(dir)
			if err != nil {
				s.r.logger.Warn("cannot read a camera's segments", "camera", cam, "error", err)
				continue
			}
			for _, f := range files {
				if seg := s.loadFile(cam, dir, f); seg != nil {
					ci.segs = append(ci.segs, seg)
					ci.bytes += seg.bytes
				}
			}
		}
		sort.Slice(ci.segs, func(i, j int) bool { return ci.segs[i].start.Before(ci.segs[j].start) })
	}
	return nil
}

func validCameraDir(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (s *segments) loadFile(cam, dir string, f os.DirEntry) *segment {
	name := filepath.Join(dir, f.Name())
	plain, node := splitOpenNode(f.Name())
	if node != "" && node != s.r.cfg.Node {
		// Another node is writing it, or was when it died: that node
		// repairs it when it starts again. Never touch it here.
		s.r.logger.Debug("skipping a segment another node writes", "camera", cam, "file", f.Name(), "node", node)
		return nil
	}
	start, length, ok := parseSegmentName(plain)
	if !ok || !f.Type().IsRegular() {
		s.r.logger.Warn("skipping a file that is not a segment", "camera", cam, "file", f.Name())
		return nil
	}
	info, err := f.Info()
	if err != nil {
		return nil
	}
	if length >= 0 {
		return &segment{path: name, start: start, end: start.Add(length), bytes: info.Size()}
	}
	seg, err := repairSegment(name, start, info.Size())
	if err != nil {
		s.r.logger.Warn("skipping a segment that cannot be repaired", "camera", cam, "file", f.Name(), "error", err)
		return nil
	}
	if seg == nil {
		s.r.logger.Info("removed a segment with nothing playable in it", "camera", cam, "file", f.Name())
		return nil
	}
	s.r.logger.Info("repaired a segment left open", "camera", cam, "file", filepath.Base(seg.path),
		"kept_bytes", seg.bytes, "cut_bytes", info.Size()-seg.bytes)
	return seg
}

// repairSegment cuts a segment left open after its last whole fragment,
// and renames it with its length. A segment without a whole fragment is
// removed (nil, nil).
func repairSegment(name string, start time.Time, size int64) (*segment, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	scan, err := scanFile(f, size)
	if err != nil || len(scan.frags) == 0 {
		f.Close()
		if rmErr := os.Remove(name); rmErr != nil {
			return nil, rmErr
		}
		return nil, nil
	}
	if scan.valid < size {
		if err := f.Truncate(scan.valid); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	endTicks, ok := scan.videoEnd()
	if !ok {
		return nil, errors.New("no video track")
	}
	end := start.Add(ticksToDuration(endTicks, videoTimescale))
	final := filepath.Join(filepath.Dir(name), segmentName(start, end.Sub(start)))
	if err := os.Rename(name, final); err != nil {
		return nil, err
	}
	return &segment{path: final, start: start, end: end, bytes: scan.valid}, nil
}
