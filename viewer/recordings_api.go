package viewer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skywatch/skywatch/alarms"
	rec "github.com/skywatch/skywatch/recorder"
)

// Bounds of the playback API.
const (
	// defaultSpansWindow is the span listing's range when from is not
	// given: the last day.
	defaultSpansWindow = 24 * time.Hour
	// maxSpansWindow bounds the range one span listing may ask for: a
	// month, the usual retention.
	maxSpansWindow = 31 * 24 * time.Hour
	// maxSpans bounds the spans of one listing (a camera that dropped
	// every few seconds for a month); past it the answer says truncated.
	maxSpans = 10000
	// exportWriteTimeout bounds each write of an MP4 to its client. It
	// replaces the server's WriteTimeout, which would cut a long export,
	// and still frees the export's slot when the client stops reading.
	exportWriteTimeout = 60 * time.Second
	// exportHashTimeout bounds the pass that hashes a download before its
	// first byte is sent (30 minutes of video read from disk).
	exportHashTimeout = 10 * time.Minute
	// maxClipIDLen bounds the IDs of an incident and a clip as a clip's
	// URL names them.
	maxClipIDLen = 128
)

// Headers of an MP4 answer.
const (
	// headerSHA256 is the hex SHA-256 of the body, sent before it with
	// download=1 (the console shows it; crypto.subtle is missing on plain
	// HTTP, where command centres' closed networks often run).
	headerSHA256 = "X-Content-SHA256"
	// headerStart and headerEnd are the wall-clock times (RFC 3339) of the
	// MP4's time 0 and of its end: the keyframe at or before the asked
	// start, and the end of the last sample.
	headerStart = "X-Recording-Start"
	headerEnd   = "X-Recording-End"
)

// recordingRoutes registers the playback API. Without a recorder the routes
// still exist and answer 503.
func (s *Server) recordingRoutes(mux *http.ServeMux) {
	have := s.deps.Recordings != nil
	mux.HandleFunc("GET /api/cameras/{id}/recordings", needDep(have, "recorder", s.handleRecordings))
	mux.HandleFunc("GET /api/cameras/{id}/video.mp4", needDep(have, "recorder", s.handleVideo))
	mux.HandleFunc("GET /api/incidents/{id}/clips/{clip}",
		needDep(have && s.deps.Incidents != nil, "recorder", s.handleClip))
}

