package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/ingest"
)

// holdRecorder records the warmer's holds; cameras in noSub have no sub
// stream.
type holdRecorder struct {
	noSub map[string]bool
	holds []string // camera/main or camera/sub
	until []time.Time
}

func (h *holdRecorder) Hold(camera string, sub bool, until time.Time) error {
	if sub && h.noSub[camera] {
		return fmt.Errorf("camera %q: %w", camera, ingest.ErrNoSubStream)
	}
	stream := "main"
	if sub {
		stream = "sub"
	}
	h.holds = append(h.holds, camera+"/"+stream)
	h.until = append(h.until, until)
	return nil
}

func TestWarmerHoldsNewIncidentsCameras(t *testing.T) {
	const hold = 2 * time.Minute
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cams := func(ids ...string) []alarms.IncidentCamera {
		var out []alarms.IncidentCamera
		for _, id := range ids {
			out = append(out, alarms.IncidentCamera{ID: id})
		}
		return out
	}
	incident := func(id string, mod func(*alarms.Incident)) *alarms.Incident {
		inc := &alarms.Incident{ID: id, Kind: alarms.KindResponse, State: alarms.StateNew, Created: now.Add(-time.Second),
			Cameras: cams("a", "b", "c", "d", "e")}
		if mod != nil {
			mod(inc)
		}
		return inc
	}
	change := func(inc *alarms.Incident, action string) alarms.IncidentChange {
		return alarms.IncidentChange{Incident: inc, Entry: alarms.TimelineEntry{Action: action}}
	}
	tests := []struct {
		name    string
		changes []alarms.IncidentChange
		noSub   []string
		want    []string
	}{{
		name:    "opened: the first camera's main stream, the next three's sub streams",
		changes: []alarms.IncidentChange{change(incident("i1", nil), "opened")},
		want:    []string{"a/main", "b/sub", "c/sub", "d/sub"},
	}, {
		name:    "a camera without a sub stream is held on its main one",
		changes: []alarms.IncidentChange{change(incident("i1", nil), "opened")},
		noSub:   []string{"a", "c"},
		want:    []string{"a/main", "b/sub", "c/main", "d/sub"},
	}, {
		name: "once per incident, again on escalation",
		changes: []alarms.IncidentChange{
			change(incident("i1", func(i *alarms.Incident) { i.Cameras = cams("a") }), "opened"),
			change(incident("i1", func(i *alarms.Incident) { i.Cameras = cams("a"); i.State = alarms.StateOffered }), "offer"),
			change(incident("i1", func(i *alarms.Incident) { i.Cameras = cams("a"); i.State = alarms.StateNew }), "escalated"),
			change(incident("i1", func(i *alarms.Incident) { i.Cameras = cams("a"); i.State = alarms.StateNew }), "joined"),
		},
		want: []string{"a/main", "a/main"},
	}, {
		name: "the opening missed (a slow subscriber): the first change seen",
		changes: []alarms.IncidentChange{
			change(incident("i1", func(i *alarms.Incident) { i.Cameras = cams("a"); i.State = alarms.StateOffered }), "offer"),
		},
		want: []string{"a/main"},
	}, {
		name: "not: maintenance tickets, incidents no longer open, created long ago, without cameras, unit changes",
		changes: []alarms.IncidentChange{
			change(incident("m1", func(i *alarms.Incident) { i.Kind = alarms.KindMaintenance }), "opened"),
			change(incident("r1", func(i *alarms.Incident) { i.State = alarms.StateResolved }), "resolve"),
			change(incident("o1", func(i *alarms.Incident) { i.Created = now.Add(-hold) }), "arrived"),
			change(incident("n1", func(i *alarms.Incident) { i.Cameras = nil }), "opened"),
			{Units: []alarms.UnitView{{}}},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &holdRecorder{noSub: map[string]bool{}}
			for _, id := range tc.noSub {
				h.noSub[id] = true
			}
			w := newIncidentWarmer(h, hold, slog.New(slog.NewTextHandler(io.Discard, nil)))
			for i, ch := range tc.changes {
				w.take(ch, now.Add(time.Duration(i)*time.Second))
			}
			if !slices.Equal(h.holds, tc.want) {
				t.Errorf("holds %v, want %v", h.holds, tc.want)
			}
			for i, until := range h.until {
				if d := until.Sub(now); d < hold || d > hold+time.Minute {
					t.Errorf("hold %d until %v after the change, want %v", i, d, hold)
				}
			}
		})
	}

	// An incident is warmed again once its hold has run out (it is then
	// no longer new, so only an escalation does it).
	h := &holdRecorder{}
	w := newIncidentWarmer(h, hold, slog.New(slog.NewTextHandler(io.Discard, nil)))
	inc := incident("i1", func(i *alarms.Incident) { i.Cameras = cams("a") })
	w.take(change(inc, "opened"), now)
	w.take(change(inc, "joined"), now.Add(hold+time.Second))
	w.take(change(inc, "escalated"), now.Add(hold+2*time.Second))
	if len(h.holds) != 2 || len(w.warmed) != 1 {
		t.Errorf("holds %v with %d incidents remembered; want 2 holds and 1", h.holds, len(w.warmed))
	}
}

