// Package e2e holds end-to-end tests of the video path: a simulated RTSP
// camera (hardware), the ingest manager pulling it, the viewer serving WHEP,
// and a pion WebRTC viewer, all on loopback.
package e2e