// recordingJSON is a camera's recording status in /api/cameras.
type recordingJSON struct {
	Record string `json:"record"`
	// State is recording, waiting, stopped or off; Reason says why it
	// stopped.
	State  string     `json:"state"`
	Reason string     `json:"reason,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
	Oldest *time.Time `json:"oldest,omitempty"`
}

// recordingOf is the camera's recording status, nil when it records
// nothing or there is no recorder.
func (s *Server) recordingOf(camera string) *recordingJSON {
	if s.deps.Recordings == nil {
		return nil
	}
	st, err := s.deps.Recordings.Status(camera)
	if err != nil {
		return nil
	}
	j := &recordingJSON{Record: st.Record, State: st.State, Reason: redactURLs(st.Reason)}
	if !st.Since.IsZero() {
		t := st.Since.UTC()
		j.Since = &t
	}
	if !st.Oldest.IsZero() {
		t := st.Oldest.UTC()
		j.Oldest = &t
	}
	return j
}

// spansJSON answers GET /api/cameras/{id}/recordings.
type spansJSON struct {
	Camera string         `json:"camera"`
	From   time.Time      `json:"from"`
	To     time.Time      `json:"to"`
	Spans  []rec.Span     `json:"spans"`
	Status *recordingJSON `json:"status,omitempty"`
	// MaxExportS is recordings.max_export in seconds: the longest span
	// video.mp4 serves at once.
	MaxExportS float64 `json:"max_export_s"`
	// Truncated says that there were more than maxSpans spans: ask again
	// from the last one's end.
	Truncated bool `json:"truncated,omitempty"`
}

// handleRecordings lists the spans a camera was recorded in [from, to]
// (RFC 3339; to defaults to now, from to a day before to; at most 31 days).
func (s *Server) handleRecordings(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("id")
	if !s.cameraVisible(principalOf(r.Context()), camera) {
		s.denyCamera(w, r, camera)
		return
	}
	q := r.URL.Query()
	to, err := parseRFC3339(q, "to", time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	from, err := parseRFC3339(q, "from", to.Add(-defaultSpansWindow))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case !to.After(from):
		writeError(w, http.StatusBadRequest, "to: must be after from")
		return
	case to.Sub(from) > maxSpansWindow:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("from, to: at most %d days at once", int(maxSpansWindow/(24*time.Hour))))
		return
	}
	spans, err := s.deps.Recordings.Spans(camera, from, to)
	if err != nil {
		s.recordingError(w, r, camera, err)
		return
	}
	out := spansJSON{Camera: camera, From: from.UTC(), To: to.UTC(), Spans: make([]rec.Span, 0, min(len(spans), maxSpans)),
		Status: s.recordingOf(camera), MaxExportS: s.deps.Recordings.MaxExport().Seconds()}
	for i, sp := range spans {
		if i == maxSpans {
			out.Truncated = true
			break
		}
		out.Spans = append(out.Spans, rec.Span{Start: sp.Start.UTC(), End: sp.End.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

// parseRFC3339 reads query parameter key as an RFC 3339 time; def when
// absent.
func parseRFC3339(q url.Values, key string, def time.Time) (time.Time, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.Year() < 2000 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time (2026-01-02T15:04:05Z)", key, clipID(v))
	}
	return t, nil
}

// parseDownload reads download: 1 or true asks for an attachment.
func parseDownload(q url.Values) (bool, error) {
	switch q.Get("download") {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, errors.New("download: must be 1 or 0")
}

// recordingError answers an error of the recorder: 404 for a camera that
// does not record or a span with nothing in it, 400 for a bad span, 503
// when the recorder cannot answer. Never a 500: a recorder's fault is the
// disk's, and the server goes on.
func (s *Server) recordingError(w http.ResponseWriter, r *http.Request, camera string, err error) {
	switch {
	case r.Context().Err() != nil:
		return // the client went away
	case errors.Is(err, rec.ErrBadSpan):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, rec.ErrUnknownCamera):
		writeError(w, http.StatusNotFound, fmt.Sprintf("camera %q is not recorded", clipID(camera)))
	case errors.Is(err, rec.ErrNotRecorded), errors.Is(err, rec.ErrUnknownClip):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		if !errors.Is(err, rec.ErrClosed) {
			s.logger.Warn("recordings: failed", "path", clipID(r.URL.Path), "err", redactURLs(err.Error()))
		}
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "recordings unavailable: "+err.Error())
	}
}

// tooManyExportsJSON answers an MP4 request past an export limit.
type tooManyExportsJSON struct {
	Error string `json:"error"`
	// Scope is the limit that refused it: "user" or "server".
	Scope string `json:"scope"`
	Limit int    `json:"limit"`
}

// takeExport takes an export slot for p, or answers 429 and returns nil.
func (s *Server) takeExport(w http.ResponseWriter, p *principal) (release func()) {
	user := p.User.Username
	full, limit := s.exportSlots.take(user)
	if full != "" {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusTooManyRequests, tooManyExportsJSON{
			Error: fmt.Sprintf("too many recordings being sent for this %s (at most %d at once): wait for one to end, then try again", full, limit),
			Scope: full, Limit: limit,
		})
		return nil
	}
	return func() { s.exportSlots.give(user) }
}

// admitMP4 lets p have an MP4 of target: a download only to a role that
// may export recordings (operators and above; a viewer watches recordings
// in the console but takes no copy away, and the refusal is audited), and
// either only within the export slots. It returns the slot's release, or
// nil when it answered a refusal.
func (s *Server) admitMP4(w http.ResponseWriter, r *http.Request, p *principal, target string, download bool) (release func()) {
	if download && !p.User.Role.CanAct() {
		s.deny(w, r, target, fmt.Sprintf("your role (%s) may watch recordings but not download them", p.User.Role))
		return nil
	}
	return s.takeExport(w, p)
}

// setMP4Headers sets the headers of an MP4 answer covering [start, end].
func setMP4Headers(h http.Header, start, end time.Time) {
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "no-store")
	h.Set(headerStart, start.UTC().Format(time.RFC3339Nano))
	h.Set(headerEnd, end.UTC().Format(time.RFC3339Nano))
}

// handleVideo serves [start, end] of a camera's recordings as one
// fragmented MP4, from the keyframe at or before start (end defaults to
// start + recordings.max_export). download=1 adds Content-Disposition and
// sends the body's SHA-256 in X-Content-SHA256 and Repr-Digest before it
// (hashed in a first pass: the same span gives the same bytes). Every
// answer with a body is audited with the span, its size and the SHA-256 of
// the bytes sent.
func (s *Server) handleVideo(w http.ResponseWriter, r *http.Request) {
	camera := r.PathValue("id")
	p := principalOf(r.Context())
	if !s.cameraVisible(p, camera) {
		s.denyCamera(w, r, camera)
		return
	}
	q := r.URL.Query()
	maxExport := s.deps.Recordings.MaxExport()
	start, err := parseRFC3339(q, "start", time.Time{})
	if err == nil && start.IsZero() {
		err = errors.New("start: required (RFC 3339)")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	end, err := parseRFC3339(q, "end", start.Add(maxExport))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	download, err := parseDownload(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case !end.After(start):
		writeError(w, http.StatusBadRequest, "end: must be after start")
		return
	case maxExport > 0 && end.Sub(start) > maxExport:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("end: the span is longer than recordings.max_export (%s)", maxExport))
		return
	}
	target := "camera:" + camera
	release := s.admitMP4(w, r, p, target, download)
	if release == nil {
		return
	}
	defer release()
	plan, err := s.deps.Recordings.Export(camera, start, end)
	if err != nil {
		s.recordingError(w, r, camera, err)
		return
	}
	if r.Method == http.MethodHead {
		// What the span would be, without reading it: the console maps
		// the player's time to the wall clock with X-Recording-Start.
		setMP4Headers(w.Header(), plan.Start, plan.End)
		w.WriteHeader(http.StatusOK)
		return
	}
	action := "playback"
	var announced string
	if download {
		action = "export"
		if announced, err = s.hashFirst(w, r, plan); err != nil {
			s.audit(p, action, target, "failed", spanDetail(plan.Start, plan.End)+": "+err.Error())
			s.recordingError(w, r, camera, err)
			return
		}
		w.Header().Set("Content-Disposition", attachment(camera, plan.Start, plan.End))
	}
	setMP4Headers(w.Header(), plan.Start, plan.End)
	if plan.Size >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(plan.Size, 10))
	}
	sw := newSendWriter(w)
	_, err = plan.WriteTo(r.Context(), sw)
	s.auditSent(p, action, target, spanDetail(plan.Start, plan.End), sw, announced, err)
}

// hashFirst hashes the export in a pass of its own and sets the headers
// that announce the hash, so that the client has it before the body.
func (s *Server) hashFirst(w http.ResponseWriter, r *http.Request, plan ExportPlan) (string, error) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(exportHashTimeout))
	ctx, cancel := context.WithTimeout(r.Context(), exportHashTimeout)
	defer cancel()
	hs := sha256.New()
	if _, err := plan.WriteTo(ctx, hs); err != nil {
		return "", fmt.Errorf("hash the export: %w", err)
	}
	sum := hs.Sum(nil)
	announceSHA256(w, sum)
	return hex.EncodeToString(sum), nil
}

// announceSHA256 sets X-Content-SHA256 (hex) and Repr-Digest (RFC 9530).
func announceSHA256(w http.ResponseWriter, sum []byte) {
	w.Header().Set(headerSHA256, hex.EncodeToString(sum))
	w.Header().Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
}

// auditSent records an MP4 answer: what was asked, how many bytes went
// out and their SHA-256, and, when a hash was announced before the body
// and the bytes sent differ from it, that they did.
func (s *Server) auditSent(p *principal, action, target, detail string, sw *sendWriter, announced string, err error) {
	sent := sw.sum()
	outcome := "ok"
	detail += fmt.Sprintf(", %d bytes, sha256 %s", sw.n, sent)
	switch {
	case err != nil:
		outcome = "incomplete"
		detail += ": " + err.Error()
	case announced != "" && announced != sent:
		outcome = "mismatch"
		detail += ", announced sha256 " + announced
		s.logger.Error("recording sent differs from its announced hash", "target", target, "announced", announced, "sent", sent)
	}
	s.audit(p, action, target, outcome, detail)
}

// spanDetail is a span as audit records write it.
func spanDetail(start, end time.Time) string {
	return "span " + start.UTC().Format(time.RFC3339Nano) + "/" + end.UTC().Format(time.RFC3339Nano)
}

// attachment is the Content-Disposition of a downloaded span:
// camera_20260102T150405Z_20260102T151005Z.mp4.
func attachment(camera string, start, end time.Time) string {
	const f = "20060102T150405Z"
	return fmt.Sprintf("attachment; filename=%q", safeName(camera)+"_"+start.UTC().Format(f)+"_"+end.UTC().Format(f)+".mp4")
}

// safeName keeps the characters of an ID that are safe in a file name.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, clipID(id))
}

// sendWriter writes an MP4 to its client: it hashes and counts what was
// written and gives each write exportWriteTimeout.
type sendWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	h  hash.Hash
	n  int64
}

func newSendWriter(w http.ResponseWriter) *sendWriter {
	return &sendWriter{w: w, rc: http.NewResponseController(w), h: sha256.New()}
}

func (s *sendWriter) Write(p []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	n, err := s.w.Write(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	return n, err
}

func (s *sendWriter) sum() string { return hex.EncodeToString(s.h.Sum(nil)) }

// clipJSON is an evidence clip as the incident shows it.
type clipJSON struct {
	Camera string         `json:"camera"`
	Start  time.Time      `json:"start"`
	End    time.Time      `json:"end"`
	Alarm  time.Time      `json:"alarm,omitzero"`
	Status rec.ClipStatus `json:"status"`
	SHA256 string         `json:"sha256,omitempty"`
	Bytes  int64          `json:"bytes"`
	Reason string         `json:"reason,omitempty"`
	// URL serves the clip's MP4 (download=1 for a file to keep).
	URL string `json:"url"`
}

// clipsOf lists an incident's clips, all of them: a clip of a camera
// outside the user's area is still evidence of an incident in it.
func (s *Server) clipsOf(incident string) []clipJSON {
	if s.deps.Recordings == nil {
		return nil
	}
	clips := s.deps.Recordings.Clips(incident)
	out := make([]clipJSON, 0, len(clips))
	for _, c := range clips {
		out = append(out, clipJSON{Camera: c.Camera, Start: c.Start.UTC(), End: c.End.UTC(), Alarm: c.Alarm.UTC(),
			Status: c.Status, SHA256: c.SHA256, Bytes: c.Bytes, Reason: redactURLs(c.Reason),
			URL: "/api/incidents/" + url.PathEscape(incident) + "/clips/" + url.PathEscape(c.ID)})
	}
	return out
}

// validClipID tells whether an ID from a clip's URL may go to the
// recorder: short, printable, no path separator, not "." or "..".
func validClipID(id string) bool {
	if id == "" || len(id) > maxClipIDLen || id == "." || id == ".." {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}

// handleClip serves an evidence clip's MP4 to whoever sees its incident
// (the incident's scope decides, whatever the clip's camera). A clip still
// recording is sent as far as it is written. With download=1 the clip's
// SHA-256 is sent before the body (the recorder's, for a complete clip).
// Every answer with a body is audited with the SHA-256 of the bytes sent;
// for a complete clip, bytes that differ from its recorded hash are
// audited as a mismatch.
func (s *Server) handleClip(w http.ResponseWriter, r *http.Request) {
	incident, clip := r.PathValue("id"), r.PathValue("clip")
	p := principalOf(r.Context())
	sc := s.scopeOf(p)
	inc, err := s.deps.Incidents.Incident(r.Context(), incident)
	switch {
	case errors.Is(err, alarms.ErrNotFound) && !sc.all():
		s.denyHidden(w, r, "incident", incident)
		return
	case err != nil:
		s.incidentError(w, r, err)
		return
	case !sc.sees(inc.Area):
		s.denyHidden(w, r, "incident", incident)
		return
	}
	download, err := parseDownload(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !validClipID(clip) || !validClipID(incident) {
		writeError(w, http.StatusNotFound, "no such clip")
		return
	}
	target := "incident:" + incident
	release := s.admitMP4(w, r, p, target, download)
	if release == nil {
		return
	}
	defer release()
	f, c, err := s.deps.Recordings.ClipFile(incident, clip)
	if err != nil {
		s.recordingError(w, r, "", err)
		return
	}
	defer f.Close()
	if p.Cameras != nil && !p.Cameras[c.Camera] {
		// A token limited to some cameras sees no other camera's clip.
		s.denyHidden(w, r, "camera", c.Camera)
		return
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		s.recordingError(w, r, "", fmt.Errorf("clip %s: %w", clip, err))
		return
	}
	complete := c.Status == rec.ClipComplete && c.SHA256 != ""
	expect := "" // the hash the bytes sent must have
	action := "clip_playback"
	if complete {
		expect = c.SHA256
	}
	if download {
		action = "clip_export"
		if !complete {
			// Still recording (or failed): hash what there is now, then
			// send exactly that.
			if expect, err = hashHead(f, size); err != nil {
				s.recordingError(w, r, "", fmt.Errorf("clip %s: %w", clip, err))
				return
			}
		}
		sum, _ := hex.DecodeString(expect)
		announceSHA256(w, sum)
		w.Header().Set("Content-Disposition", attachment(c.Camera+"_"+incident, c.Start, c.End))
	}
	setMP4Headers(w.Header(), c.Start, c.End)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	sw := newSendWriter(w)
	// A client that went away fails the next write.
	_, err = io.Copy(sw, io.LimitReader(f, size))
	detail := "clip " + c.ID + " of camera " + c.Camera + ", " + string(c.Status) + ", " + spanDetail(c.Start, c.End)
	s.auditSent(p, action, target, detail, sw, expect, err)
}

// hashHead is the hex SHA-256 of f's first size bytes; f is left at its
// start.
func hashHead(f io.ReadSeeker, size int64) (string, error) {
	hs := sha256.New()
	if _, err := io.Copy(hs, io.LimitReader(f, size)); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return hex.EncodeToString(hs.Sum(nil)), nil
}
