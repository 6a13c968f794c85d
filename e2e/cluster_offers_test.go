package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	lateOnes                             []string      // timeouts more than a second after their deadline
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
//
// It returns what it counted and the problems found, one line per kind.
func checkOffers(incs []alarms.Incident, readAt time.Time, before, after map[string]offerSeen,
	offerTimeout, late time.Duration) (offerCheck, []string) {
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
						if l > time.Second {
							res.lateOnes = append(res.lateOnes, fmt.Sprintf("%s to %s made at %s: %v late",
								inc.ID, e.Unit, at.Format(time.StampMilli), l.Round(time.Millisecond)))
						}
						if l > late {
							stale = append(stale, fmt.Sprintf("%s: the offer to %s made at %s timed out %v after its deadline",
								inc.ID, e.Unit, at.Format(time.StampMilli), l.Round(time.Millisecond)))
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
	var problems []string
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
			problems = append(problems, fmt.Sprintf("%d %s: %s", len(f.list), f.what, firstFew(f.list)))
		}
	}
	return res, problems
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

// TestCheckOffers: the checks of checkOffers find what they are for, and
// pass a history without fault, so that TestClusterFailover's verdict
// means something.
func TestCheckOffers(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	const timeout, late = 4 * time.Second, 10 * time.Second
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	e := func(s float64, action, unit string) alarms.TimelineEntry {
		return alarms.TimelineEntry{At: at(s), Action: action, Unit: unit}
	}
	// An incident offered to u1, which timed out, then to u2, which
	// accepted; and one offered to u3 that u3 declined, with no unit left.
	good := []alarms.Incident{
		{ID: "inc-1", State: alarms.StateDispatched, Created: at(0), Timeline: []alarms.TimelineEntry{
			e(0, "opened", ""), e(0, "offer", "u1"),
			e(4.5, "timeout", "u1"), e(4.5, "escalated", ""), e(4.5, "offer", "u2"),
			e(5, "accept", "u2")}},
		{ID: "inc-2", State: alarms.StateNew, Created: at(1), Timeline: []alarms.TimelineEntry{
			e(1, "opened", ""), e(1, "offer", "u3"), e(2, "decline", "u3"), e(2, "no_unit", "")}},
	}
	seen := func(id, inc, unit string, sent float64, times int) offerSeen {
		return offerSeen{id: id, incident: inc, unit: unit, sent: at(sent), times: times}
	}
	offers := map[string]offerSeen{
		"inc-1:v2:u1": seen("inc-1:v2:u1", "inc-1", "u1", 0, 1),
		"inc-1:v3:u2": seen("inc-1:v3:u2", "inc-1", "u2", 4.5, 2), // delivered twice: reported, not a fault
		"inc-2:v2:u3": seen("inc-2:v2:u3", "inc-2", "u3", 1, 1),
	}
	res, problems := checkOffers(good, at(30), offers, offers, timeout, late)
	if len(problems) > 0 || res.steps != 3 || res.timeouts != 1 || res.declines != 1 || res.rawRepeats != 1 {
		t.Errorf("a good history: %+v, problems %q", res, problems)
	}

	for _, c := range []struct {
		name   string
		change func(incs []alarms.Incident, offers map[string]offerSeen)
		want   string
	}{
		{"an offer never received", func(_ []alarms.Incident, o map[string]offerSeen) { delete(o, "inc-2:v2:u3") },
			"never reached their unit"},
		{"one step sent under two ids", func(_ []alarms.Incident, o map[string]offerSeen) {
			o["inc-1:v9:u1"] = seen("inc-1:v9:u1", "inc-1", "u1", 0, 1)
		}, "more than one id"},
		{"an offer no timeline has", func(_ []alarms.Incident, o map[string]offerSeen) {
			o["inc-2:v7:u9"] = seen("inc-2:v7:u9", "inc-2", "u9", 3, 1)
		}, "not saved"},
		{"a timeout long after its deadline", func(incs []alarms.Incident, _ map[string]offerSeen) {
			for i := 2; i <= 4; i++ {
				incs[0].Timeline[i].At = at(20)
			}
		}, "lost or late"},
		{"an open offer far past its deadline", func(incs []alarms.Incident, _ map[string]offerSeen) {
			incs[1].State = alarms.StateOffered
			incs[1].Offer = &alarms.Offer{Unit: "u3", Sent: at(1), Deadline: at(5)}
		}, "past its deadline"},
		{"a timeout without a next step", func(incs []alarms.Incident, _ map[string]offerSeen) {
			incs[0].Timeline[4].At = at(6)
		}, "not followed by a next step"},
		{"a waiting incident that never said so", func(incs []alarms.Incident, _ map[string]offerSeen) {
			incs[1].Timeline = incs[1].Timeline[:3]
			incs[1].Timeline[2].Action = "decline"
		}, "wait without an offer or a no_unit step"},
	} {
		t.Run(c.name, func(t *testing.T) {
			incs := make([]alarms.Incident, len(good))
			for i, inc := range good {
				inc.Timeline = slices.Clone(inc.Timeline)
				incs[i] = inc
			}
			o := maps.Clone(offers)
			c.change(incs, o)
			_, problems := checkOffers(incs, at(30), o, o, timeout, late)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("problems %q, want one that says %q", problems, c.want)
			}
		})
	}
}