// demoCameraState is what the warm-up test reads of GET /api/cameras.
type demoCameraState struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Viewers    int    `json:"viewers"`
	SubStatus  string `json:"sub_status"`
	SubViewers int    `json:"sub_viewers"`
	HeldUntil  string `json:"held_until"`
}

// TestDemoAlarmWarmsCameras runs the demo and publishes a panic over MQTT
// to its embedded broker: the incident's first camera (on demand, not
// pulled) comes online on its main stream, and the next ones on their sub
// streams, before any viewer asks. With -warm-on-alarm 0 they stay offline.
func TestDemoAlarmWarmsCameras(t *testing.T) {
	if testing.Short() {
		t.Skip("demo test skipped in -short mode")
	}
	for _, tc := range []struct {
		name string
		warm string
	}{{"warm", "2m"}, {"off", "0"}} {
		t.Run(tc.name, func(t *testing.T) {
			// A camera that records is pulled always: record nothing here.
			r := startDemo(t, "-dispatch", "manual", "-alarm-every", "0", "-units", "2", "-warm-on-alarm", tc.warm, "-record", "off")
			cameras := func() map[string]demoCameraState {
				var list []demoCameraState
				r.admin.getJSON(t, "/api/cameras", &list)
				out := map[string]demoCameraState{}
				for _, c := range list {
					out[c.ID] = c
				}
				return out
			}
			before := cameras()
			for id, c := range before {
				if !r.always(id) && (c.Status != "offline" || c.SubStatus != "offline") {
					t.Fatalf("on-demand camera %s is pulled before any alarm: %+v", id, c)
				}
			}

			// River Village's devices link a camera that is pulled on
			// demand, and have another nearby.
			d := r.device(t, "river-village")
			publishEvent(t, r.connectDevice(t, d), d, "panic", "120")
			inc := r.waitIncident(t, d.ID)
			if len(inc.Cameras) < 2 || !inc.Cameras[0].Linked || r.always(inc.Cameras[0].ID) {
				t.Fatalf("incident %s cameras %+v: want an on-demand linked camera first, and another", inc.ID, inc.Cameras)
			}
			first := inc.Cameras[0].ID
			var others []string
			for _, c := range inc.Cameras[1:min(len(inc.Cameras), maxWarmCameras)] {
				if !r.always(c.ID) {
					others = append(others, c.ID)
				}
			}

			if tc.warm == "0" {
				time.Sleep(time.Second)
				if c := cameras()[first]; c.Status != "offline" || c.HeldUntil != "" {
					t.Errorf("camera %s is %s (held until %q) after the alarm with the warm-up off; want offline", first, c.Status, c.HeldUntil)
				}
				if body, err := get(r.base + "/metrics"); err != nil || strings.Contains(body, "skywatch_camera_held{") &&
					!strings.Contains(body, `skywatch_camera_held{camera="`+first+`",stream="main"} 0`) {
					t.Errorf("metrics: %v, or camera %s held with the warm-up off", err, first)
				}
				return
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				now := cameras()
				ok := now[first].Status == "online" && now[first].Viewers == 0 && now[first].HeldUntil != ""
				for _, id := range others {
					ok = ok && now[id].SubStatus == "online" && now[id].SubViewers == 0
				}
				if ok {
					t.Logf("incident %s: %s online on its main stream, %v on their sub streams, without viewers", inc.ID, first, others)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the incident's cameras did not come online without viewers within 20 s: first %s %+v, others %v in %+v\ndemo output:\n%s",
						first, now[first], others, now, r.out.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
			body, err := get(r.base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			if want := `skywatch_camera_held{camera="` + first + `",stream="main"} 1`; !strings.Contains(body, want) {
				t.Errorf("metrics lack %s", want)
			}
		})
	}
}
