package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

var (
	errNoTracks    = errors.New("no supported track (H.264, H.265, G.711 or Opus)")
	errReadTimeout = errors.New("read timeout: no RTP packet")
)

// rateWindow is how many one-second samples the bitrate and frame rate
// average over.
const rateWindow = 5

// runSession runs one RTSP session until it fails or ctx ends. delivered
// tells whether the camera sent any RTP packet.
func (s *source) runSession(ctx context.Context, run *sourceRun) (delivered bool, err error) {
	c := &gortsplib.Client{
		Scheme:      s.url.Scheme,
		Host:        s.url.Host,
		ReadTimeout: s.mcfg.ReadTimeout,
		Transport:   s.transport,
		OnTransportSwitch: func(err error) {
			s.logger.Info("switching transport", "reason", s.redact(err.Error()))
		},
		OnPacketsLost: func(n uint64) { s.lost.Add(n) },
		OnDecodeError: func(error) { s.decodeErrs.Add(1) },
	}
	if err := c.Start2(); err != nil {
		return false, fmt.Errorf("start client: %w", err)
	}
	defer c.Close()
	// gortsplib calls take no context: closing the client ends them.
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()

	desc, _, err := c.Describe(s.url)
	if err != nil {
		return false, fmt.Errorf("describe: %w", err)
	}
	tracks, medias, formats := s.selectTracks(desc)
	if len(tracks) == 0 {
		return false, errNoTracks
	}
	for _, m := range medias {
		if _, err := c.Setup(desc.BaseURL, m, 0, 0); err != nil {
			return false, fmt.Errorf("setup: %w", err)
		}
	}

	epoch := s.stream.begin(tracks)
	var got atomic.Bool
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	for i := range medias {
		h := s.newTrackHandler(epoch, i, tracks[i])
		c.OnPacketRTP(medias[i], formats[i], func(pkt *rtp.Packet) {
			now := time.Now()
			got.Store(true)
			last.Store(now.UnixNano())
			h.onPacket(pkt, now)
		})
	}
	if _, err := c.Play(nil); err != nil {
		return false, fmt.Errorf("play: %w", err)
	}
	s.setStatus(run, StatusOnline)
	s.logger.Info("camera online", "epoch", epoch, "tracks", describeTracks(tracks))

	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var samples [rateWindow]rateSample
	n := 0
	for {
		select {
		case err := <-waitErr:
			return got.Load(), fmt.Errorf("read: %w", err)
		case now := <-tick.C:
			samples[n%rateWindow] = rateSample{at: now, bytes: s.bytes.Load(), units: s.videoUnits.Load()}
			n++
			if n >= 2 {
				oldest := samples[0]
				if n > rateWindow {
					oldest = samples[n%rateWindow]
				}
				kbps, fps := samples[(n-1)%rateWindow].rates(oldest)
				s.setRates(run, kbps, fps)
			}
			if now.Sub(time.Unix(0, last.Load())) >= s.mcfg.ReadTimeout {
				c.Close()
				<-waitErr
				return got.Load(), errReadTimeout
			}
		}
	}
}

type rateSample struct {
	at           time.Time
	bytes, units uint64
}

// rates returns kbit/s and units/s between an older sample and r.
func (r rateSample) rates(old rateSample) (kbps, fps float64) {
	d := r.at.Sub(old.at).Seconds()
	if d <= 0 {
		return 0, 0
	}
	return float64(r.bytes-old.bytes) * 8 / 1000 / d, float64(r.units-old.units) / d
}

// selectTracks picks the first supported format of every media. Other
// medias are skipped, and logged once per codec.
func (s *source) selectTracks(desc *description.Session) ([]Track, []*description.Media, []format.Format) {
	var tracks []Track
	var medias []*description.Media
	var formats []format.Format
	for _, m := range desc.Medias {
		if m.IsBackChannel {
			continue
		}
		var picked bool
		for _, f := range m.Formats {
			t, ok := trackOf(f)
			if !ok {
				continue
			}
			tracks = append(tracks, t)
			medias = append(medias, m)
			formats = append(formats, f)
			picked = true
			break
		}
		if !picked && len(m.Formats) > 0 {
			codec := m.Formats[0].Codec()
			if !s.unsupported[codec] {
				s.unsupported[codec] = true
				s.logger.Info("skipping unsupported track", "codec", codec, "media", string(m.Type))
			}
		}
	}
	return tracks, medias, formats
}

