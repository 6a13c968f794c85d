package alarms_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/internal/testredis"
)

// eachStorage runs fn with a bolt store and, when SKYWATCH_TEST_REDIS is
// set, with Redis: the engine's notes must be saved and reloaded alike.
func eachStorage(t *testing.T, fn func(t *testing.T, open func() fullStore)) {
	t.Run("bolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "alarms.db")
		fn(t, func() fullStore { return openBolt(t, path) })
	})
	url := os.Getenv("SKYWATCH_TEST_REDIS")
	if url == "" {
		return
	}
	t.Run("redis", func(t *testing.T) {
		prefix := testredis.Prefix(t, url, "skywatch-test:")
		fn(t, func() fullStore {
			s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, KeyPrefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
}

// startWithSites starts an intake and engine whose camera sites have
// areas.
func startWithSites(t *testing.T, cfg alarms.Config, store fullStore, sites []alarms.CameraSite) *system {
	t.Helper()
	in, err := alarms.NewIntake(cfg, store, hardware.Decoders(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := alarms.NewEngine(in, store, alarms.EngineOptions{Cameras: sites, Poll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	t.Cleanup(func() { _ = eng.Close() })
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &system{cfg: cfg, in: in, eng: eng}
}

// Note puts a system entry on an incident's timeline, saved and announced;
// past maxTimeline it is announced only.
func TestEngineNote(t *testing.T) {
	eachStorage(t, func(t *testing.T, open func() fullStore) {
		cfg := incidentConfig(t)
		st := open()
		s := startSystem(t, cfg, st)
		changes := s.eng.SubscribeIncidents(t.Context())
		dev := connect(t, s.url(), "p1", "pw-p1", nil)
		publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"n1","class":"panic"}`)
		inc := waitIncident(t, s.eng, "panic", func(alarms.Incident) bool { return true })

		const reason = "camera cam-linked clip 10:00:00-10:01:30 complete, sha256 0123abcd"
		got, err := s.eng.Note(t.Context(), inc.ID, "evidence", reason)
		if err != nil {
			t.Fatal(err)
		}
		last := got.Timeline[len(got.Timeline)-1]
		if last.Action != "evidence" || last.Reason != reason || last.Actor != alarms.ActorSystem || got.State != inc.State {
			t.Errorf("note: %+v in state %s", last, got.State)
		}
		seen := false
		for !seen {
			select {
			case ch := <-changes:
				seen = ch.Incident.ID == inc.ID && ch.Entry.Action == "evidence" && ch.Entry.Reason == reason
			case <-time.After(failAfter):
				t.Fatal("the note was not announced")
			}
		}
		if _, err := s.eng.Note(t.Context(), "inc-none", "evidence", reason); !errors.Is(err, alarms.ErrNotFound) {
			t.Errorf("note on an unknown incident: %v", err)
		}
		if _, err := s.eng.Note(t.Context(), inc.ID, "", reason); !errors.Is(err, alarms.ErrInvalidAction) {
			t.Errorf("note without an action: %v", err)
		}

		// A closed incident takes notes too (a clip may complete after it).
		if _, err := s.eng.Act(t.Context(), inc.ID, alarms.Action{Kind: alarms.ActCancel, Actor: "alice", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		if got, err = s.eng.Note(t.Context(), inc.ID, "evidence", "after"); err != nil || got.State != alarms.StateCancelled {
			t.Fatalf("note on a cancelled incident: %v %s", err, got.State)
		}

		// Up to the timeline's bound, and no further, but still announced.
		past := make(chan struct{})
		go func() {
			for ch := range changes {
				if ch.Incident.ID == inc.ID && ch.Entry.Reason == "n501" {
					close(past)
					return
				}
			}
		}()
		// Concurrent notes share store writes (the engine groups them).
		var wg sync.WaitGroup
		for w := range 20 {
			wg.Go(func() {
				for i := w; i < 500; i += 20 {
					if _, err := s.eng.Note(t.Context(), inc.ID, "evidence", fmt.Sprint("fill", i)); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if got, err = s.eng.Note(t.Context(), inc.ID, "evidence", "n501"); err != nil {
			t.Fatal(err)
		}
		if len(got.Timeline) != 500 {
			t.Errorf("timeline of %d entries, want the bound of 500", len(got.Timeline))
		}
		select {
		case <-past:
		case <-time.After(failAfter):
			t.Fatal("a note past the bound was not announced")
		}

		// Saved: a restarted engine reads it back.
		s.close()
		_ = st.Close()
		s = startSystem(t, cfg, open())
		stored, err := s.eng.Incident(t.Context(), inc.ID)
		if err != nil || len(stored.Timeline) != 500 || stored.State != alarms.StateCancelled {
			t.Errorf("after a restart: %v, %d entries", err, len(stored.Timeline))
		}
	})
}

// A camera's fault opens a maintenance incident in the camera's area that
// names the camera and the reason; another fault joins it; the recovery
// is a restore that leaves it open, also after a restart.
func TestEngineCameraTrouble(t *testing.T) {
	eachStorage(t, func(t *testing.T, open func() fullStore) {
		cfg := incidentConfig(t)
		sites := append(testCameras(), alarms.CameraSite{ID: "cam-v2", Area: "v2", Lat: 30.01, Lon: 120.01})
		st := open()
		s := startWithSites(t, cfg, st, sites)
		if _, err := s.eng.CameraRestored(t.Context(), "cam-v2", "recording again"); !errors.Is(err, alarms.ErrNotFound) {
			t.Errorf("restored without a trouble: %v", err)
		}
		inc, err := s.eng.CameraTrouble(t.Context(), "cam-v2", "recording stopped: no space")
		if err != nil {
			t.Fatal(err)
		}
		if inc.Kind != alarms.KindMaintenance || inc.Class != alarms.ClassTrouble || inc.Area != "v2" ||
			inc.Lat != 30.01 || inc.State != alarms.StateNew || len(inc.Cameras) != 1 || inc.Cameras[0].ID != "cam-v2" ||
			!strings.Contains(inc.Timeline[0].Reason, "cam-v2") || !strings.Contains(inc.Timeline[0].Reason, "no space") {
			t.Fatalf("camera trouble: %+v", inc)
		}
		again, err := s.eng.CameraTrouble(t.Context(), "cam-v2", "disk error")
		if err != nil || again.ID != inc.ID || again.Count != 2 {
			t.Fatalf("second fault: %v %+v", err, again)
		}
		other, err := s.eng.CameraTrouble(t.Context(), "cam-50", "disk error")
		if err != nil || other.ID == inc.ID {
			t.Fatalf("another camera's fault: %v, same incident %v", err, other.ID == inc.ID)
		}

		s.close()
		_ = st.Close()
		s = startWithSites(t, cfg, open(), sites)
		got, err := s.eng.CameraRestored(t.Context(), "cam-v2", "recording again")
		if err != nil || got.ID != inc.ID || got.Restores != 1 || !got.State.Open() {
			t.Fatalf("restored after a restart: %v %+v", err, got)
		}
		if last := got.Timeline[len(got.Timeline)-1]; last.Action != "restore" || !strings.Contains(last.Reason, "recording again") {
			t.Errorf("restore entry %+v", last)
		}
		// A device's maintenance incident is not the camera's.
		page, err := s.eng.Incidents(t.Context(), alarms.IncidentQuery{Open: true, Kind: alarms.KindMaintenance})
		if err != nil || len(page.Incidents) != 2 {
			t.Errorf("open maintenance incidents: %v %d, want 2", err, len(page.Incidents))
		}
	})
}
