// Package viewer is Skywatch's HTTP face: WHEP (RFC 9725) sessions that relay
// a camera's RTP to a browser over WebRTC, the REST API that lists cameras
// and their state, health and metrics endpoints, and the operator page.
//
// viewer reaches the video pipeline only through the small interfaces it
// declares (CameraSource, MediaReader); it shares ingest's plain data types
// (Track, Unit, CameraState) but no ingest behaviour.
package viewer
