package hardware

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Behaviour is how a simulated alarm device misbehaves, if at all.
type Behaviour string

// Behaviours of simulated devices.
const (
	// BehaviourNormal heartbeats and sends random alarms. It is the
	// behaviour of a device that names none.
	BehaviourNormal Behaviour = "normal"
	// BehaviourSilent connects, heartbeats for a while (SilentAfter) and
	// then falls silent while staying connected, so that supervision
	// raises a trouble.
	BehaviourSilent Behaviour = "silent"
	// BehaviourFlaky loses its connection abruptly now and then (the TCP
	// connection is closed without an MQTT DISCONNECT, so the broker
	// publishes its last will) and reconnects.
	BehaviourFlaky Behaviour = "flaky"
	// BehaviourGarbage sends a malformed payload in place of about half of
	// its alarms.
	BehaviourGarbage Behaviour = "garbage"
)

// SimDevice is one simulated alarm device.
type SimDevice struct {
	// ID is the device ID: its MQTT client id and its topic segment.
	ID string
	// Username and Password are its MQTT credentials; an empty Username
	// connects without credentials.
	Username string
	Password string
	// Format is the payload format of its events: "skywatch",
	// "contactid" or "zigbee2mqtt" (FormatSkywatch, ...).
	Format string
	// Behaviour defaults to BehaviourNormal.
	Behaviour Behaviour
}

// validate checks one device; i is its index in the config.
func (d SimDevice) validate(i int) error {
	switch {
	case d.ID == "":
		return fmt.Errorf("devices[%d].id: required", i)
	case len(d.ID) > 64:
		return fmt.Errorf("devices[%d].id: longer than 64 bytes", i)
	case strings.ContainsAny(d.ID, "/+#\x00"):
		return fmt.Errorf("devices[%d].id: %q holds an MQTT topic character", i, d.ID)
	case d.Username == "" && d.Password != "":
		return fmt.Errorf("devices[%d].username: required when a password is set", i)
	}
	switch d.Format {
	case FormatSkywatch, FormatContactID, FormatZigbee2MQTT:
	default:
		return fmt.Errorf("devices[%d].format: %q is not skywatch, contactid or zigbee2mqtt", i, d.Format)
	}
	switch d.Behaviour {
	case "", BehaviourNormal, BehaviourSilent, BehaviourFlaky, BehaviourGarbage:
	default:
		return fmt.Errorf("devices[%d].behaviour: %q is not normal, silent, flaky or garbage", i, d.Behaviour)
	}
	return nil
}

// SimDevices builds a fleet of n devices like a county's: IDs idPrefix
// followed by a 5-digit number, each with its ID as username and a
// random password; 60% send Skywatch JSON, 25% Contact ID and 15%
// Zigbee2MQTT; 2% fall silent, 5% are flaky and 2% send garbage (at
// least one of each once n reaches 4), the rest are normal. The same seed
// gives the same fleet.
func SimDevices(n int, idPrefix string, seed int64) []SimDevice {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	devs := make([]SimDevice, n)
	for i := range devs {
		var format string
		switch r := rng.IntN(100); {
		case r < 60:
			format = FormatSkywatch
		case r < 85:
			format = FormatContactID
		default:
			format = FormatZigbee2MQTT
		}
		id := fmt.Sprintf("%s%05d", idPrefix, i+1)
		devs[i] = SimDevice{
			ID:        id,
			Username:  id,
			Password:  fmt.Sprintf("%016x", rng.Uint64()),
			Format:    format,
			Behaviour: BehaviourNormal,
		}
	}
	// Misbehaving devices are spread through the fleet by the seed, with
	// at least one of each in a fleet of four or more.
	misfits := []struct {
		b       Behaviour
		percent int
	}{{BehaviourSilent, 2}, {BehaviourFlaky, 5}, {BehaviourGarbage, 2}}
	if n < len(misfits)+1 {
		return devs
	}
	order := rng.Perm(n)
	for _, m := range misfits {
		count := max(1, n*m.percent/100)
		for range count {
			devs[order[0]].Behaviour = m.b
			order = order[1:]
		}
	}
	return devs
}
