package hardware

import (
	"encoding/binary"
	"math"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
)

// Audio of the simulated camera: G.711 µ-law, 8 kHz mono, sent in 40 ms
// packets alongside each video frame.
const (
	toneSampleRate      = 8000
	toneSamplesPerFrame = toneSampleRate / clipFPS // 320
	toneHz              = 1000                     // a whole number of periods per frame
	toneAmplitude       = 8000                     // about -12 dBFS
	// toneBeepFrames is how many frames of each clip second carry the beep
	// (200 ms), so the beep lines up with the burnt-in clock.
	toneBeepFrames = 5
)

// toneFrames returns one frame (40 ms) of a 1 kHz tone and one of silence,
// both µ-law encoded. A frame holds whole periods of the tone, so repeating
// it gives a clean continuous tone.
func toneFrames() (beep, silence []byte, err error) {
	lpcm := make([]byte, 2*toneSamplesPerFrame)
	for i := range toneSamplesPerFrame {
		v := toneAmplitude * math.Sin(2*math.Pi*toneHz*float64(i)/toneSampleRate)
		binary.BigEndian.PutUint16(lpcm[2*i:], uint16(int16(math.Round(v))))
	}
	beep, err = g711.Mulaw(lpcm).Marshal()
	if err != nil {
		return nil, nil, err
	}
	silence, err = g711.Mulaw(make([]byte, 2*toneSamplesPerFrame)).Marshal()
	if err != nil {
		return nil, nil, err
	}
	return beep, silence, nil
}
