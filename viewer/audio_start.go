package viewer

import (
	"time"

	"github.com/skywatch/skywatch/ingest"
)

// audioStart keeps a session's sound live from its first packet. The reader
// starts on the camera's cached keyframe group, seconds of it, so that the
// first picture comes at once; the group's sound, sent in the same burst,
// would fill the browser's audio jitter buffer with seconds of stale sound,
// which it plays out slowly, and lip sync then holds the picture back by as
// much. So a session sends only the sound that reached the server after its
// viewer connected; the picture's burst goes out whole.
type audioStart struct {
	audio []bool    // by track index
	from  time.Time // audio received before this is not sent
}

func newAudioStart(tracks []ingest.Track, from time.Time) audioStart {
	a := audioStart{audio: make([]bool, len(tracks)), from: from}
	for i, t := range tracks {
		a.audio[i] = t.Kind == ingest.KindAudio
	}
	return a
}

// stale tells whether u is sound that arrived before the viewer connected:
// the cached group's and what came during the connection. A unit without a
// receive time is never stale.
func (a audioStart) stale(u *ingest.Unit) bool {
	return u.Track >= 0 && u.Track < len(a.audio) && a.audio[u.Track] &&
		!u.Received.IsZero() && u.Received.Before(a.from)
}

// sends tells whether a session with these writers (by track index, nil
// for tracks not sent) sends sound.
func (a audioStart) sends(writers []*trackWriter) bool {
	for i, w := range writers {
		if w != nil && i < len(a.audio) && a.audio[i] {
			return true
		}
	}
	return false
}
