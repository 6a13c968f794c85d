package redisstore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/internal/testredis"
)

// format1Keys writes keys of today's layout through the store and then
// removes the format marker: keys as format 1 left them.
func format1Keys(t *testing.T, cfg Config) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for i := range 5 {
		e := &alarms.Event{ID: "e" + strconv.Itoa(i), Device: "dev-a1", Area: "county/east", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, ReceivedAt: at.Add(time.Duration(i) * time.Minute)}
		if _, err := s.AppendEvent(ctx, e, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutDevice(ctx, alarms.DeviceState{ID: "dev-a1", Online: true, LastSeen: at}); err != nil {
		t.Fatal(err)
	}
	inc := alarms.Incident{ID: "inc-1", Kind: alarms.KindResponse, State: alarms.StateNew, Class: alarms.ClassAlarm, Device: "dev-a1", Area: "county/east", Created: at, Version: 1,
		Timeline: []alarms.TimelineEntry{{At: at, Action: "open", To: alarms.StateNew, Actor: "system"}}}
	if err := s.SaveIncidents(ctx, []alarms.Incident{inc}, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUnit(ctx, alarms.UnitState{ID: "patrol-1", Lat: 30.66, Lon: 104.06, Reported: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.Del(ctx, cfg.KeyPrefix+FormatKey).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestFormat1Stamped(t *testing.T) {
	url := testredis.URL(t)
	cfg := Config{URL: url, KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")}
	format1Keys(t, cfg)
	ctx := context.Background()

	// Nodes starting at once: one stamps, the others read its stamp.
	const nodes = 6
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		migrated int
	)
	for range nodes {
		wg.Go(func() {
			s, err := Open(ctx, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			if m := s.Migration(); m != nil {
				if m.From != 1 || m.To != FormatVersion {
					t.Errorf("migration %+v", *m)
				}
				mu.Lock()
				migrated++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if migrated != 1 {
		t.Errorf("%d of %d nodes migrated, want 1", migrated, nodes)
	}

	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Migration() != nil {
		t.Error("a stamped prefix migrated again")
	}
	if v, err := s.rdb.HGet(ctx, cfg.KeyPrefix+FormatKey, "alarms").Result(); err != nil || v != strconv.Itoa(FormatVersion) {
		t.Errorf("format field %q, %v", v, err)
	}
	page, err := s.Events(ctx, alarms.EventQuery{Device: "dev-a1"})
	if err != nil || len(page.Events) != 5 || page.Events[0].ID != "e4" {
		t.Errorf("events after stamping: %+v, %v", page.Events, err)
	}
	if inc, err := s.OpenIncident(ctx, "dev-a1", alarms.KindResponse); err != nil || inc.ID != "inc-1" {
		t.Errorf("open incident: %+v, %v", inc, err)
	}
	if d, err := s.Device(ctx, "dev-a1"); err != nil || !d.Online {
		t.Errorf("device: %+v, %v", d, err)
	}
	if units, err := s.Units(ctx); err != nil || len(units) != 1 {
		t.Errorf("units: %+v, %v", units, err)
	}
}

func TestNewPrefixStamped(t *testing.T) {
	url := testredis.URL(t)
	cfg := Config{URL: url, KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")}
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Migration() != nil {
		t.Errorf("a new prefix migrated: %+v", *s.Migration())
	}
	if v, _ := s.rdb.HGet(ctx, cfg.KeyPrefix+FormatKey, "alarms").Result(); v != strconv.Itoa(FormatVersion) {
		t.Errorf("format field %q", v)
	}
}

func TestNewerFormatRefused(t *testing.T) {
	url := testredis.URL(t)
	cfg := Config{URL: url, KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")}
	format1Keys(t, cfg)
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.HSet(ctx, cfg.KeyPrefix+FormatKey, "alarms", FormatVersion+1).Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, cfg)
	if !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("open newer keys: %v", err)
	}
	want := `redis store: key prefix "` + cfg.KeyPrefix + `": format 3 is newer than this Skywatch reads (2): run the newer Skywatch, or restore a backup taken by this version`
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
