// Package ingest pulls RTSP video from cameras and fans it out to readers.
//
// The media graph has four names: a source supervises one camera connection
// (connect, read, reconnect with backoff); a stream fans the camera's access
// units out to readers and keeps the latest keyframe group so that a new
// reader starts with a decodable picture at once; a Reader owns a bounded
// queue and, when it cannot keep up, drops to the next keyframe and counts
// what it dropped. A Manager owns every camera and is the package's entry
// point.
//
// A camera has a main (full resolution) stream and may have a sub (low
// resolution) stream. Each is a source and stream of its own, pulled on
// demand by its own readers (Manager.AddReader, Manager.AddSubReader), or
// held pulled until a deadline without readers (Manager.Hold) so that the
// first reader to come finds a keyframe in the cache.
//
// Manager.Apply changes the cameras in place: unchanged ones keep their
// sessions and readers, removed and changed ones end their readers with
// ErrCameraRemoved or ErrCameraChanged.
//
// ingest imports no other Skywatch package.
package ingest
