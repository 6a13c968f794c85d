package viewer

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/ingest"
)

// maxOfferSize bounds a WHEP offer; browsers' offers are a few KiB.
const maxOfferSize = 64 << 10

// handleWHEPOffer creates a WHEP session (RFC 9725 section 4.2): an SDP
// offer in, 201 with the answer and the session's Location out. Candidates
// are in the answer (no trickle).
func (s *Server) handleWHEPOffer(w http.ResponseWriter, r *http.Request) {
	code := s.whepOffer(w, r)
	s.metrics.whepRequests.WithLabelValues(r.Method, strconv.Itoa(code)).Inc()
}

func (s *Server) whepOffer(w http.ResponseWriter, r *http.Request) int {
	camera := r.PathValue("camera")
	p := principalOf(r.Context())
	if !s.cameraVisible(p, camera) {
		return s.denyCamera(w, r, camera)
	}
	sub, ok := wantSubStream(r)
	if !ok {
		return writeError(w, http.StatusBadRequest, "stream: must be main or sub")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		w.Header().Set("Accept-Post", "application/sdp")
		return writeError(w, http.StatusUnsupportedMediaType, "content type must be application/sdp")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return writeError(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("offer larger than %d bytes", maxOfferSize))
		}
		return writeError(w, http.StatusBadRequest, "read offer: "+err.Error())
	}
	o, err := parseOffer(body)
	if err != nil {
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	if !proxied(r) {
		// In a cluster the node that pulls the camera serves it; this one
		// has authenticated and scope-checked the request already.
		if node, base := s.whepTarget(r.Context(), camera); node != "" {
			return s.proxyWHEP(w, r, node, base, body)
		}
	}

	slotUser := p.User.Username
	if s.deps.Accounts == nil {
		slotUser = "" // everyone is the same anonymous admin
	}
	if full, limit := s.videoSlots.take(slotUser, p.Addr); full != "" {
		s.metrics.sessionErrors.WithLabelValues(reasonTooMany).Inc()
		return writeJSON(w, http.StatusTooManyRequests, tooManyVideoJSON{
			Error: fmt.Sprintf("too many video sessions open for this %s (at most %d): close a tile or a full screen view, then try again",
				full, limit),
			Scope: full, Limit: limit,
		})
	}
	held := true // the slot, until a session owns it
	defer func() {
		if held {
			s.videoSlots.give(slotUser, p.Addr)
		}
	}()

	reader, err := s.deps.Cameras.OpenReader(r.Context(), camera, sub)
	if errors.Is(err, ingest.ErrPulledElsewhere) {
		// Another node took the camera meanwhile (or holds it while its
		// owner's record is gone): send the viewer there, once.
		if !proxied(r) {
			if node, base := s.whepTarget(r.Context(), camera); node != "" {
				return s.proxyWHEP(w, r, node, base, body)
			}
		}
		s.metrics.sessionErrors.WithLabelValues(reasonUnavailable).Inc()
		w.Header().Set("Retry-After", "1")
		return writeError(w, http.StatusServiceUnavailable,
			fmt.Sprintf("camera %q is pulled by another node; try again", camera))
	}
	if err != nil {
		return s.writeCameraError(w, camera, err)
	}
	id := s.sessionID(rand.Text())
	se, answer, err := newSession(r.Context(), s.settings(), id, camera, string(body), o, reader,
		s.metrics, s.logger)
	if err != nil {
		var negErr *negotiationError
		switch {
		case errors.Is(err, errNoCommonCodec):
			s.metrics.sessionErrors.WithLabelValues(reasonNoCodec).Inc()
			return writeError(w, http.StatusNotAcceptable, err.Error())
		case errors.As(err, &negErr):
			s.metrics.sessionErrors.WithLabelValues(reasonNegotiation).Inc()
			return writeError(w, http.StatusBadRequest, negErr.Error())
		}
		s.metrics.sessionErrors.WithLabelValues(reasonNegotiation).Inc()
		s.logger.Warn("whep session not created", "camera", camera, "err", err)
		return writeError(w, http.StatusInternalServerError, "could not create the session")
	}
	se.owner = *p
	se.release = func() { s.videoSlots.give(slotUser, p.Addr) }
	held = false
	if err := s.addSession(se); err != nil {
		se.release()
		_ = se.pc.Close()
		se.reader.Close()
		return writeError(w, http.StatusServiceUnavailable, "server is shutting down")
	}
	s.metrics.sessionsStarted.Inc()
	s.logger.Info("whep session created", "camera", camera, "session", id, "sub", sub, "user", p.User.Username)
	streamName := "main"
	if sub {
		streamName = "sub"
	}
	s.audit(p, "watch_start", "camera:"+camera, "ok", streamName+" stream, session "+id)

	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/whep/"+url.PathEscape(camera)+"/"+id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	return http.StatusCreated
}

// tooManyVideoJSON is the answer to an offer past a video session limit.
type tooManyVideoJSON struct {
	Error string `json:"error"`
	// Scope is the limit that refused it: "user" or "address".
	Scope string `json:"scope"`
	Limit int    `json:"limit"`
}

// wantSubStream reads the query parameter stream: "main" (the default) or
// "sub" (the camera's sub stream, or its main stream when it has none).
func wantSubStream(r *http.Request) (sub, ok bool) {
	switch r.URL.Query().Get("stream") {
	case "", "main":
		return false, true
	case "sub":
		return true, true
	}
	return false, false
}

