package alarms

import (
	"context"
	"fmt"
	"time"
)

// Notes from other parts of the server: the recorder's clips and camera
// faults reach incidents through these, as plain strings (alarms does not
// know the recorder).

// CameraDevicePrefix starts the Device of a camera's maintenance incident
// ("camera:cam-1"): no alarm device ID has a colon, so a camera's trouble
// never joins a device's.
const CameraDevicePrefix = "camera:"

// maxNote bounds a note's action and reason.
const maxNote = 1024

// Note appends a system entry (action, reason) to an incident's timeline,
// open or not, saved and announced like the engine's own changes. An
// incident whose timeline is full (maxTimeline) gets the change announced
// but not kept. It returns the incident after it, or an error wrapping
// ErrNotFound.
func (e *Engine) Note(ctx context.Context, incidentID, action, reason string) (Incident, error) {
	if action == "" || len(action) > 64 || len(reason) > maxNote {
		return Incident{}, fmt.Errorf("incident %s: note: action of 1 to 64 bytes and reason of at most %d: %w",
			incidentID, maxNote, ErrInvalidAction)
	}
	if e.cl != nil {
		return e.forwardIncident(ctx, command{Op: opNote, Incident: incidentID, NoteAction: action, Note: reason})
	}
	return e.note(ctx, "", incidentID, action, reason)
}

func (e *Engine) note(ctx context.Context, cmd, incidentID, action, reason string) (Incident, error) {
	var (
		p   *Incident
		err error
	)
	if cerr := e.callFor(ctx, cmd, func(ctx context.Context, t *txn) bool {
		p, err = t.editID(ctx, incidentID)
		if err != nil {
			p = nil
			return false
		}
		t.noteOrAnnounce(p, action, reason)
		return true
	}); cerr != nil {
		return Incident{}, fmt.Errorf("incident %s: note %s: %w", incidentID, action, cerr)
	}
	if p == nil {
		return Incident{}, err
	}
	return *p.clone(), nil
}

// noteOrAnnounce adds a system entry to the timeline, or, when it is full,
// only announces it.
func (t *txn) noteOrAnnounce(inc *Incident, action, reason string) {
	if len(inc.Timeline) < maxTimeline {
		t.note(inc, action, ActorSystem, reason, "")
		return
	}
	w := t.work[inc.ID]
	w.extra = append(w.extra, TimelineEntry{At: t.now, Action: action, Actor: ActorSystem, Reason: reason})
}

// CameraTrouble opens a maintenance incident (class trouble) for a camera
// that has a fault, in the camera's area and at its place, naming the
// camera and the reason; a fault of a camera whose incident is still open
// joins it. It returns the incident.
func (e *Engine) CameraTrouble(ctx context.Context, cameraID, reason string) (Incident, error) {
	if cameraID == "" || len(cameraID) > 128 || len(reason) > maxNote {
		return Incident{}, fmt.Errorf("camera trouble: camera id of 1 to 128 bytes and reason of at most %d: %w", maxNote, ErrInvalidAction)
	}
	if e.cl != nil {
		return e.forwardIncident(ctx, command{Op: opCameraTrouble, Camera: cameraID, Note: reason})
	}
	return e.cameraTroubleLocal(ctx, "", cameraID, reason)
}

func (e *Engine) cameraTroubleLocal(ctx context.Context, cmd, cameraID, reason string) (Incident, error) {
	var p *Incident
	if err := e.callFor(ctx, cmd, func(ctx context.Context, t *txn) bool {
		p = t.s.cameraTrouble(t, cameraID, reason)
		return true
	}); err != nil {
		return Incident{}, fmt.Errorf("camera %s trouble: %w", cameraID, err)
	}
	return *p.clone(), nil
}

// CameraRestored notes on a camera's open maintenance incident that the
// fault is over (a restore, as a device's: it does not close the ticket).
// It returns the incident, or an error wrapping ErrNotFound when none is
// open.
func (e *Engine) CameraRestored(ctx context.Context, cameraID, reason string) (Incident, error) {
	if len(reason) > maxNote {
		return Incident{}, fmt.Errorf("camera restored: reason of at most %d: %w", maxNote, ErrInvalidAction)
	}
	if e.cl != nil {
		return e.forwardIncident(ctx, command{Op: opCameraRestored, Camera: cameraID, Note: reason})
	}
	return e.cameraRestored(ctx, "", cameraID, reason)
}

func (e *Engine) cameraRestored(ctx context.Context, cmd, cameraID, reason string) (Incident, error) {
	var p *Incident
	if err := e.callFor(ctx, cmd, func(ctx context.Context, t *txn) bool {
		p = t.openFor(CameraDevicePrefix+cameraID, KindMaintenance)
		if p == nil {
			return false
		}
		p.Restores++
		t.noteOrAnnounce(p, "restore", "camera "+cameraID+": "+reason)
		return true
	}); err != nil {
		return Incident{}, fmt.Errorf("camera %s restored: %w", cameraID, err)
	}
	if p == nil {
		return Incident{}, fmt.Errorf("camera %s has no open maintenance incident: %w", cameraID, ErrNotFound)
	}
	return *p.clone(), nil
}

// cameraTrouble opens or joins a camera's maintenance incident.
func (s *engineState) cameraTrouble(t *txn, cameraID, reason string) *Incident {
	device := CameraDevicePrefix + cameraID
	line := "camera " + cameraID + ": " + reason
	if inc := t.openFor(device, KindMaintenance); inc != nil {
		inc.Count++
		inc.Last = t.now
		t.noteOrAnnounce(inc, "joined", line)
		return inc
	}
	inc := &Incident{ID: cameraIncidentID(cameraID, t.now), Kind: KindMaintenance, State: StateNew,
		Priority: s.e.conf().routing.priority(ClassTrouble), Class: ClassTrouble, Classes: []Class{ClassTrouble},
		Device: device, DeviceName: "camera " + cameraID, Count: 1, First: t.now, Last: t.now, Created: t.now,
		Cameras: []IncidentCamera{{ID: cameraID, Linked: true}}}
	for _, site := range s.e.conf().cameras {
		if site.ID == cameraID {
			inc.Area, inc.Lat, inc.Lon = site.Area, site.Lat, site.Lon
		}
	}
	if inc.Area == "" {
		inc.Area, _ = s.e.conf().tree.Locate(inc.Lat, inc.Lon)
	}
	inc.Timeline = []TimelineEntry{{At: t.now, Action: "opened", To: StateNew, Actor: ActorSystem,
		Reason: "maintenance: " + line}}
	t.add(inc)
	return inc
}

// cameraIncidentID is a camera trouble's incident ID: from the camera and
// the moment, as a device's is from its event.
func cameraIncidentID(cameraID string, now time.Time) string {
	id := contentID([]byte(CameraDevicePrefix+cameraID+"\x00"+now.UTC().Format(time.RFC3339Nano)), 0)
	return "inc-" + now.UTC().Format("20060102") + "-" + id[2:18]
}
