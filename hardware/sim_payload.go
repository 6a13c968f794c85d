package hardware

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// simSkywatchEvent is the wire form of a Skywatch JSON event.
type simSkywatchEvent struct {
	ID         string `json:"id"`
	Seq        uint64 `json:"seq"`
	TS         string `json:"ts"`
	Class      string `json:"class"`
	Qualifier  string `json:"qualifier"`
	Code       string `json:"code,omitempty"`
	Zone       string `json:"zone,omitempty"`
	Partition  string `json:"partition,omitempty"`
	BatteryLow bool   `json:"battery_low,omitempty"`
	RSSI       int    `json:"rssi"`
}

// simClassCodes pairs each class with the Contact ID codes a device might
// send for it.
func simClassCodes(c alarms.Class) []string {
	switch c {
	case alarms.ClassAlarm:
		return []string{"130", "131", "132", "134"}
	case alarms.ClassPanic:
		return []string{"120", "121", "100"}
	case alarms.ClassFire:
		return []string{"110", "111"}
	case alarms.ClassTamper:
		return []string{"137", "144", "383"}
	case alarms.ClassTrouble:
		return []string{"301", "302", "384"}
	case alarms.ClassSupervision:
		return []string{"381"}
	case alarms.ClassArm, alarms.ClassDisarm:
		return []string{"401"}
	case alarms.ClassTest:
		return []string{"602"}
	}
	return nil
}

// simRestorable tells whether a class has a restore worth sending.
func simRestorable(c alarms.Class) bool {
	switch c {
	case alarms.ClassAlarm, alarms.ClassFire, alarms.ClassTamper, alarms.ClassTrouble, alarms.ClassSupervision:
		return true
	}
	return false
}

// simSkywatchPayload makes a random event of any class.
func simSkywatchPayload(rng *rand.Rand, id string, seq uint64, now time.Time) []byte {
	classes := alarms.Classes()
	class := classes[rng.IntN(len(classes))]
	codes := simClassCodes(class)
	code := codes[rng.IntN(len(codes))]
	q := alarms.QualifierNew
	if simRestorable(class) && rng.IntN(4) == 0 {
		q = alarms.QualifierRestore
	}
	ev := simSkywatchEvent{
		ID:         id,
		Seq:        seq,
		TS:         now.UTC().Format(time.RFC3339Nano),
		Class:      string(class),
		Qualifier:  string(q),
		Code:       code,
		Zone:       fmt.Sprint(1 + rng.IntN(16)),
		Partition:  "1",
		BatteryLow: code == "302" || code == "384",
		RSSI:       -50 - rng.IntN(60),
	}
	b, _ := json.Marshal(ev) // cannot fail: strings, integers and a bool
	return b
}

// simContactIDPayload makes a random Contact ID message for account, in
// the spaced form or, with its checksum, the compact one.
func simContactIDPayload(rng *rand.Rand, account string) []byte {
	classes := alarms.Classes()
	class := classes[rng.IntN(len(classes))]
	codes := simClassCodes(class)
	code := codes[rng.IntN(len(codes))]
	q := "1"
	switch {
	case class == alarms.ClassArm:
		q = "3" // a closing
	case class == alarms.ClassDisarm:
		q = "1" // an opening
	case simRestorable(class) && rng.IntN(4) == 0:
		q = "3"
	}
	zone := fmt.Sprintf("%03d", 1+rng.IntN(16))
	if class == alarms.ClassTest || code == "301" || code == "302" {
		zone = "000"
	}
	digits := account + "18" + q + code + "01" + zone
	if rng.IntN(2) == 0 {
		return []byte(digits + string(contactIDChecksum(digits)))
	}
	return []byte(fmt.Sprintf("%s 18 %s%s 01 %s", account, q, code, zone))
}

// simZigbeeReports are the reports a Zigbee2MQTT device sends, each of
// which raises at least one event.
func simZigbeeReport(rng *rand.Rand) []byte {
	reports := []string{
		`"contact":false`, `"contact":true`, `"occupancy":true`, `"occupancy":false`,
		`"tamper":true`, `"tamper":false`, `"smoke":true`, `"water_leak":true`,
		`"sos":true`, `"action":"emergency"`, `"action":"arm_all_zones"`, `"action":"disarm"`,
		`"battery_low":true`,
	}
	return []byte(fmt.Sprintf(`{%s,"battery":%d,"linkquality":%d}`,
		reports[rng.IntN(len(reports))], 5+rng.IntN(96), rng.IntN(256)))
}

// simGarbage makes a payload that the device's decoder must reject: a
// plausible mistake most of the time, random bytes otherwise.
func simGarbage(rng *rand.Rand, dec alarms.Decoder, valid []byte) []byte {
	candidates := [][]byte{
		valid[:len(valid)/2], // cut short
		[]byte(`{"id":"x","class":"burglary"}`),
		[]byte(`{"contact":"open"}`),
		[]byte("1234 18 1999 01 001"), // unknown code
		[]byte("1234181130010155"),    // bad checksum
		[]byte("<html>502</html>"),    // a proxy's error page
		[]byte(strings.Repeat("\x00", 8)),
		randomBytes(rng, 1+rng.IntN(48)),
	}
	b := candidates[rng.IntN(len(candidates))]
	if _, err := dec.Decode(b); err == nil {
		return []byte("\xff garbage")
	}
	return b
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// simHeartbeat is a heartbeat's payload: the device's time and signal.
func simHeartbeat(rng *rand.Rand, now time.Time) []byte {
	return []byte(fmt.Sprintf(`{"ts":%d,"rssi":%d}`, now.Unix(), -50-rng.IntN(60)))
}

// simAccount derives a device's 4-digit Contact ID account from its ID.
func simAccount(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%04d", 1+h.Sum32()%9999)
}
