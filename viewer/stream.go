package viewer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// Limits of the event stream (GET /api/stream).
const (
	// defaultStreamHeartbeat is how often an idle stream sends a comment,
	// so that proxies keep it open.
	defaultStreamHeartbeat = 15 * time.Second
	// streamWriteTimeout bounds each write to a stream's client. It replaces
	// the server's WriteTimeout, which would end every stream after 60 s,
	// and still drops a client that stopped reading.
	streamWriteTimeout = 30 * time.Second
	// streamReplayMax bounds the events replayed to a client that resumes
	// with Last-Event-ID.
	streamReplayMax = 1000
)

// handleStream sends stored events as Server-Sent Events as they are
// stored:
//
//	id: <received_at in unix ns>-<offset>
//	event: alarm
//	data: <the event as JSON>
//
// A client that reconnects with Last-Event-ID first gets the events
// received since the one it names (at most streamReplayMax, oldest first),
// then live ones. When that cannot be complete (more were missed, the ID is
// malformed, the store fails), an "event: gap" with {"reason": ...} comes
// first: the client should reload GET /api/events. A client too slow to
// take the live events is disconnected rather than silently losing some;
// it reconnects and catches up by the replay. Idle streams get a comment
// every 15 s.
//
// With an incident engine, every incident change is sent too, in order, as
// it is saved:
//
//	event: incident
//	data: <the alarms.IncidentChange as JSON>
//
// Incident events carry no id (the Last-Event-ID stays the last alarm's)
// and are not replayed: a console reloads GET /api/incidents after a
// reconnect, and when "event: incident_gap" says changes were missed.
//
// Replay follows the store's log (EventsAfter) when the alarm source can
// read it, as the intake can: every event stored after the client's last
// one, whichever node received it and when. Only a source that cannot
// falls back to receive time, which can miss an event received just before
// the client's last one but stored just after it.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	p := principalOf(ctx)
	// The login's end (logout, expiry, an admin) cancels the stream.
	defer s.streams.add(p.Key, cancel)()
	if p.Key != "" && !s.sessionAlive(p) {
		return // ended between the guard and here
	}
	sc := s.scopeOf(p)
	// Subscribe before reading the replay, so that nothing stored in
	// between is missed; what is in both is sent once.
	live := s.deps.Alarms.Subscribe(ctx)
	var changes <-chan alarms.IncidentChange
	if s.deps.Incidents != nil {
		changes = s.deps.Incidents.SubscribeIncidents(ctx)
	}
	var lastSeq uint64

	var replay []alarms.Event
	var known map[string]bool // offsets the client has or is replayed
	var gap string
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		replay, known, gap = s.replay(ctx, h)
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w)}
	if err := sw.comment("connected"); err != nil {
		s.logger.Debug("event stream: first write", "err", err)
		return
	}
	if gap != "" {
		if err := sw.event("gap", "", map[string]string{"reason": gap}); err != nil {
			return
		}
	}
	for _, e := range replay {
		if !sc.sees(e.Area) {
			continue
		}
		if err := sw.event("alarm", streamID(e), e); err != nil {
			return
		}
	}

	heartbeat := time.NewTicker(s.streamHeartbeat)
	defer heartbeat.Stop()
	for {
		if full(live) || full(changes) {
			// The intake and the engine drop values for a full
			// subscriber: end the stream so that the client resumes from
			// the store.
			s.logger.Debug("event stream: client too slow, disconnecting", "remote", r.RemoteAddr)
			return
		}
		select {
		case <-ctx.Done():
			return
		case e, ok := <-live:
			if !ok {
				return // the intake closed
			}
			if known[e.Offset] {
				delete(known, e.Offset)
				continue
			}
			if !sc.sees(e.Area) {
				continue
			}
			if err := sw.event("alarm", streamID(e), e); err != nil {
				return
			}
		case c, ok := <-changes:
			if !ok {
				changes = nil // the engine closed; alarms may go on
				continue
			}
			if j, ok := s.changeForUser(p, sc, c); ok {
				if err := sendIncidentChange(sw, j, lastSeq); err != nil {
					return
				}
			}
			// Changes out of scope are skipped, not missed: no gap.
			lastSeq = c.Seq
		case <-heartbeat.C:
			if !s.sessionAlive(p) {
				return // logged out or expired
			}
			if err := sw.comment("keep-alive"); err != nil {
				return
			}
		}
	}
}

// full reports whether a subscription's queue is full: its sender then
// drops values for it.
func full[T any](ch <-chan T) bool {
	return ch != nil && cap(ch) > 0 && len(ch) == cap(ch)
}

// sendIncidentChange sends an incident change, after an "incident_gap"
// event when changes were missed since the one numbered lastSeq (0: none
// sent yet).
func sendIncidentChange(sw *sseWriter, c incidentChangeJSON, lastSeq uint64) error {
	if lastSeq != 0 && c.Seq != lastSeq+1 {
		reason := fmt.Sprintf("missed incident changes %d to %d: reload /api/incidents", lastSeq+1, c.Seq-1)
		if err := sw.event("incident_gap", "", map[string]string{"reason": reason}); err != nil {
			return err
		}
	}
	return sw.event("incident", "", c)
}

