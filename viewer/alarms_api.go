package viewer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/skywatch/skywatch/alarms"
)

// maxPageLimit is the largest page the alarm API serves, as the stores do.
const maxPageLimit = 1000

// alarmRoutes registers the alarm API. Without an alarm source the routes
// still exist and answer 503, so that a client learns why instead of
// getting the operator page from the catch-all route.
func (s *Server) alarmRoutes(mux *http.ServeMux) {
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /api/events":        s.handleEvents,
		"GET /api/devices":       s.handleDevices,
		"GET /api/devices/{id}":  s.handleDevice,
		"GET /api/rejected":      s.handleRejected,
		"GET /api/alarms/status": s.handleAlarmStatus,
		"GET /api/stream":        s.handleStream,
	} {
		mux.HandleFunc(pattern, needDep(s.deps.Alarms != nil, "alarm intake", h))
	}
}

// eventsJSON is a page of events; Next is empty on the last page.
type eventsJSON struct {
	Events []alarms.Event `json:"events"`
	Next   string         `json:"next"`
}

// handleEvents lists stored events, newest first, filtered and paged.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseEventQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sc := s.scopeOf(principalOf(r.Context()))
	if q.Area != "" && !sc.sees(q.Area) {
		s.denyHidden(w, r, "area", q.Area)
		return
	}
	if q.Device != "" && !sc.all() {
		// The intake's device list is in memory; Device would also read
		// the device's last events from the store.
		areas, err := s.deviceAreas(r.Context())
		if err != nil {
			s.alarmStoreError(w, r, "devices", err)
			return
		}
		if !sc.sees(areas[q.Device]) {
			s.denyHidden(w, r, "device", q.Device)
			return
		}
	}
	page, err := s.scopedEvents(r.Context(), sc, q)
	if err != nil {
		if q.Cursor != "" && s.cursorRefused(r.Context(), q) {
			writeError(w, http.StatusBadRequest, "cursor: malformed or unknown")
			return
		}
		s.alarmStoreError(w, r, "events", err)
		return
	}
	if page.Events == nil {
		page.Events = []alarms.Event{}
	}
	writeJSON(w, http.StatusOK, eventsJSON{Events: page.Events, Next: page.Next})
}

// cursorRefused tells whether a query failed because of its cursor: the
// stores do not type that error, so the query is tried once more without
// it.
func (s *Server) cursorRefused(ctx context.Context, q alarms.EventQuery) bool {
	q.Cursor, q.Limit = "", 1
	_, err := s.deps.Alarms.Events(ctx, q)
	return err == nil
}

func parseEventQuery(v url.Values) (alarms.EventQuery, error) {
	q := alarms.EventQuery{
		Device: v.Get("device"),
		Area:   v.Get("area"),
		Cursor: v.Get("cursor"),
	}
	if c := v.Get("class"); c != "" {
		q.Class = alarms.Class(c)
		if !q.Class.Valid() {
			names := make([]string, 0, len(alarms.Classes()))
			for _, k := range alarms.Classes() {
				names = append(names, string(k))
			}
			return q, fmt.Errorf("class: %q is not one of %s", c, strings.Join(names, ", "))
		}
	}
	var err error
	if q.Since, err = parseTime(v, "since"); err != nil {
		return q, err
	}
	if q.Until, err = parseTime(v, "until"); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return q, errors.New("until: must be after since")
	}
	if q.Limit, err = parseLimit(v); err != nil {
		return q, err
	}
	return q, nil
}

// parseTime reads an optional RFC 3339 time parameter.
func parseTime(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time (2006-01-02T15:04:05Z)", name, s)
	}
	return t, nil
}

// parseLimit reads the optional limit parameter; 0 means the store's
// default (100).
func parseLimit(v url.Values) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPageLimit {
		return 0, fmt.Errorf("limit: %q is not a number from 1 to %d", s, maxPageLimit)
	}
	return n, nil
}

