package alarms

import (
	"strings"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// admit binds an authenticated client to its identity, after its password
// was checked (idn is nil when it was not). Its client id must be its
// device or unit id, or empty (it is then given that id); a second
// connection of the same identity, with a session that ends with it (clean
// session, or MQTT 5 session expiry 0), may use "{id}:{anything}", which no
// other identity can use as ids hold no ':'. Anything else is refused with
// "identifier rejected", so that no client can take over another's session
// and its queued messages, or kick it off. The client's last will is kept
// only on a topic it may publish, within the payload cap, and retained only
// on its state topic.
func (h *hook) admit(cl *mqtt.Client, pk packets.Packet, idn *identity) bool {
	if idn == nil {
		return false
	}
	id := pk.Connect.ClientIdentifier
	switch {
	case id == "":
		cl.ID = idn.id
		cl.Properties.Props.AssignedClientID = idn.id // told to MQTT 5 clients
	case id == idn.id:
	case strings.HasPrefix(id, idn.id+":") && sessionEnds(cl):
	default:
		h.in.metrics.broker.clientIDRefused.Inc()
		return h.refuse(cl, packets.ErrClientIdentifierNotValid)
	}
	h.checkWill(cl)
	h.dropUnreadable(cl)
	return true
}

// refuse answers a CONNECT with code (mochi maps it to MQTT 3.1.1's
// return codes) instead of mochi's own "bad user name or password", and
// returns false for OnConnectAuthenticate.
func (h *hook) refuse(cl *mqtt.Client, code packets.Code) bool {
	_ = h.server.SendConnack(cl, code, false, nil)
	// Stopped, the client cannot be sent mochi's own refusal next.
	cl.Stop(code)
	return false
}

// sessionEnds reports whether the client's session ends with its
// connection.
func sessionEnds(cl *mqtt.Client) bool {
	if cl.Properties.ProtocolVersion >= 5 {
		return cl.Properties.Props.SessionExpiryInterval == 0
	}
	return cl.Properties.Clean
}

// checkWill drops a last will on a topic the client may not publish, or
// larger than that topic's payload cap, and clears the retain flag of a
// will outside the state topic: mochi publishes wills without asking the
// hooks.
func (h *hook) checkWill(cl *mqtt.Client) {
	w := &cl.Properties.Will
	if atomic.LoadUint32(&w.Flag) == 0 {
		return
	}
	lim := &h.in.cfg.MQTT.BrokerLimits
	if !h.OnACLCheck(cl, w.TopicName, true) || len(w.Payload) > h.in.topics.payloadLimit(lim.MaxPayload, w.TopicName) {
		h.in.metrics.broker.willsDropped.Inc()
		*w = mqtt.Will{}
		return
	}
	if w.Retain && !h.in.topics.retainable(w.TopicName) {
		h.in.metrics.broker.retainCleared.Inc()
		w.Retain = false
	}
}

// dropUnreadable removes from the session that the client is about to
// resume every queued message that it may not read, before mochi resends
// them without asking the hooks (it checks the access list when it queues
// a message, for the session's previous owner).
func (h *hook) dropUnreadable(cl *mqtt.Client) {
	old, ok := h.server.Clients.Get(cl.ID)
	if !ok {
		return
	}
	for _, p := range old.State.Inflight.GetAll(false) {
		// A packet sent with a topic alias has no name; aliases do not
		// outlive a connection, so mochi resends it as it is.
		if p.FixedHeader.Type != packets.Publish || p.TopicName == "" || h.OnACLCheck(cl, p.TopicName, false) {
			continue
		}
		if old.State.Inflight.Delete(p.PacketID) {
			atomic.AddInt64(&h.server.Info.Inflight, -1)
			h.in.metrics.broker.inflightDropped.Inc()
		}
	}
}
