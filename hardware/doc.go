// Package hardware holds Skywatch's knowledge of field devices and the
// simulators that stand in for them.
//
// For video it has camera vendor profiles, which build the RTSP URL that a
// Hikvision, Dahua or Uniview camera serves for a channel and stream, and a
// simulated RTSP camera (Camera) that loops embedded H.264 test clips in real
// time, optionally with a G.711 tone and digest authentication. The demo, the
// load tests and the end-to-end tests of ingest and viewer use the simulator
// in place of real cameras.
package hardware