// handleDevices lists the configured devices with their state.
func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request) {
	list, err := s.deps.Alarms.Devices(r.Context())
	if err != nil {
		s.alarmStoreError(w, r, "devices", err)
		return
	}
	sc := s.scopeOf(principalOf(r.Context()))
	out := make([]alarms.DeviceView, 0, len(list))
	for _, d := range list {
		if sc.sees(d.Area) {
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleDevice shows one device with its state and last events.
func (s *Server) handleDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if sc := s.scopeOf(principalOf(r.Context())); !sc.all() {
		// Refuse before reading the device's events from the store.
		areas, err := s.deviceAreas(r.Context())
		if err != nil {
			s.alarmStoreError(w, r, "devices", err)
			return
		}
		if !sc.sees(areas[id]) {
			// Unknown or elsewhere: the same answer.
			s.denyHidden(w, r, "device", id)
			return
		}
	}
	d, err := s.deps.Alarms.Device(r.Context(), id)
	switch {
	case errors.Is(err, alarms.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown device %q", id))
	case err != nil:
		s.alarmStoreError(w, r, "device "+id, err)
	default:
		writeJSON(w, http.StatusOK, d)
	}
}

// Payload encodings of rejectedJSON.
const (
	payloadText   = "text"
	payloadBase64 = "base64"
)

// rejectedJSON is a rejected message as the API shows it: the payload as
// text when it is valid UTF-8, else in base64, as PayloadEncoding says.
type rejectedJSON struct {
	Device          string    `json:"device"`
	Topic           string    `json:"topic"`
	Payload         string    `json:"payload"`
	PayloadEncoding string    `json:"payload_encoding"`
	Truncated       bool      `json:"truncated,omitempty"`
	Reason          string    `json:"reason"`
	ReceivedAt      time.Time `json:"received_at"`
	Offset          string    `json:"offset,omitempty"`
}

func rejectedToJSON(r alarms.Rejected) rejectedJSON {
	j := rejectedJSON{
		Device: r.Device, Topic: r.Topic, Truncated: r.Truncated, Reason: r.Reason,
		ReceivedAt: r.ReceivedAt, Offset: r.Offset,
		Payload: string(r.Payload), PayloadEncoding: payloadText,
	}
	if !utf8.Valid(r.Payload) {
		j.Payload, j.PayloadEncoding = base64.StdEncoding.EncodeToString(r.Payload), payloadBase64
	}
	return j
}

// handleRejected lists rejected messages, newest first; before=<offset of
// the last one> gives the next page.
func (s *Server) handleRejected(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	limit, err := parseLimit(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := alarms.RejectedQuery{Device: v.Get("device"), Limit: limit, Before: v.Get("before")}
	sc := s.scopeOf(principalOf(r.Context()))
	var areas map[string]string // only needed for a partial scope
	if !sc.all() {
		if areas, err = s.deviceAreas(r.Context()); err != nil {
			s.alarmStoreError(w, r, "devices", err)
			return
		}
	}
	if q.Device != "" && !sc.sees(areas[q.Device]) {
		s.denyHidden(w, r, "device", q.Device)
		return
	}
	list, err := s.deps.Alarms.Rejected(r.Context(), q)
	if err != nil {
		if q.Before != "" {
			// As for an event cursor: the stores do not type the error.
			q.Before, q.Limit = "", 1
			if _, err2 := s.deps.Alarms.Rejected(r.Context(), q); err2 == nil {
				writeError(w, http.StatusBadRequest, "before: malformed or unknown offset")
				return
			}
		}
		s.alarmStoreError(w, r, "rejected", err)
		return
	}
	out := make([]rejectedJSON, 0, len(list))
	for _, rj := range list {
		// A message from an unknown device has no area: only the top of
		// the tree sees it.
		if sc.sees(areas[rj.Device]) {
			out = append(out, rejectedToJSON(rj))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAlarmStatus shows the intake's broker and store health, so that an
// operator sees why alarms are not coming in.
func (s *Server) handleAlarmStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, alarmStatus(s.deps.Alarms))
}

// alarmStatus is the intake's status with URLs redacted: the intake keeps
// credentials out already; this is a second lock, as for cameras.
func alarmStatus(a AlarmSource) alarms.IntakeStatus {
	st := a.Status()
	st.LastError = redactURLs(st.LastError)
	st.StoreError = redactURLs(st.StoreError)
	return st
}

// alarmsNotReady says why the intake cannot take alarms now, or "". The
// intake cannot take alarms while its store fails (it stops acknowledging)
// or while it is not connected to its broker.
func alarmsNotReady(a AlarmSource) string {
	st := alarmStatus(a)
	switch {
	case !st.StoreOK:
		return fmt.Sprintf("alarm store failing since %s: %s", st.StoreSince.UTC().Format(time.RFC3339), st.StoreError)
	case !st.Connected:
		msg := fmt.Sprintf("alarm intake not connected to its %s broker", st.Broker)
		if st.LastError != "" {
			msg += ": " + st.LastError
		}
		return msg
	}
	return ""
}

// alarmStoreError answers a failed read of the alarm store with 503.
func (s *Server) alarmStoreError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	s.logger.Warn("alarm api: read failed", "what", what, "err", redactURLs(err.Error()))
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, what+": "+err.Error())
}
