// Package recorder records cameras to disk and keeps alarm evidence.
//
// It is a reader of ingest, like a viewer: for each camera whose record mode
// is not off it holds ingest readers open (so the camera is pulled always),
// and it never imports viewer or alarms. Two parts share the package:
//
//   - segments: continuous recording ("always") into keyframe-aligned
//     fragmented MP4 segments under Config.Path, an index of what was
//     recorded (Spans), exports of a span as one MP4 (Export), and rolling
//     retention by age and by space, oldest first across cameras.
//   - evidence: a pre-alarm ring of the last Config.PreAlarm of every camera
//     that records ("always" or "alarms"), and evidence clips of incidents
//     (StartClips, ExtendClips, EndIncident), each a file of its own with a
//     SHA-256, kept EvidenceKeep after its incident ended whatever the
//     rolling retention deletes.
//
// Incidents reach the recorder through cmd/skywatch; what the recorder has
// to say back (a clip is complete, a camera's recording failed) comes out of
// Notices.
package recorder
