package viewer

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/skywatch/skywatch/ingest"
)

// cameraJSON is a camera as the API shows it. It is built field by field
// from ingest's state, so that nothing else (a URL, a credential) can slip
// into a response.
type cameraJSON struct {
	ID     string     `json:"id"`
	Name   string     `json:"name"`
	Area   string     `json:"area,omitempty"`
	Lat    float64    `json:"lat"`
	Lon    float64    `json:"lon"`
	Status string     `json:"status"`
	Since  *time.Time `json:"since,omitempty"`
	// LastErrorCode says why the main stream's last session failed
	// (ingest.Reasons: unreachable, timeout, auth, not_found, unsupported,
	// other; "" if none), and LastError says it in plain English. The
	// detail, which may name the camera's address, is only in the log.
	LastErrorCode string      `json:"last_error_code"`
	LastError     string      `json:"last_error"`
	Tracks        []trackJSON `json:"tracks"`
	BitrateKbps   float64     `json:"bitrate_kbps"`
	FrameRate     float64     `json:"frame_rate"`
	Viewers       int         `json:"viewers"`
	Reconnects    uint64      `json:"reconnects"`
	Dropped       uint64      `json:"dropped"`
	// Sub tells that the camera has a sub stream (POST /whep/{id}?stream=sub).
	Sub bool `json:"sub"`
	// SubStatus and SubViewers are the sub stream's state and viewers
	// ("" and 0 without one): a wall plays the sub stream while the main
	// one may be idle.
	SubStatus  string `json:"sub_status,omitempty"`
	SubViewers int    `json:"sub_viewers,omitempty"`
	// SubLastErrorCode is LastErrorCode of the sub stream.
	SubLastErrorCode string `json:"sub_last_error_code,omitempty"`
	// HeldUntil is when the hold of an alarm's warm-up ends (on either
	// stream); absent when none holds the camera.
	HeldUntil *time.Time `json:"held_until,omitempty"`
	// Recording is the camera's recording status; absent when it records
	// nothing.
	Recording *recordingJSON `json:"recording,omitempty"`
	// Node is, in a cluster, the node that pulls the camera (its state is
	// that node's); absent on a single node or when no node pulls it.
	Node string `json:"node,omitempty"`
}

type trackJSON struct {
	Kind      string `json:"kind"`
	Codec     string `json:"codec"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	ClockRate int    `json:"clock_rate"`
}

func cameraToJSON(c ingest.CameraState) cameraJSON {
	j := cameraJSON{
		ID:            c.ID,
		Name:          c.Name,
		Status:        string(c.Status),
		LastErrorCode: string(c.Reason),
		LastError:     c.Reason.Text(),
		Tracks:        make([]trackJSON, 0, len(c.Tracks)),
		BitrateKbps:   roundTo(c.BitrateKbps, 1),
		FrameRate:     roundTo(c.FrameRate, 2),
		Viewers:       c.Viewers,
		Reconnects:    c.Reconnects,
		Dropped:       c.Dropped,
		Sub:           c.Sub != nil,
		Node:          c.Node,
	}
	if !c.Since.IsZero() {
		since := c.Since.UTC()
		j.Since = &since
	}
	for _, t := range c.Tracks {
		j.Tracks = append(j.Tracks, trackJSON{
			Kind:      string(t.Kind),
			Codec:     t.Codec,
			Width:     t.Width,
			Height:    t.Height,
			ClockRate: t.ClockRate,
		})
	}
	if c.Sub != nil {
		j.SubStatus, j.SubViewers, j.SubLastErrorCode = string(c.Sub.Status), c.Sub.Viewers, string(c.Sub.Reason)
	}
	held := c.Held
	if c.Sub != nil && c.Sub.Held.After(held) {
		held = c.Sub.Held
	}
	if held.After(time.Now()) {
		h := held.UTC()
		j.HeldUntil = &h
	}
	return j
}

// roundTo rounds v to the given number of decimals, for readable JSON.
func roundTo(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// handleCameras lists every camera as a JSON array, sorted by id.
func (s *Server) handleCameras(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	states := s.deps.Cameras.Cameras()
	list := make([]cameraJSON, 0, len(states))
	for _, c := range states {
		if !s.cameraVisible(p, c.ID) {
			continue
		}
		list = append(list, s.placed(cameraToJSON(c)))
	}
	slices.SortFunc(list, func(a, b cameraJSON) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, list)
}

// handleCamera shows one camera; 404 when unknown.
func (s *Server) handleCamera(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.cameraVisible(principalOf(r.Context()), id) {
		s.denyCamera(w, r, id)
		return
	}
	c, err := s.deps.Cameras.Camera(id)
	if err != nil {
		if errors.Is(err, ingest.ErrUnknownCamera) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("unknown camera %q", id))
			return
		}
		s.logger.Warn("camera state", "camera", id, "err", redactURLs(err.Error()))
		writeError(w, http.StatusInternalServerError, "could not read the camera's state")
		return
	}
	writeJSON(w, http.StatusOK, s.placed(cameraToJSON(c)))
}

// placed adds the camera's configured area and position.
func (s *Server) placed(j cameraJSON) cameraJSON {
	pl := s.place(j.ID)
	j.Area, j.Lat, j.Lon = pl.Area, pl.Lat, pl.Lon
	j.Recording = s.recordingOf(j.ID)
	return j
}
