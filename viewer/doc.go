// Package viewer is Skywatch's HTTP face: WHEP (RFC 9725) sessions that relay
// a camera's RTP to a browser over WebRTC, the REST API that lists cameras
// and their state, the alarm API (stored events, devices, rejected messages,
// the intake's health, and live events over Server-Sent Events), the
// incident API (incidents, operator actions, units, areas), the patrol
// officers' page and its API, health and metrics endpoints, and the
// operator page.
//
// viewer reaches the video pipeline and the alarm intake only through the
// small interfaces it declares (CameraSource, MediaReader, AlarmSource,
// IncidentSource, PatrolSource); it shares ingest's and alarms' plain data
// types (Track, Unit, CameraState, Event, DeviceView, Incident, UnitView)
// but no behaviour.
package viewer
