package alarms

import "strings"

// Topic kinds under {prefix}/dev/{device}/.
const (
	kindEvent     = "event"
	kindHeartbeat = "hb"
	kindState     = "state"
)

// Payloads of the retained state topic.
const (
	stateOnline  = "online"
	stateOffline = "offline"
)

// topics builds and parses the intake's topic names.
type topics struct {
	prefix string
}

// deviceTopic parses {prefix}/dev/{device}/{kind}. ok is false for a topic
// outside the device tree.
func (t topics) deviceTopic(topic string) (device, kind string, ok bool) {
	rest, found := strings.CutPrefix(topic, t.prefix+"/dev/")
	if !found {
		return "", "", false
	}
	device, kind, found = strings.Cut(rest, "/")
	if !found || device == "" || strings.Contains(kind, "/") {
		return "", "", false
	}
	return device, kind, true
}

// unitTopic parses {prefix}/unit/{unit}/{kind}.
func (t topics) unitTopic(topic string) (unit, kind string, ok bool) {
	rest, found := strings.CutPrefix(topic, t.prefix+"/unit/")
	if !found {
		return "", "", false
	}
	unit, kind, found = strings.Cut(rest, "/")
	if !found || unit == "" || strings.Contains(kind, "/") {
		return "", "", false
	}
	return unit, kind, true
}

// Topic kinds under {prefix}/unit/{unit}/.
const (
	kindPos      = "pos"
	kindReply    = "reply"
	kindDispatch = "dispatch"
)

// unitDispatch is the topic of the server's messages to a unit.
func (t topics) unitDispatch(unit string) string {
	return t.prefix + "/unit/" + unit + "/" + kindDispatch
}

// deviceFilters are the subscriptions of the intake at an external broker
// (device topics, and the units' reports and replies).
func (t topics) deviceFilters() []string {
	return []string{
		t.prefix + "/dev/+/" + kindEvent,
		t.prefix + "/dev/+/" + kindHeartbeat,
		t.prefix + "/dev/+/" + kindState,
		t.prefix + "/unit/+/" + kindPos,
		t.prefix + "/unit/+/" + kindReply,
	}
}
