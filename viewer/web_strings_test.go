package viewer

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/ingest"
	rec "github.com/skywatch/skywatch/recorder"
)

// pageStrings reads the keys that the page's files add with
// Skywatch.addStrings, by language. The files keep one shape: a
// "'zh-CN': {" line, then an "en: {" line, each block closed by a "}," of
// its own, one "'key': ..." per line.
func pageStrings(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{"zh-CN": {}, "en": {}}
	opening := regexp.MustCompile(`^\s*(?:'(zh-CN)'|(en)): \{$`)
	key := regexp.MustCompile(`^\s*'([^']+)':`)
	files, err := fs.Glob(webFiles, "web/*.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("no page scripts: %v", err)
	}
	for _, name := range files {
		data, err := webFiles.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lang := ""
		for _, line := range strings.Split(string(data), "\n") {
			if m := opening.FindStringSubmatch(line); m != nil {
				lang = m[1] + m[2]
				continue
			}
			if lang == "" {
				continue
			}
			if strings.TrimSpace(line) == "}," {
				lang = ""
				continue
			}
			if m := key.FindStringSubmatch(line); m != nil {
				out[lang][m[1]] = true
			}
		}
	}
	for lang, keys := range out {
		if len(keys) < 100 {
			t.Fatalf("read only %d strings of %s from the page: the reader is broken", len(keys), lang)
		}
	}
	return out
}

// timelineActions lists every action the incident engine writes into a
// timeline entry: its operator actions and unit replies, and the names
// its source passes to note, transition or a TimelineEntry literal. The
// source is read (not imported) so that a new kind of entry cannot be
// added without the page learning its name.
func timelineActions(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, k := range []alarms.ActionKind{alarms.ActAcknowledge, alarms.ActOffer, alarms.ActAssign, alarms.ActReoffer,
		alarms.ActCancel, alarms.ActResolve, alarms.ActClose} {
		out = append(out, string(k))
	}
	for _, r := range []alarms.ReplyAction{alarms.ReplyAccept, alarms.ReplyDecline, alarms.ReplyEnRoute, alarms.ReplyArrived,
		alarms.ReplyCleared, alarms.ReplyFalseAlarm} {
		out = append(out, string(r))
	}
	files, err := filepath.Glob(filepath.Join("..", "alarms", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no engine source to read: %v", err)
	}
	written := regexp.MustCompile(`\bnote\(\w+, "(\w+)"|\btransition\(\w+, [^,]+, "(\w+)"|TimelineEntry\{[^}]*Action: "(\w+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range written.FindAllStringSubmatch(string(data), -1) {
			out = append(out, m[1]+m[2]+m[3])
		}
	}
	// Lines that cmd/skywatch puts on timelines through the engine's Note
	// (an evidence clip complete or failed).
	notes, err := filepath.Glob(filepath.Join("..", "cmd", "skywatch", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	noted := regexp.MustCompile(`\.Note\(\w+, [^,]+, "(\w+)"`)
	for _, f := range notes {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range noted.FindAllStringSubmatch(string(data), -1) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	// The reading finds what is known to be there.
	for _, known := range []string{"opened", "joined", "restore", "event", "escalated", "no_unit", "new_round", "awaiting_operator", "timeout", "evidence"} {
		if !slices.Contains(out, known) {
			t.Fatalf("the engine's source no longer shows timeline action %q (found %v): update this test", known, out)
		}
	}
	return out
}

// TestPageTranslatesServerValues: every value of an enumeration the server
// sends to the console (incident states and kinds of timeline entry,
// event classes and qualifiers, unit statuses and kinds, dispositions,
// operator actions, camera statuses and reasons of failure, recording
// states and clip statuses) has a Chinese and an English string.
func TestPageTranslatesServerValues(t *testing.T) {
	have := pageStrings(t)
	var want []string
	add := func(prefix string, values ...string) {
		for _, v := range values {
			want = append(want, prefix+v)
		}
	}
	for _, a := range timelineActions(t) {
		add("tl.", a)
	}
	for _, s := range []alarms.IncidentState{alarms.StateNew, alarms.StateAcknowledged, alarms.StateOffered, alarms.StateDispatched,
		alarms.StateEnRoute, alarms.StateOnScene, alarms.StateResolved, alarms.StateClosed, alarms.StateCancelled} {
		add("istate.", string(s))
	}
	for _, c := range []alarms.Class{alarms.ClassAlarm, alarms.ClassPanic, alarms.ClassFire, alarms.ClassTamper, alarms.ClassTrouble,
		alarms.ClassSupervision, alarms.ClassArm, alarms.ClassDisarm, alarms.ClassTest} {
		add("class.", string(c))
	}
	for _, q := range []alarms.Qualifier{alarms.QualifierNew, alarms.QualifierRestore} {
		add("qualifier.", string(q))
	}
	for _, s := range []alarms.UnitStatus{alarms.UnitAvailable, alarms.UnitOffered, alarms.UnitBusy, alarms.UnitOffDuty, alarms.UnitUnavailable} {
		add("ustatus.", string(s))
	}
	for _, k := range []alarms.UnitKind{alarms.UnitPatrolCar, alarms.UnitFootPatrol, alarms.UnitVolunteerPatrol, alarms.UnitGridManager} {
		add("ukind.", string(k))
	}
	for _, d := range []alarms.Disposition{alarms.DispGenuine, alarms.DispFalseEquipment, alarms.DispFalseUser, alarms.DispUnfounded, alarms.DispDuplicate} {
		add("disp.", string(d))
	}
	for _, k := range []alarms.ActionKind{alarms.ActAcknowledge, alarms.ActOffer, alarms.ActAssign, alarms.ActReoffer,
		alarms.ActCancel, alarms.ActResolve, alarms.ActClose} {
		add("action.", string(k))
		add("action.done.", string(k))
	}
	for _, s := range []ingest.Status{ingest.StatusOffline, ingest.StatusConnecting, ingest.StatusOnline, ingest.StatusRetrying} {
		add("camera.status.", string(s))
	}
	// Why a camera is unavailable: the page says it, the server sends only
	// the code.
	for _, r := range ingest.Reasons() {
		add("camera.error.", string(r))
	}
	// Recording: a camera's recording state and an evidence clip's status.
	add("pb.recState.", rec.StateOff, rec.StateRecording, rec.StateWaiting, rec.StateStopped)
	for _, st := range []rec.ClipStatus{rec.ClipRecording, rec.ClipComplete, rec.ClipFailed} {
		add("clip.status.", string(st))
	}
	add("player.state.", "playback")
	for _, key := range want {
		for _, lang := range []string{"zh-CN", "en"} {
			if !have[lang][key] {
				t.Errorf("the page has no %s string %q", lang, key)
			}
		}
	}
}
