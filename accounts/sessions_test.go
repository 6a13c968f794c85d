package accounts

import (
	"testing"
	"time"
)

func testSessions(t *testing.T, open func() store) {
	ctx := t.Context()
	s := openT(t, open)
	if got, err := s.Sessions(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	a := Session{Key: "k-a", Username: "duty", Addr: "10.0.0.5", Created: at, LastSeen: at, Fingerprint: "f-a"}
	b := Session{Key: "k-b", Username: "admin", Created: at, LastSeen: at}
	for _, x := range []Session{b, a} {
		if err := s.SaveSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	a.LastSeen = at.Add(time.Minute)
	if err := s.SaveSession(ctx, a); err != nil { // replaces
		t.Fatal(err)
	}
	if err := s.SaveSession(ctx, Session{Username: "x"}); err == nil {
		t.Error("a session without a key was saved")
	}
	if err := s.DeleteSession(ctx, "k-b"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, "unknown"); err != nil {
		t.Errorf("delete unknown: %v", err)
	}
	// What a restart finds.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, open)
	got, err := s2.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "k-a" || got[0].Username != "duty" || got[0].Addr != "10.0.0.5" || got[0].Fingerprint != "f-a" ||
		!got[0].LastSeen.Equal(a.LastSeen) || !got[0].Created.Equal(at) {
		t.Errorf("after reopening: %+v", got)
	}
}