// replay returns the events stored since the one that lastID names, oldest
// first; the offsets of every event read, which the live events must not
// repeat; and why the replay may be incomplete ("" when it is not).
func (s *Server) replay(ctx context.Context, lastID string) ([]alarms.Event, map[string]bool, string) {
	since, offset, err := parseStreamID(lastID)
	if err != nil {
		return nil, nil, err.Error()
	}
	if lg, ok := s.deps.Alarms.(eventLog); ok {
		return s.replayLog(ctx, lg, offset)
	}
	page, err := s.deps.Alarms.Events(ctx, alarms.EventQuery{Since: since, Limit: streamReplayMax})
	if err != nil {
		s.logger.Warn("event stream: replay", "err", redactURLs(err.Error()))
		return nil, nil, "replay failed: " + redactURLs(err.Error())
	}
	known := make(map[string]bool, len(page.Events))
	for _, e := range page.Events {
		known[e.Offset] = true
	}
	evs, gap := page.Events, ""
	// Newest first: the client has the named event and those after it in
	// the list (received at the same time, stored before it).
	if i := slices.IndexFunc(evs, func(e alarms.Event) bool { return e.Offset == offset }); i >= 0 {
		evs = evs[:i]
	} else if page.Next != "" {
		gap = fmt.Sprintf("more than %d events were missed; only the latest are replayed", streamReplayMax)
	}
	evs = slices.Clone(evs)
	slices.Reverse(evs)
	return evs, known, gap
}

// eventLog is an alarm source that lists stored events in the log's order
// after one of them (the intake does, from its store).
type eventLog interface {
	EventsAfter(ctx context.Context, after string, limit int) ([]alarms.Event, error)
}

// replayLog returns the events stored after the one at offset, in the
// log's order: with several nodes storing at once, receive times and the
// log's order differ by more than a replay by time can cover.
func (s *Server) replayLog(ctx context.Context, lg eventLog, offset string) ([]alarms.Event, map[string]bool, string) {
	evs, err := lg.EventsAfter(ctx, offset, streamReplayMax+1)
	if err != nil {
		s.logger.Warn("event stream: replay", "err", redactURLs(err.Error()))
		return nil, nil, "replay failed: " + redactURLs(err.Error())
	}
	gap := ""
	if len(evs) > streamReplayMax {
		evs = evs[:streamReplayMax]
		gap = fmt.Sprintf("more than %d events were missed; only the first %d are replayed", streamReplayMax, streamReplayMax)
	}
	known := make(map[string]bool, len(evs))
	for _, e := range evs {
		known[e.Offset] = true
	}
	return evs, known, gap
}

// streamID is an event's SSE id: its receive time and its offset, so that
// a resuming client can be given what came after it.
func streamID(e alarms.Event) string {
	return strconv.FormatInt(e.ReceivedAt.UnixNano(), 10) + "-" + e.Offset
}

func parseStreamID(id string) (time.Time, string, error) {
	ns, offset, ok := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || offset == "" {
		return time.Time{}, "", errors.New("malformed Last-Event-ID; nothing replayed")
	}
	return time.Unix(0, n), offset, nil
}

// sseWriter writes Server-Sent Events, flushing each.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer
}

// event sends one event; data is encoded as one line of JSON.
func (sw *sseWriter) event(name, id string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	sw.buf.Reset()
	if id != "" {
		sw.buf.WriteString("id: " + id + "\n")
	}
	sw.buf.WriteString("event: " + name + "\ndata: ")
	sw.buf.Write(b)
	sw.buf.WriteString("\n\n")
	return sw.send(sw.buf.Bytes())
}

// comment sends a comment line, which clients ignore.
func (sw *sseWriter) comment(text string) error {
	return sw.send([]byte(": " + text + "\n\n"))
}

func (sw *sseWriter) send(b []byte) error {
	if err := sw.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := sw.w.Write(b); err != nil {
		return err
	}
	return sw.rc.Flush()
}

// incidentChangeJSON is an alarms.IncidentChange as the stream sends it:
// the incident as the API shows it to this user (actions, cameras).
type incidentChangeJSON struct {
	Seq      uint64               `json:"seq"`
	Incident *incidentJSON        `json:"incident,omitempty"`
	Entry    alarms.TimelineEntry `json:"entry,omitzero"`
	Units    []alarms.UnitView    `json:"units,omitempty"`
}

// changeForUser fits a change to what p may see; false when nothing of it
// is in scope.
func (s *Server) changeForUser(p *principal, sc scope, c alarms.IncidentChange) (incidentChangeJSON, bool) {
	j := incidentChangeJSON{Seq: c.Seq, Entry: c.Entry}
	if c.Incident != nil {
		if !sc.sees(c.Incident.Area) {
			return j, false
		}
		ij := s.forUser(p, s.incidentToJSON(*c.Incident, true))
		j.Incident = &ij
	}
	for _, u := range c.Units {
		if sc.seesUnit(u.Area) {
			j.Units = append(j.Units, u)
		}
	}
	return j, j.Incident != nil || len(j.Units) > 0
}
