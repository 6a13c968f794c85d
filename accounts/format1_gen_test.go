package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

// The committed testdata/records-format1 directory was written by the
// FileStore of its time (format 1, before the directory carried a
// version) through its own methods; testdata/records-format1.json is what
// that code read back. To write them again (only with format-1 code):
//
//	SKYWATCH_WRITE_FORMAT1=1 go test ./accounts -run TestWriteRecordsFormat1
const (
	records1Dir  = "testdata/records-format1"
	records1Dump = "testdata/records-format1.json"
)

// recordsDump is everything a records store holds, as its methods read it.
type recordsDump struct {
	Audit    []AuditRecord              `json:"audit"` // newest first
	Prefs    map[string]json.RawMessage `json:"prefs"`
	Sessions []Session                  `json:"sessions"`
	Tokens   []Token                    `json:"tokens"`
}

var records1Users = []string{"admin", "op-east", "Op-West"}

func dumpRecords(t *testing.T, s *FileStore) recordsDump {
	t.Helper()
	ctx := context.Background()
	d := recordsDump{Prefs: map[string]json.RawMessage{}}
	for cursor := ""; ; {
		page, err := s.QueryAudit(ctx, AuditQuery{Limit: 4, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		d.Audit = append(d.Audit, page.Records...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	for _, u := range records1Users {
		p, err := s.Prefs(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if p != nil {
			d.Prefs[u] = p
		}
	}
	var err error
	if d.Sessions, err = s.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
	if d.Tokens, err = s.Tokens(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestWriteRecordsFormat1 writes the format-1 records directory.
func TestWriteRecordsFormat1(t *testing.T) {
	if os.Getenv("SKYWATCH_WRITE_FORMAT1") == "" {
		t.Skip("set SKYWATCH_WRITE_FORMAT1=1 to write " + records1Dir + " (with format-1 code only)")
	}
	ctx := context.Background()
	if err := os.RemoveAll(records1Dir); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFileStore(records1Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	recs := []AuditRecord{
		{Time: at(0), User: "admin", Role: "admin", Addr: "10.1.0.5", Action: AuditLogin, Outcome: "ok"},
		{Time: at(1), User: "op-east", Role: "operator", Addr: "10.1.0.7", Action: AuditLoginFailed, Outcome: "bad password"},
		{Time: at(2), User: "op-east", Role: "operator", Addr: "10.1.0.7", Action: AuditLogin, Outcome: "ok"},
		{Time: at(3), User: "op-east", Role: "operator", Addr: "10.1.0.7", Action: AuditWatch, Target: "camera:cam-east-1", Outcome: "ok", Start: at(3), End: at(9)},
		{Time: at(10), User: "op-east", Role: "operator", Addr: "10.1.0.7", Action: AuditIncidentAction, Target: "incident:inc-0001", Outcome: "ok", Detail: "offer patrol-1"},
		{Time: at(11), User: "admin", Role: "admin", Addr: "10.1.0.5", Action: AuditTokenCreated, Target: "token:wall-1", Outcome: "ok"},
		{Time: at(12), User: "op-west", Role: "supervisor", Addr: "10.2.0.3", Action: AuditDenied, Target: "camera:cam-east-1", Outcome: "out of scope", Detail: "GET /api/cameras/cam-east-1"},
	}
	for _, r := range recs {
		if err := s.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPrefs(ctx, "op-east", json.RawMessage(`{"wall":{"layout":"3x3","cameras":["cam-east-1","cam-east-2"]},"sound":true}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPrefs(ctx, "Op-West", json.RawMessage(`{"wall":{"layout":"2x2"},"note":"<b>night</b> & day"}`)); err != nil {
		t.Fatal(err)
	}
	for i, u := range records1Users {
		sess := Session{Key: fmt.Sprintf("%064x", i+1), Username: u, Addr: fmt.Sprintf("10.1.0.%d", 5+i), Created: at(i), LastSeen: at(20 + i), Fingerprint: fmt.Sprintf("fp%d", i)}
		if err := s.SaveSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	for i, tok := range []Token{
		{Name: "wall-1", Role: RoleViewer, Area: "county/east", Cameras: []string{"cam-east-1", "cam-east-2"}, Description: "video wall, east hall", Created: at(11), CreatedBy: "admin"},
		{Name: "Integration", Role: RoleOperator, Area: "county", Expires: at(60 * 24 * 365), Created: at(12), CreatedBy: "admin"},
	} {
		tok.SHA256 = TokenSum(fmt.Sprintf("swt_format1_token_%d", i))
		if err := s.SaveToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TouchToken(ctx, "wall-1", at(30), 17); err != nil {
		t.Fatal(err)
	}
	d := dumpRecords(t, s)
	data, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(records1Dump, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d audit records, %d prefs, %d sessions, %d tokens", len(d.Audit), len(d.Prefs), len(d.Sessions), len(d.Tokens))
}
