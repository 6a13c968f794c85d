// Package viewer is Skywatch's HTTP face: WHEP (RFC 9725) sessions that relay
// a camera's RTP to a browser over WebRTC, the REST API that lists cameras
// and their state, the alarm API (stored events, devices, rejected messages,
// the intake's health, and live events over Server-Sent Events), the
// incident API (incidents, operator actions, units, areas), the patrol
// officers' page and its API, health and metrics endpoints, and the
// operator page.
//
// People log in to the console (a session cookie and a CSRF token);
// programs such as video-wall decoders and WHEP players send an API token
// (Authorization: Bearer), which may watch video and read the API but never
// change anything.
//
// viewer reaches the video pipeline and the alarm intake only through the
// small interfaces it declares (CameraSource, MediaReader, AlarmSource,
// IncidentSource, PatrolSource); it shares ingest's and alarms' plain data
// types (Track, Unit, CameraState, Event, DeviceView, Incident, UnitView)
// but no behaviour.
package viewer
