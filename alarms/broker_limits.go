package alarms

import (
	"bytes"
	"slices"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// maxTopic bounds a topic name or filter: the intake's are a prefix, an id
// and two short levels.
const maxTopic = 512

// limitsHook caps what a client of the embedded broker can make the server
// keep: payload sizes by topic kind, retained messages (only a device's
// small state is retained) and subscriptions. It runs before the intake's
// hook, which never sees a publish it refused.
type limitsHook struct {
	mqtt.HookBase
	in     *Intake
	server *mqtt.Server
}

// ID implements mqtt.Hook.
func (h *limitsHook) ID() string { return "skywatch-limits" }

// Provides implements mqtt.Hook.
func (h *limitsHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPublish, mqtt.OnSubscribe}, []byte{b})
}

// OnPublish refuses a payload over its topic kind's cap, but for a device's
// event, which the intake keeps in the rejected list (MQTT 5: PUBACK
// "packet too large"; MQTT 3.1.1 at QoS 1: the client is disconnected
// without a PUBACK, as mochi does for a topic it may not publish) and
// clears the retain flag outside a device's state topic. Clearing rather
// than refusing keeps an alarm that a device sent retained by mistake; a
// retained state larger than its cap is refused like any payload.
func (h *limitsHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	lim := &h.in.cfg.MQTT.BrokerLimits
	if len(pk.TopicName) > maxTopic || len(pk.Payload) > h.in.topics.payloadLimit(lim.MaxPayload, pk.TopicName) && !h.in.topics.isEvent(pk.TopicName) {
		h.in.metrics.broker.publishRefused.Inc()
		switch {
		case pk.FixedHeader.Qos == 0:
		case cl.Properties.ProtocolVersion >= 5:
			_ = cl.WritePacket(packets.Packet{
				FixedHeader: packets.FixedHeader{Type: packets.Puback},
				PacketID:    pk.PacketID,
				ReasonCode:  packets.ErrPacketTooLarge.Code,
			})
		default:
			cl.Stop(packets.ErrPacketTooLarge)
		}
		return pk, packets.ErrRejectPacket
	}
	if pk.FixedHeader.Retain && !h.in.topics.retainable(pk.TopicName) {
		h.in.metrics.broker.retainCleared.Inc()
		pk.FixedHeader.Retain = false
	}
	return pk, nil
}

// OnSubscribe refuses, with a failure in the SUBACK, every new filter past
// the client's subscription cap and every overlong one (mochi answers an
// empty filter as invalid).
func (h *limitsHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if cl.Net.Inline {
		return pk
	}
	n := cl.State.Subscriptions.Len()
	filters := slices.Clone(pk.Filters)
	for i, f := range filters {
		if _, again := cl.State.Subscriptions.Get(f.Filter); again {
			continue
		}
		if n >= h.in.cfg.MQTT.MaxSubscriptions || len(f.Filter) > maxTopic {
			h.in.metrics.broker.subscriptionsRefused.Inc()
			filters[i].Filter = ""
			continue
		}
		n++
	}
	pk.Filters = filters
	return pk
}
