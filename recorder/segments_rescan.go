package recorder

import (
	"os"
	"path/filepath"
	"sort"
	"time"
)

// rescanEvery is how often, in a cluster (Config.Node set), a node looks
// in the shared directory for the segments other nodes closed since: the
// recordings of a camera that moved between nodes then form one timeline
// on every node.
const rescanEvery = time.Minute

// rescan adds to the index the segments that other nodes closed in the
// directories of today and yesterday (UTC) of the recorded cameras: a
// camera's recordings follow its owner, and the playback API of any node
// should show them all. Older days are not listed again (a large archive
// on a network file system is slow to list); they are in the index from
// the start. Open segments are never added, and nothing is removed: a
// segment another node's retention deleted leaves the index when this
// node's retention reaches it.
func (s *segments) rescan() {
	now := s.now().UTC()
	days := []string{now.Format("2006-01-02"), now.Add(-24 * time.Hour).Format("2006-01-02")}
	type found struct {
		cam string
		seg *segment
	}
	var candidates []found
	s.mu.Lock()
	cams := make([]string, 0, len(s.index))
	for id := range s.index {
		cams = append(cams, id)
	}
	s.mu.Unlock()
	for _, cam := range cams {
		for _, day := range days {
			dir := filepath.Join(s.dir, cam, day)
			files, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, f := range files {
				if _, node := splitOpenNode(f.Name()); node != "" || !f.Type().IsRegular() {
					continue
				}
				start, length, ok := parseSegmentName(f.Name())
				if !ok || length < 0 {
					continue
				}
				candidates = append(candidates, found{cam, &segment{path: filepath.Join(dir, f.Name()),
					start: start, end: start.Add(length)}})
			}
		}
	}
	if len(candidates) == 0 {
		return
	}
	s.mu.Lock()
	known := make(map[string]bool)
	for _, cam := range cams {
		if ci := s.index[cam]; ci != nil {
			for _, seg := range ci.segs {
				known[seg.path] = true
			}
		}
	}
	var fresh []found
	for _, c := range candidates {
		if !known[c.seg.path] {
			fresh = append(fresh, c)
		}
	}
	s.mu.Unlock()
	if len(fresh) == 0 {
		return
	}
	// Sizes (and existence: a file may have gone meanwhile) outside the
	// lock: a network file system may be slow to answer.
	var add []found
	for _, c := range fresh {
		st, err := os.Stat(c.seg.path)
		if err != nil {
			continue
		}
		c.seg.bytes = st.Size()
		add = append(add, c)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	touched := map[string]bool{}
	for _, c := range add {
		ci := s.cam(c.cam)
		dup := false
		for _, seg := range ci.segs {
			if seg.path == c.seg.path {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		ci.segs = append(ci.segs, c.seg)
		ci.bytes += c.seg.bytes
		touched[c.cam] = true
	}
	for cam := range touched {
		segs := s.index[cam].segs
		sort.SliceStable(segs, func(i, j int) bool { return segs[i].start.Before(segs[j].start) })
	}
}
