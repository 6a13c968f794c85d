package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/redisstore"
)

// What the patrol units received, and what the incidents say was offered:
// the checks of "each step offered exactly once, no offer timeout lost,
// every incident reached a next step" across engine takeovers.

// offerLog counts every dispatch message the simulated units receive
// (hardware.UnitSimConfig.OnDispatch), repeated deliveries included.
type offerLog struct {
	mu     sync.Mutex
	offers map[string]*offerSeen // by offer id (see offerID)
	raw    int                   // offers received, repeats included
	other  int                   // other dispatch messages
	bad    int                   // messages that do not decode
}

// offerSeen is one offer (one id) as the units received it.
type offerSeen struct {
	id, incident, unit string
	sent               time.Time
	times              int // receptions
	firstAt            time.Time
}

// dispatchSeen is what the test reads of a dispatch message.
type dispatchSeen struct {
	// ID is the message's own id (stable per incident, version and unit),
	// by which a unit drops a repeated delivery.
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Incident string    `json:"incident"`
	Sent     time.Time `json:"sent"`
}

func newOfferLog() *offerLog { return &offerLog{offers: map[string]*offerSeen{}} }

// stepKey names an offer step: the incident, the unit and the time of the
// engine's transaction, which is both the timeline entry's At and the
// message's Sent.
func stepKey(incident, unit string, at time.Time) string {
	return fmt.Sprintf("%s|%s|%d", incident, unit, at.UnixNano())
}

// record is the units' OnDispatch.
func (l *offerLog) record(unit string, payload []byte) {
	var m dispatchSeen
	err := json.Unmarshal(payload, &m)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil || m.Incident == "":
		l.bad++
		return
	case m.Type != "offer":
		l.other++
		return
	}
	l.raw++
	id := m.ID
	if id == "" {
		// Before messages carried an id, the step was the key.
		id = "step:" + stepKey(m.Incident, unit, m.Sent)
	}
	s := l.offers[id]
	if s == nil {
		s = &offerSeen{id: id, incident: m.Incident, unit: unit, sent: m.Sent, firstAt: time.Now()}
		l.offers[id] = s
	}
	s.times++
}

// snapshot copies what was received so far.
func (l *offerLog) snapshot() map[string]offerSeen {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]offerSeen, len(l.offers))
	for id, s := range l.offers {
		out[id] = *s
	}
	return out
}

// counts returns the offers received (repeats included), distinct offers,
// other messages and undecodable ones.
func (l *offerLog) counts() (raw, distinct, other, bad int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw, len(l.offers), l.other, l.bad
}

// readIncidents reads every incident from the store.
func readIncidents(ctx context.Context, redisURL, prefix string) ([]alarms.Incident, error) {
	s, err := redisstore.Open(ctx, redisstore.Config{URL: redisURL, KeyPrefix: prefix})
	if err != nil {
		return nil, fmt.Errorf("open the store: %w", err)
	}
	defer s.Close()
	var out []alarms.Incident
	q := alarms.IncidentQuery{Limit: 1000}
	for {
		page, err := s.Incidents(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read the incidents: %w", err)
		}
		out = append(out, page.Incidents...)
		if page.Next == "" {
			return out, nil
		}
		q.Cursor = page.Next
	}
}

// offerCheck is the outcome of checkOffers, for the log.
type offerCheck struct {
	incidents, steps, timeouts, declines int
	maxLate                              time.Duration // the latest timeout after its deadline
	rawRepeats                           int           // receptions beyond the first of one id
	repeated                             []string      // ids received more than once
	truncated                            int           // incidents with a full timeline, not checked
}

