package recorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Evidence on disk: {path}/evidence/{incident}/{camera}.mp4 with its
// sidecar {camera}.json beside it. The incident's directory name is its ID
// with every byte outside [A-Za-z0-9_-] written %XX, so that no ID can
// climb out of the directory or name a hidden file; the sidecar holds the
// real ID.

// evidenceDir is the directory under recordings.path.
const evidenceDir = "evidence"

// maxIncidentID bounds the incident IDs the recorder takes (the engine's
// are about 30 bytes).
const maxIncidentID = 200

// incidentDirName escapes an incident ID into one path element.
func incidentDirName(id string) (string, error) {
	if id == "" || len(id) > maxIncidentID {
		return "", fmt.Errorf("incident id of %d bytes (1 to %d)", len(id), maxIncidentID)
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String(), nil
}

// validCameraID tells whether a camera ID can be a file name (ingest
// allows [A-Za-z0-9._-]; "." and ".." are refused here as well).
func validCameraID(id string) bool {
	if id == "" || id == "." || id == ".." || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// clipPaths are a clip's two files.
type clipPaths struct{ dir, mp4, sidecar string }

func (e *evidence) paths(incident, camera string) (clipPaths, error) {
	name, err := incidentDirName(incident)
	if err != nil {
		return clipPaths{}, err
	}
	if !validCameraID(camera) {
		return clipPaths{}, fmt.Errorf("camera id %q cannot name a file", camera)
	}
	dir := filepath.Join(e.root, name)
	return clipPaths{dir: dir, mp4: filepath.Join(dir, camera+".mp4"), sidecar: filepath.Join(dir, camera+".json")}, nil
}

// sidecar is what the JSON file beside a clip holds: the clip, and how far
// its file was written (flushed) while it was recording, which is its end
// if a crash cuts it short.
type sidecar struct {
	Clip
	Written time.Time `json:"written,omitzero"`
	// Node is the cluster node that writes the clip (Config.Node), ""
	// for one node: only it repairs the clip after a crash.
	Node string `json:"node,omitempty"`
}

// writeSidecar replaces a clip's sidecar atomically (a temporary file
// renamed over it), synced when sync is set (a clip's final state).
func writeSidecar(path string, sc sidecar, sync bool) error {
	data, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("sidecar: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("sidecar: %w", err)
	}
	if sync {
		syncDir(filepath.Dir(path))
	}
	return nil
}

// maxSidecar bounds what is read of a sidecar: they are a few hundred
// bytes.
const maxSidecar = 64 << 10

// readSidecar reads one sidecar; the error says what is wrong with it.
func readSidecar(path string) (sidecar, error) {
	var sc sidecar
	st, err := os.Stat(path)
	if err != nil {
		return sc, err
	}
	if st.Size() > maxSidecar {
		return sc, fmt.Errorf("%d bytes", st.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return sc, err
	}
	if err := json.Unmarshal(data, &sc); err != nil {
		return sc, err
	}
	if sc.Incident == "" || !validCameraID(sc.Camera) || sc.ID != sc.Camera {
		return sc, errors.New("incident or camera missing or invalid")
	}
	switch sc.Status {
	case ClipRecording, ClipComplete, ClipFailed:
	default:
		return sc, fmt.Errorf("status %q", sc.Status)
	}
	return sc, nil
}

// foreignClips reads the incident's clips that other nodes of a cluster
// wrote into the shared directory: they are read, never written, here.
// Their writer keeps their sidecars up to date, and repairs them after a
// crash when it starts again; a clip whose writer is gone for good stays
// as its last sidecar says, and plays as far as its file was written.
func (e *evidence) foreignClips(incident string) []*clipRecord {
	name, err := incidentDirName(incident)
	if err != nil {
		return nil
	}
	dir := filepath.Join(e.root, name)
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []*clipRecord
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".json") {
			continue
		}
		sc, err := readSidecar(filepath.Join(dir, f.Name()))
		if err != nil || sc.Incident != incident || sc.Node == e.r.cfg.Node {
			continue
		}
		p, err := e.paths(sc.Incident, sc.Camera)
		if err != nil {
			continue
		}
		rec := &clipRecord{Clip: sc.Clip, written: sc.Written, paths: p, node: sc.Node}
		if sc.Status == ClipRecording {
			if st, err := os.Stat(p.mp4); err == nil {
				rec.Bytes = st.Size()
			}
		}
		out = append(out, rec)
	}
	return out
}