// trackOf describes a supported format.
func trackOf(f format.Format) (Track, bool) {
	t := Track{PayloadType: f.PayloadType(), ClockRate: f.ClockRate()}
	switch f := f.(type) {
	case *format.H264:
		t.Kind, t.Codec = KindVideo, CodecH264
		t.setParams(nil, f.SPS, f.PPS)
	case *format.H265:
		t.Kind, t.Codec = KindVideo, CodecH265
		t.setParams(f.VPS, f.SPS, f.PPS)
	case *format.G711:
		t.Kind, t.Codec, t.Channels = KindAudio, CodecPCMA, f.ChannelCount
		if f.MULaw {
			t.Codec = CodecPCMU
		}
	case *format.Opus:
		if f.ChannelCount > 2 {
			return Track{}, false // multiopus: no browser plays it
		}
		// RFC 7587: Opus is always announced as 2 channels.
		t.Kind, t.Codec, t.Channels = KindAudio, CodecOpus, 2
	default:
		return Track{}, false
	}
	return t, true
}

func describeTracks(tracks []Track) string {
	var b strings.Builder
	for i, t := range tracks {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.Codec)
		if t.Width > 0 {
			fmt.Fprintf(&b, " %dx%d", t.Width, t.Height)
		}
	}
	return b.String()
}

// trackHandler turns one track's RTP packets into units. gortsplib calls it
// from one goroutine per track.
type trackHandler struct {
	s     *source
	epoch uint64
	index int
	asm   *assembler // nil for audio
	kf    keyframer
	split splitter
	now   time.Time
	emit  func([]*rtp.Packet)
}

func (s *source) newTrackHandler(epoch uint64, index int, t Track) *trackHandler {
	h := &trackHandler{s: s, epoch: epoch, index: index}
	if t.Kind == KindVideo {
		h.asm = &assembler{}
		h.kf = keyframer{codec: t.Codec, params: t}
		h.split = splitter{h265: t.Codec == CodecH265}
		h.emit = h.emitVideo
	}
	return h
}

func (h *trackHandler) onPacket(pkt *rtp.Packet, now time.Time) {
	h.s.packets.Add(1)
	h.s.bytes.Add(uint64(pkt.Header.MarshalSize() + len(pkt.Payload)))
	if h.asm == nil {
		h.s.stream.push(&Unit{Track: h.index, Packets: []*rtp.Packet{pkt}, Epoch: h.epoch, Received: now})
		return
	}
	h.now = now
	h.asm.push(pkt, h.emit)
}

func (h *trackHandler) emitVideo(pkts []*rtp.Packet) {
	pkts, key, changed := h.kf.unit(pkts)
	if changed {
		p := &h.kf.params
		h.s.stream.setParams(h.epoch, h.index, p.VPS, p.SPS, p.PPS)
	}
	// After the keyframer, so that parameter sets it inserts are checked
	// too; once per unit for every reader.
	pkts, res := h.split.split(pkts)
	if res.split > 0 {
		h.s.split.Add(uint64(res.split))
	}
	if res.dropped > 0 {
		h.s.unsplit.Add(uint64(res.dropped))
	}
	h.s.videoUnits.Add(1)
	if len(pkts) == 0 {
		return
	}
	h.s.stream.push(&Unit{Track: h.index, Packets: pkts, Keyframe: key, Epoch: h.epoch, Received: h.now})
}

// describeError turns a session error into LastError: no credentials, and
// authentication failures recognisable by their prefix.
func (s *source) describeError(err error) string {
	msg := s.redact(err.Error())
	var bad liberrors.ErrClientBadStatusCode
	var setup liberrors.ErrClientAuthSetup
	if errors.As(err, &bad) && bad.Code == base.StatusUnauthorized || errors.As(err, &setup) {
		return "authentication failed: " + msg
	}
	return msg
}

// redact removes credentials from text that may quote the camera URL.
func (s *source) redact(msg string) string {
	msg = stripUserinfo(msg)
	if p := s.cfg.Password; p != "" {
		// The password as typed, and as escaped in a URL's userinfo or path.
		for _, form := range []string{
			p,
			strings.TrimPrefix(url.UserPassword("", p).String(), ":"),
			url.PathEscape(p),
		} {
			msg = strings.ReplaceAll(msg, form, "***")
		}
	}
	return msg
}

// stripUserinfo drops "user:pass@" from every URL in s.
func stripUserinfo(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "/ \t\n\"'")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndex(s[:end], "@"); at >= 0 {
			s = s[at+1:]
		}
	}
}
