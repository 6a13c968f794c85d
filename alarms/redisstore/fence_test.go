package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/internal/testredis"
)

// The engine's fenced writes and streams (cluster mode only: the bolt
// store serves one node and has none of this, so they are not in storetest).
func TestFencedWritesAndStreams(t *testing.T) {
	url := testredis.URL(t)
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	ctx := context.Background()
	s, err := Open(ctx, Config{URL: url, KeyPrefix: prefix, EngineFeedMax: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := alarms.Fence{Key: prefix + "cluster:lease:engine", Value: "a/1"}

	// No lease: nothing is written.
	inc := alarms.Incident{ID: "i1", Version: 1, State: alarms.StateNew, Device: "d1", Kind: alarms.KindResponse, Created: time.Now()}
	if _, err := s.SaveFenced(ctx, f, alarms.FencedSave{Incidents: []alarms.Incident{inc}, Cursor: "1-1"}); !errors.Is(err, alarms.ErrFenced) {
		t.Fatalf("save without the lease: %v, want ErrFenced", err)
	}
	if _, err := s.Incident(ctx, "i1"); !errors.Is(err, alarms.ErrNotFound) {
		t.Fatalf("incident after a fenced-out save: %v", err)
	}
	if err := s.rdb.Set(ctx, f.Key, f.Value, 0).Err(); err != nil {
		t.Fatal(err)
	}

	// Under the lease: incidents, both cursors, the outbox and the feed at once.
	msgs := []alarms.OutboxMessage{{Unit: "u1", Msg: alarms.DispatchMessage{Type: "offer", ID: "i1:v1:u1", Incident: "i1"}},
		{Unit: "u2", Msg: alarms.DispatchMessage{Type: "withdrawn", ID: "i1:v1:u2", Incident: "i1"}}}
	tail, err := s.FeedTail(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := s.SaveFenced(ctx, f, alarms.FencedSave{Incidents: []alarms.Incident{inc}, Cursor: "1-1", Commands: "2-2",
		Outbox: msgs, Feed: []alarms.FeedItem{{Data: []byte(`{"n":1}`)}, {Unit: "u1", Data: []byte(`{"n":2}`)}}})
	if err != nil || len(ids) != 2 {
		t.Fatalf("save: %v, %v", ids, err)
	}
	if c, _ := s.IncidentCursor(ctx); c != "1-1" {
		t.Errorf("cursor %q", c)
	}
	if c, _ := s.CommandCursor(ctx); c != "2-2" {
		t.Errorf("command cursor %q", c)
	}
	left, err := s.Outbox(ctx)
	if err != nil || len(left) != 2 || left[0].Entry != ids[0] || left[0].Msg.ID != "i1:v1:u1" || left[1].Unit != "u2" {
		t.Fatalf("outbox %+v, %v", left, err)
	}
	if err := s.RemoveOutbox(ctx, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if left, _ = s.Outbox(ctx); len(left) != 1 || left[0].Entry != ids[1] {
		t.Errorf("outbox after a removal: %+v", left)
	}
	items, err := s.ReadFeed(ctx, tail, 10, 0)
	if err != nil || len(items) != 2 || string(items[0].Data) != `{"n":1}` || items[1].Unit != "u1" {
		t.Fatalf("feed %+v, %v", items, err)
	}
	// A version conflict writes nothing either.
	if _, err := s.SaveFenced(ctx, f, alarms.FencedSave{Incidents: []alarms.Incident{inc}, Commands: "3-3"}); !errors.Is(err, alarms.ErrConflict) {
		t.Errorf("stale version: %v, want ErrConflict", err)
	}
	if c, _ := s.CommandCursor(ctx); c != "2-2" {
		t.Errorf("command cursor after a conflict %q", c)
	}
	if err := s.PutUnitFenced(ctx, f, alarms.UnitState{ID: "u1", Lat: 30, Lon: 120}); err != nil {
		t.Fatal(err)
	}
	if near, err := s.NearestUnits(ctx, 30, 120, 0, 0); err != nil || len(near) != 1 {
		t.Errorf("nearest after a fenced put: %v, %v", near, err)
	}

	// Commands and replies.
	id1, err := s.SendCommand(ctx, []byte("c1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendCommand(ctx, []byte("c2")); err != nil {
		t.Fatal(err)
	}
	cmds, err := s.ReadCommands(ctx, "", 10, 0)
	if err != nil || len(cmds) != 2 || cmds[0].ID != id1 || string(cmds[1].Data) != "c2" {
		t.Fatalf("commands %+v, %v", cmds, err)
	}
	if cmds, err = s.ReadCommands(ctx, cmds[1].ID, 10, 100*time.Millisecond); err != nil || len(cmds) != 0 {
		t.Fatalf("no more commands: %+v, %v", cmds, err)
	}
	if err := s.Reply(ctx, "k1", []byte("answer"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if b, err := s.AwaitReply(ctx, "k1", time.Second); err != nil || string(b) != "answer" {
		t.Errorf("reply %q, %v", b, err)
	}
	if b, err := s.AwaitReply(ctx, "k2", time.Second); err != nil || b != nil {
		t.Errorf("no reply: %q, %v", b, err)
	}
	// The feed is bounded, and a reader that lagged past the trimming is
	// told.
	for range 300 {
		if err := s.PublishFeed(ctx, []alarms.FeedItem{{Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.rdb.XLen(ctx, prefix+"eng:feed").Val(); n > 150 {
		t.Errorf("feed of %d entries, bounded to about 5", n)
	}
	if items, err = s.ReadFeed(ctx, items[0].ID, 10, 0); err != nil || len(items) != 10 || !items[0].Gap || items[1].Gap {
		t.Errorf("lagging read: %+v, %v: want a gap on the first item", items, err)
	}
	tail, _ = s.FeedTail(ctx)
	for range 20 {
		_ = s.PublishFeed(ctx, []alarms.FeedItem{{Data: []byte("y")}})
	}
	if items, err = s.ReadFeed(ctx, tail, 10, 0); err != nil || len(items) != 10 || items[0].Gap {
		t.Errorf("read in time: %+v, %v: want no gap", items, err)
	}
}
