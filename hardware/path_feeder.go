package hardware

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtplpcm"
)

// pathFeeder loops one clip into one gortsplib stream, one access unit per
// tick. Its run goroutine owns the encoders and the clip position, so RTP
// sequence numbers and timestamps stay continuous across loops.
type pathFeeder struct {
	path     string
	stream   *gortsplib.ServerStream
	clip     *clipData
	interval time.Duration
	start    int // the clip's first frame
	logger   *slog.Logger

	video    *description.Media
	videoEnc *rtph264.Encoder

	audio    *description.Media // nil without audio
	audioEnc *rtplpcm.Encoder
	beep     []byte // one frame of µ-law tone
	silence  []byte // one frame of µ-law silence
}

func newPathFeeder(
	server *gortsplib.Server,
	p CameraPath,
	clip *clipData,
	interval time.Duration,
	packetSize int,
	logger *slog.Logger,
) (*pathFeeder, error) {
	desc := newStreamDescription(clip, p.Audio)
	f := &pathFeeder{
		path:     p.Path,
		clip:     clip,
		interval: interval,
		start:    p.StartFrame % len(clip.aus),
		logger:   logger,
		video:    desc.Medias[0],
	}

	var err error
	if packetSize != 0 {
		// The 12-byte RTP header is not part of the payload.
		f.videoEnc = &rtph264.Encoder{
			PayloadType:       96,
			PacketizationMode: 1,
			PayloadMaxSize:    packetSize - 12,
		}
		err = f.videoEnc.Init()
	} else {
		f.videoEnc, err = f.video.Formats[0].(*format.H264).CreateEncoder()
	}
	if err != nil {
		return nil, err
	}
	if p.Audio {
		f.audio = desc.Medias[1]
		f.audioEnc, err = f.audio.Formats[0].(*format.G711).CreateEncoder()
		if err != nil {
			return nil, err
		}
		f.beep, f.silence, err = toneFrames()
		if err != nil {
			return nil, err
		}
	}

	f.stream = &gortsplib.ServerStream{Server: server, Desc: desc}
	if err := f.stream.Initialize(); err != nil {
		return nil, err
	}
	return f, nil
}

// run streams until ctx is done. Write errors (a stream closed under it)
// are counted and reported once at the end.
func (f *pathFeeder) run(ctx context.Context) {
	// Frames are due at fixed times from the start, as an encoder makes
	// them: a feeder that was late (a busy machine, many paths) catches up
	// instead of losing frames as a ticker would, so that a path sends its
	// clip's bitrate. More than a second behind, it drops the backlog.
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	next := time.Now()

	// Random starting timestamps, as real senders use (RFC 3550).
	videoTS := randomUint32()
	audioTS := randomUint32()
	frame := f.start
	failed := 0

	for {
		failed += f.writeFrame(frame, videoTS, audioTS)
		videoTS += clipFrameTicks
		audioTS += toneSamplesPerFrame
		frame = (frame + 1) % len(f.clip.aus)

		next = next.Add(f.interval)
		wait := time.Until(next)
		if wait < -time.Second {
			next, wait = time.Now(), 0
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			if failed > 0 {
				f.logger.Warn("camera path had write errors", "path", f.path, "count", failed)
			}
			return
		case <-timer.C:
		}
	}
}

// writeFrame sends access unit frame and its 40 ms of audio; it returns
// how many packets failed.
func (f *pathFeeder) writeFrame(frame int, videoTS, audioTS uint32) int {
	failed := 0
	pkts, err := f.videoEnc.Encode(f.clip.aus[frame])
	if err != nil {
		return 1
	}
	for _, pkt := range pkts {
		pkt.Timestamp = videoTS
		if err := f.stream.WritePacketRTP(f.video, pkt); err != nil {
			failed++
		}
	}

	if f.audio == nil {
		return failed
	}
	samples := f.silence
	if frame%clipFPS < toneBeepFrames {
		samples = f.beep
	}
	pkts, err = f.audioEnc.Encode(samples)
	if err != nil {
		return failed + 1
	}
	for _, pkt := range pkts {
		pkt.Timestamp += audioTS
		if err := f.stream.WritePacketRTP(f.audio, pkt); err != nil {
			failed++
		}
	}
	return failed
}

func randomUint32() uint32 {
	var b [4]byte
	// crypto/rand.Read never fails on supported platforms.
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
