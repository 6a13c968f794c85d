package viewer

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/ingest"
)

// chromeLikeOffer is shaped like a current Chromium's recvonly offer.
const chromeLikeOffer = "v=0\r\n" +
	"o=- 46117317 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 107 112 113 49 50\r\n" +
	"c=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n" +
	"a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
	"a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n" +
	"a=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=rtpmap:107 rtx/90000\r\na=fmtp:107 apt=106\r\n" +
	"a=rtpmap:112 H264/90000\r\na=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f\r\n" +
	"a=rtpmap:113 rtx/90000\r\na=fmtp:113 apt=112\r\n" +
	"a=rtpmap:49 H265/90000\r\na=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n" +
	"a=rtpmap:50 rtx/90000\r\na=fmtp:50 apt=49\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n" +
	"c=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n" +
	"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"

func h264With(pli string) ingest.Track {
	t := h264Track()
	t.FMTP = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + pli
	return t
}

func TestChooseCodecs(t *testing.T) {
	chrome, err := parseOffer([]byte(chromeLikeOffer))
	if err != nil {
		t.Fatal(err)
	}
	noH265, err := parseOffer([]byte(strings.ReplaceAll(chromeLikeOffer, "H265", "XXXX")))
	if err != nil {
		t.Fatal(err)
	}
	h265 := ingest.Track{Kind: ingest.KindVideo, Codec: ingest.CodecH265, ClockRate: 90000, FMTP: "profile-id=1"}
	opus := ingest.Track{Kind: ingest.KindAudio, Codec: ingest.CodecOpus, ClockRate: 48000, Channels: 2}
	pcma := ingest.Track{Kind: ingest.KindAudio, Codec: ingest.CodecPCMA, ClockRate: 8000, Channels: 1}

	tests := []struct {
		name    string
		tracks  []ingest.Track
		offer   offer
		want    []string // "track:mime:pt:fmtp"
		wantErr string
	}{
		{
			name: "constrained baseline matches exactly", tracks: []ingest.Track{h264With("42e01f")}, offer: chrome,
			want: []string{"0:video/H264:106:level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		},
		{
			name: "high profile keeps the camera's level", tracks: []ingest.Track{h264With("640028")}, offer: chrome,
			want: []string{"0:video/H264:112:level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640028"},
		},
		{
			name: "same profile, other constraints", tracks: []ingest.Track{h264With("42c01e")}, offer: chrome,
			want: []string{"0:video/H264:102:level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001e"},
		},
		{
			name: "unknown profile falls back to the viewer's first", tracks: []ingest.Track{h264With("4d0029")}, offer: chrome,
			want: []string{"0:video/H264:102:level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=420029"},
		},
		{
			name: "profile from the SPS when FMTP lacks it",
			tracks: []ingest.Track{{Kind: ingest.KindVideo, Codec: ingest.CodecH264, ClockRate: 90000,
				SPS: []byte{0x67, 0x64, 0x00, 0x32}}},
			offer: chrome,
			want:  []string{"0:video/H264:112:level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032"},
		},
		{
			name: "h265 to a viewer that offers it", tracks: []ingest.Track{h265}, offer: chrome,
			want: []string{"0:video/H265:49:level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST"},
		},
		{
			name: "h265 to a viewer that does not", tracks: []ingest.Track{h265}, offer: noH265,
			wantErr: "no common video codec: camera sends H265, offer has VP8, rtx, H264, XXXX",
		},
		{
			name: "opus passes through; audio is second", tracks: []ingest.Track{opus, h264With("42e01f")}, offer: chrome,
			want: []string{
				"1:video/H264:106:level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
				"0:audio/opus:111:minptime=10;useinbandfec=1",
			},
		},
		{
			name: "pcma by its static payload type", tracks: []ingest.Track{h264With("42e01f"), pcma}, offer: chrome,
			want: []string{
				"0:video/H264:106:level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
				"1:audio/PCMA:8:",
			},
		},
		{
			name: "audio the viewer cannot take is left out",
			tracks: []ingest.Track{h264With("42e01f"),
				{Kind: ingest.KindAudio, Codec: "MPEG4-GENERIC", ClockRate: 16000}},
			offer: chrome,
			want:  []string{"0:video/H264:106:level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		},
		{
			name: "audio-only camera", tracks: []ingest.Track{pcma}, offer: chrome,
			want: []string{"0:audio/PCMA:8:"},
		},
		{
			name: "nothing the viewer can receive", tracks: []ingest.Track{pcma}, offer: offer{},
			wantErr: "no common video codec: camera has no track the offer can receive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseCodecs(tt.tracks, tt.offer)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var desc []string
			for _, c := range got {
				desc = append(desc, describeChoice(c))
			}
			if strings.Join(desc, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(desc, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func describeChoice(c codecChoice) string {
	kind := "audio"
	if c.kind == webrtc.RTPCodecTypeVideo {
		kind = "video"
	}
	if !strings.HasPrefix(c.params.MimeType, kind+"/") {
		return "kind mismatch"
	}
	return strings.Join([]string{
		strconv.Itoa(c.track), c.params.MimeType,
		strconv.Itoa(int(c.params.PayloadType)), c.params.SDPFmtpLine,
	}, ":")
}

func TestParseOfferErrors(t *testing.T) {
	tests := []struct{ name, sdp, wantErr string }{
		{"garbage", "hello", "malformed sdp"},
		{"no media", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", "no media section"},
		{"only application", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", "no audio or video"},
		{"sendonly video", strings.Replace(handOffer("H264/90000", ""), "recvonly", "sendonly", 1), "no audio or video"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOffer([]byte(tt.sdp))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseOffer(f *testing.F) {
	f.Add([]byte(chromeLikeOffer))
	f.Add([]byte(handOffer("H264/90000", "packetization-mode=1")))
	f.Add([]byte("v=0\r\nm=video 9 X 96\r\na=rtpmap:96\r\na=fmtp:96\r\n"))
	tracks := []ingest.Track{h264Track(), pcmuTrack()}
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := parseOffer(raw)
		if err != nil {
			return
		}
		_, _ = chooseCodecs(tracks, o) // must not panic
	})
}
