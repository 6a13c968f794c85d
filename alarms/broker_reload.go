package alarms

import (
	"sort"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// errCredentialsChanged is the stop cause of a client disconnected because
// a reload changed or removed its credentials: "not authorized" to an MQTT
// 5 client, which then knows not to retry with the same password.
var errCredentialsChanged = packets.ErrNotAuthorized

// maxJoining bounds hook.joining: past it, clients that ended before
// their session was established (mochi then calls no hook) are swept.
const maxJoining = 1024

// join notes a client that logged in as idn until its session is
// established, and refuses it when a reload changed its credentials since
// its password was checked. With disconnectUsers, which first replaces the
// credentials and then looks at joining and established clients, no client
// keeps a connection made with credentials that a reload took away: it is
// either seen by disconnectUsers or sees the new credentials here.
func (h *hook) join(cl *mqtt.Client, idn *identity) bool {
	h.joinMu.Lock()
	if len(h.joining) >= maxJoining {
		for c := range h.joining {
			if c.Closed() {
				delete(h.joining, c)
			}
		}
	}
	h.joining[cl] = idn
	h.joinMu.Unlock()
	if h.in.creds.user(string(cl.Properties.Username)) != idn {
		h.left(cl)
		return h.refuse(cl, packets.ErrNotAuthorized)
	}
	return true
}

func (h *hook) left(cl *mqtt.Client) {
	h.joinMu.Lock()
	delete(h.joining, cl)
	h.joinMu.Unlock()
}

// OnSessionEstablished implements mqtt.Hook: the client is now among
// mochi's clients.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) { h.left(cl) }

// disconnectUsers closes the connections of the clients logged in with one
// of users' names (user name -> the identity it had), joining or
// established, and returns the IDs whose connections it closed, sorted.
// Call it after the credentials were replaced.
func (b *broker) disconnectUsers(users map[string]*identity) []string {
	h := b.hook
	var victims []*mqtt.Client
	h.joinMu.Lock()
	for cl := range h.joining {
		if _, ok := users[string(cl.Properties.Username)]; ok {
			victims = append(victims, cl)
		}
	}
	h.joinMu.Unlock()
	for _, cl := range b.server.Clients.GetAll() {
		if _, ok := users[string(cl.Properties.Username)]; ok && !cl.Net.Inline && !cl.Closed() {
			victims = append(victims, cl)
		}
	}
	seen := map[string]bool{}
	var ids []string
	for _, cl := range victims {
		if cl.Closed() {
			continue
		}
		if cl.Properties.ProtocolVersion >= 5 {
			_ = b.server.DisconnectClient(cl, errCredentialsChanged)
		} else {
			cl.Stop(errCredentialsChanged)
		}
		b.hook.in.kicked(nil, "credentials")
		if id := users[string(cl.Properties.Username)].id; !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
