package hardware

import (
	"fmt"

	"github.com/skywatch/skywatch/alarms"
)

// MaxPayload bounds the size of a device payload that the decoders accept.
// Real payloads are a few hundred bytes; anything much larger is garbage
// or abuse, and refusing it early keeps a decoder's work bounded.
const MaxPayload = 16 << 10

// Decoder names, as used in the config's device models.
const (
	FormatSkywatch    = "skywatch"
	FormatContactID   = "contactid"
	FormatZigbee2MQTT = "zigbee2mqtt"
)

// Decoders returns every payload decoder by its name in the config.
func Decoders() map[string]alarms.Decoder {
	return map[string]alarms.Decoder{
		FormatSkywatch:    SkywatchJSON{},
		FormatContactID:   ContactID{},
		FormatZigbee2MQTT: Zigbee2MQTT{},
	}
}

// checkSize refuses empty and oversized payloads.
func checkSize(payload []byte) error {
	switch {
	case len(payload) == 0:
		return fmt.Errorf("empty payload")
	case len(payload) > MaxPayload:
		return fmt.Errorf("payload of %d bytes is larger than %d", len(payload), MaxPayload)
	}
	return nil
}