// checkOffers compares the offer steps of the incidents (read at readAt)
// with the offers the units had received before that read (before) and a
// while after it (after). late bounds how long after its deadline an
// offer may time out (the failover and a margin).
//
//   - Each offer step reached its unit under one id, and no two ids were
//     sent for one step: nothing offered twice, nothing lost.
//   - Every offer received before the read is a step of the incidents: no
//     offer was sent for a change that was not saved.
//   - An offer that timed out did so within late of its deadline, and an
//     open offer is not more than late past its deadline: no timeout lost.
//   - After every timeout and decline, the incident went on at once: an
//     offer to another unit, or a wait for a free one (no_unit).
//   - An open incident waiting for a unit has said so (no_unit) after its
//     last offer.
func checkOffers(t *testing.T, incs []alarms.Incident, readAt time.Time, before, after map[string]offerSeen,
	offerTimeout, late time.Duration) offerCheck {
	t.Helper()
	var res offerCheck
	steps := map[string]bool{}      // step key -> in a timeline
	byStep := map[string][]string{} // step key -> ids received after
	checked := map[string]bool{}    // incidents whose timelines are whole
	for _, s := range after {
		k := stepKey(s.incident, s.unit, s.sent)
		byStep[k] = append(byStep[k], s.id)
		if s.times > 1 {
			res.rawRepeats += s.times - 1
			res.repeated = append(res.repeated, fmt.Sprintf("%s (%d times)", s.id, s.times))
		}
	}
	var lost, twice, stale, noNext, waiting []string
	for _, inc := range incs {
		res.incidents++
		if len(inc.Timeline) >= 500 {
			res.truncated++ // past alarms' maxTimeline, entries are dropped
			continue
		}
		checked[inc.ID] = true
		offeredAt := map[string]time.Time{} // unit -> when its open offer was made
		lastOffer := -1
		for i, e := range inc.Timeline {
			switch e.Action {
			case "offer", "reoffer":
				if e.Unit == "" {
					continue
				}
				res.steps++
				lastOffer = i
				k := stepKey(inc.ID, e.Unit, e.At)
				steps[k] = true
				offeredAt[e.Unit] = e.At
				switch ids := byStep[k]; {
				case len(ids) == 0:
					lost = append(lost, fmt.Sprintf("%s to %s at %s", inc.ID, e.Unit, e.At.Format(time.StampMilli)))
				case len(ids) > 1:
					twice = append(twice, fmt.Sprintf("%s to %s at %s: ids %v", inc.ID, e.Unit, e.At.Format(time.StampMilli), ids))
				}
			case "timeout", "decline":
				if e.Action == "timeout" {
					res.timeouts++
					if at, ok := offeredAt[e.Unit]; ok {
						l := e.At.Sub(at.Add(offerTimeout))
						res.maxLate = max(res.maxLate, l)
						if l > late {
							stale = append(stale, fmt.Sprintf("%s: the offer to %s timed out %v after its deadline", inc.ID, e.Unit, l.Round(time.Millisecond)))
						}
					}
				} else {
					res.declines++
				}
				delete(offeredAt, e.Unit)
				lastOffer = i
				if !wentOn(inc.Timeline[i+1:], e.At) {
					noNext = append(noNext, fmt.Sprintf("%s: %s by %s at %s", inc.ID, e.Action, e.Unit, e.At.Format(time.StampMilli)))
				}
			}
		}
		if inc.Offer != nil && readAt.Sub(inc.Offer.Deadline) > late {
			stale = append(stale, fmt.Sprintf("%s: the offer to %s is %v past its deadline", inc.ID, inc.Offer.Unit,
				readAt.Sub(inc.Offer.Deadline).Round(time.Millisecond)))
		}
		if (inc.State == alarms.StateNew || inc.State == alarms.StateAcknowledged) && readAt.Sub(inc.Created) > late &&
			!slices.ContainsFunc(inc.Timeline[lastOffer+1:], func(e alarms.TimelineEntry) bool { return e.Action == "no_unit" }) {
			waiting = append(waiting, fmt.Sprintf("%s (%s since %s)", inc.ID, inc.State, inc.Created.Format(time.StampMilli)))
		}
	}
	var unsaved []string
	for _, s := range before {
		if checked[s.incident] && !steps[stepKey(s.incident, s.unit, s.sent)] {
			unsaved = append(unsaved, fmt.Sprintf("%s to %s at %s (id %s)", s.incident, s.unit, s.sent.Format(time.StampMilli), s.id))
		}
	}
	slices.Sort(res.repeated)
	for _, f := range []struct {
		list []string
		what string
	}{
		{lost, "offer steps never reached their unit"},
		{twice, "offer steps were sent under more than one id (offered twice)"},
		{unsaved, "offers reached a unit that no incident's timeline has (sent for a change not saved)"},
		{stale, "offer timeouts were lost or late"},
		{noNext, "timeouts or declines were not followed by a next step"},
		{waiting, "open incidents wait without an offer or a no_unit step"},
	} {
		if len(f.list) > 0 {
			slices.Sort(f.list)
			t.Errorf("%d %s: %s", len(f.list), f.what, firstFew(f.list))
		}
	}
	return res
}

// wentOn reports whether the entries after a timeout or a decline at at
// carry the incident's next step, made in the same transaction: an offer
// to another unit, or the wait for one.
func wentOn(rest []alarms.TimelineEntry, at time.Time) bool {
	for _, e := range rest {
		if !e.At.Equal(at) {
			return false
		}
		switch e.Action {
		case "offer", "reoffer", "no_unit", "new_round":
			return true
		}
	}
	return false
}

