package hardware

import (
	"testing"

	"github.com/skywatch/skywatch/alarms"
)

// fuzzDecoder checks that dec never panics and that whatever it returns is
// an event the intake can keep.
func fuzzDecoder(f *testing.F, dec alarms.Decoder, cases []decoderCase) {
	for _, c := range cases {
		f.Add([]byte(c.payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		evs, err := dec.Decode(payload)
		if err != nil {
			if len(evs) != 0 {
				t.Fatalf("error %v with %d events", err, len(evs))
			}
			return
		}
		checkEvents(t, evs)
	})
}

func FuzzSkywatchJSON(f *testing.F) { fuzzDecoder(f, SkywatchJSON{}, skywatchCases) }

func FuzzContactID(f *testing.F) { fuzzDecoder(f, ContactID{}, contactIDCases) }

func FuzzZigbee2MQTT(f *testing.F) { fuzzDecoder(f, Zigbee2MQTT{}, zigbeeCases) }