// writeCameraError answers OpenReader's error: 404 for an unknown camera,
// 503 with the camera's state when it cannot stream now.
func (s *Server) writeCameraError(w http.ResponseWriter, camera string, err error) int {
	var unavailable *ingest.UnavailableError
	switch {
	case errors.Is(err, ingest.ErrCameraRemoved):
		// Removed by a reload (and still in the viewer's places): the
		// console stops retrying and says so.
		return writeJSON(w, http.StatusNotFound, errorBody{
			Error: fmt.Sprintf("camera %q: %s", camera, endedText(reasonCameraRemoved)), Code: reasonCameraRemoved})
	case errors.Is(err, ingest.ErrUnknownCamera):
		return writeError(w, http.StatusNotFound, fmt.Sprintf("unknown camera %q", camera))
	case errors.As(err, &unavailable):
		s.metrics.sessionErrors.WithLabelValues(reasonUnavailable).Inc()
		state := cameraToJSON(unavailable.State)
		what := fmt.Sprintf("camera %q", camera)
		if unavailable.Sub {
			what += " sub stream"
		}
		w.Header().Set("Retry-After", "5")
		st := unavailable.StreamState()
		msg := fmt.Sprintf("%s is unavailable (%s)", what, st.Status)
		if st.Reason != "" {
			msg += ": " + st.Reason.Text()
		}
		return writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg, Code: string(st.Reason), Camera: &state})
	case errors.Is(err, ingest.ErrManagerClosed):
		return writeError(w, http.StatusServiceUnavailable, "server is shutting down")
	}
	s.metrics.sessionErrors.WithLabelValues(reasonUnavailable).Inc()
	s.logger.Warn("open camera reader", "camera", camera, "err", redactURLs(err.Error()))
	return writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("camera %q is unavailable", camera))
}

// handleWHEPOptions answers a WHEP OPTIONS request (RFC 9725 section 4.2).
func (s *Server) handleWHEPOptions(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Allow", "OPTIONS, POST")
	w.Header().Set("Accept-Post", "application/sdp")
	w.WriteHeader(http.StatusNoContent)
}

// handleWHEPDelete ends a session (RFC 9725 section 4.2) and waits until
// its resources are released. PATCH (trickle ICE, ICE restart) is not
// supported: the mux answers it 405.
func (s *Server) handleWHEPDelete(w http.ResponseWriter, r *http.Request) {
	code := s.whepDelete(w, r)
	s.metrics.whepRequests.WithLabelValues(r.Method, strconv.Itoa(code)).Inc()
}

func (s *Server) whepDelete(w http.ResponseWriter, r *http.Request) int {
	se, code := s.callerSession(w, r)
	if se == nil {
		return code
	}
	se.stop()
	select {
	case <-se.done:
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

// handleWHEPSession tells a viewer whether its session goes on: 200
// {"state": "live"} while it does, 410 Gone with the reason's code when a
// configuration change ended it ("camera_removed": stop retrying;
// "camera_changed": connect again), 404 otherwise. The console asks when
// its picture stops. The session of another node (a cluster's proxied
// one) is asked there, as its DELETE is.
func (s *Server) handleWHEPSession(w http.ResponseWriter, r *http.Request) {
	code := s.whepSession(w, r)
	s.metrics.whepRequests.WithLabelValues(r.Method, strconv.Itoa(code)).Inc()
}

func (s *Server) whepSession(w http.ResponseWriter, r *http.Request) int {
	if se, code := s.callerSession(w, r); se == nil {
		return code
	}
	return writeJSON(w, http.StatusOK, map[string]string{"state": "live"})
}

// callerSession finds the caller's session named by the request's path on
// this node. When it is not here, it answers for it (proxied to the node
// that holds it, 410 when a configuration change ended it, else 404) and
// returns nil with the status it wrote.
func (s *Server) callerSession(w http.ResponseWriter, r *http.Request) (*session, int) {
	se := s.session(r.PathValue("session"))
	if se == nil {
		if code, ok := s.proxyWHEPSession(w, r, r.PathValue("session")); ok {
			return nil, code
		}
		if code, ok := s.writeEnded(w, r); ok {
			return nil, code
		}
		return nil, writeError(w, http.StatusNotFound, "no such session")
	}
	if se.camera != r.PathValue("camera") || se.owner.User.Username != principalOf(r.Context()).User.Username {
		// Session IDs are unguessable; this is another operator's.
		return nil, writeError(w, http.StatusNotFound, "no such session")
	}
	return se, 0
}

// writeEnded answers 410 Gone for the caller's session that a
// configuration change ended; ok is false when it knows of none.
func (s *Server) writeEnded(w http.ResponseWriter, r *http.Request) (code int, ok bool) {
	es, found := s.ended.get(r.PathValue("session"), time.Now())
	if !found || es.camera != r.PathValue("camera") || es.owner != principalOf(r.Context()).User.Username {
		return 0, false
	}
	return writeJSON(w, http.StatusGone, errorBody{Error: fmt.Sprintf("camera %q: %s", es.camera, endedText(es.code)),
		Code: es.code}), true
}

// endedText says why a configuration change ended a session, "" for
// other reasons.
func endedText(code string) string {
	switch code {
	case reasonCameraRemoved:
		return "camera removed from the configuration"
	case reasonCameraChanged:
		return "camera settings changed, reconnecting"
	}
	return ""
}

// settings are the shared pion settings; only valid after Start.
func (s *Server) settings() webrtc.SettingEngine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ice.settings
}
