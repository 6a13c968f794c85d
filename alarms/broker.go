package alarms

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Capabilities of the embedded broker.
const (
	// maxPacket bounds an MQTT packet; alarm payloads are small.
	maxPacket = 256 << 10
	// clientWritesPending bounds each client's outbound queue. mochi's
	// default (8192) costs 64 KiB per client, 640 MB for 10,000 devices,
	// which receive next to nothing.
	clientWritesPending = 64
)

// broker is the embedded mochi broker with the intake's hook.
type broker struct {
	server *mqtt.Server
	hook   *hook
	tcp    *netListener
	lim    *connLimiter
}

// newBroker starts the embedded broker with the intake's hook.
func newBroker(in *Intake) (*broker, error) {
	cfg := &in.cfg.MQTT
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacket
	caps.MaximumClientWritesPending = clientWritesPending
	// No topic aliases: each would keep a topic of up to 64 KiB per alias
	// and client before any hook sees it, and a device publishing by alias
	// alone is refused by the access list anyway.
	caps.TopicAliasMaximum = 0
	server := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		// mochi logs every failed connection; per-client errors are counted
		// by the intake instead.
		Logger:       slog.New(minLevel{in.logger.Handler(), slog.LevelError}),
		InlineClient: true, // for publishing to units (dispatch)
	})
	// The limits run first: the intake's hook never sees what they refuse.
	if err := server.AddHook(&limitsHook{in: in, server: server}, nil); err != nil {
		return nil, fmt.Errorf("mqtt: add hook: %w", err)
	}
	h := &hook{in: in, server: server, joining: map[*mqtt.Client]*identity{}}
	if err := server.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("mqtt: add hook: %w", err)
	}
	b := &broker{server: server, hook: h, lim: newConnLimiter(in.maxConnections(), cfg.MaxConnectionsPerAddress, cfg.ConnectTimeout)}
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("mqtt.address: %w", err)
	}
	b.tcp = &netListener{id: "tcp", ln: b.lim.listen(ln), close: closeClients(server)}
	if err := server.AddListener(b.tcp); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("mqtt.address: %w", err)
	}
	if cfg.TLSAddress != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			b.close()
			return nil, fmt.Errorf("mqtt.cert_file: %w", err)
		}
		tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln, err := net.Listen("tcp", cfg.TLSAddress)
		if err != nil {
			b.close()
			return nil, fmt.Errorf("mqtt.tls_address: %w", err)
		}
		// Limited below TLS: a refused connection costs no handshake.
		tl := &netListener{id: "tls", ln: tls.NewListener(b.lim.listen(ln), tlsCfg), close: closeClients(server)}
		if err := server.AddListener(tl); err != nil {
			_ = ln.Close()
			b.close()
			return nil, fmt.Errorf("mqtt.tls_address: %w", err)
		}
	}
	if cfg.WSAddress != "" {
		ln, err := net.Listen("tcp", cfg.WSAddress)
		if err != nil {
			b.close()
			return nil, fmt.Errorf("mqtt.ws_address: %w", err)
		}
		if err := server.AddListener(newWSListener("ws", b.lim.listen(ln), b.lim, closeClients(server))); err != nil {
			_ = ln.Close()
			b.close()
			return nil, fmt.Errorf("mqtt.ws_address: %w", err)
		}
	}
	if err := server.Serve(); err != nil {
		b.close()
		return nil, fmt.Errorf("mqtt: serve: %w", err)
	}
	return b, nil
}

// addr is the TCP listener's address (with the port the OS chose).
func (b *broker) addr() string { return b.tcp.Address() }

func (b *broker) clients() int {
	n := 0
	for _, cl := range b.server.Clients.GetAll() {
		if !cl.Net.Inline && !cl.Closed() {
			n++
		}
	}
	return n
}

// close disconnects every client and closes the listeners; mochi waits
// for the clients' goroutines.
func (b *broker) close() { _ = b.server.Close() }

// hook authenticates and authorises clients and feeds published messages
// to the intake before mochi acknowledges them.
type hook struct {
	mqtt.HookBase
	in     *Intake
	server *mqtt.Server

	// joining holds the clients that passed OnConnectAuthenticate and are
	// not yet among mochi's clients (until OnSessionEstablished), with the
	// identity they logged in as: see disconnectUsers.
	joinMu  sync.Mutex
	joining map[*mqtt.Client]*identity
}

// ID implements mqtt.Hook.
func (h *hook) ID() string { return "skywatch-intake" }

// Provides implements mqtt.Hook.
func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnSessionEstablished, mqtt.OnACLCheck,
		mqtt.OnPublish, mqtt.OnWillSent}, []byte{b})
}

// OnConnectAuthenticate accepts devices and units with their password or
// token, under the login limits and bounded bcrypt work of credentials,
// and with their own client id.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	idn, err := h.in.creds.login(string(pk.Connect.Username), pk.Connect.Password, cl.Net.Remote, "", viaMQTT)
	if errors.Is(err, ErrLoginBusy) {
		// Not a wrong password: a device that gives up on "not
		// authorized" must try again later.
		return h.refuse(cl, packets.ErrServerUnavailable)
	}
	if !h.admit(cl, pk, idn) {
		return false
	}
	return h.join(cl, idn)
}

// OnACLCheck lets a device publish only under {prefix}/dev/{id}/ (and
// subscribe there), and a unit publish only its pos and reply topics and
// subscribe only to its dispatch topic.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	idn := h.in.creds.user(string(cl.Properties.Username))
	if idn == nil {
		// Removed by a reload as it published: let the message through to
		// OnPublish, which keeps it as rejected (unknown device or unit)
		// rather than have it dropped unseen. The client is being
		// disconnected; it can do nothing else.
		if idn = h.in.creds.removed(string(cl.Properties.Username)); idn == nil || !write {
			return false
		}
	}
	prefix := h.in.cfg.MQTT.TopicPrefix
	switch idn.kind {
	case identityDevice:
		own := prefix + "/dev/" + idn.id + "/"
		return strings.HasPrefix(topic, own) && len(topic) > len(own)
	case identityUnit:
		own := prefix + "/unit/" + idn.id + "/"
		if write {
			return topic == own+"pos" || topic == own+"reply"
		}
		return topic == own+"dispatch"
	}
	return false
}

// OnPublish stores what a device published before mochi sends the PUBACK
// (processPublish acknowledges QoS 1 only after the hooks' OnPublish
// returned). mochi handles a client's packets one by one in its reading
// goroutine, so holding a message here (a device over its rate, a store
// being retried: see takeHeld) holds back that connection only. When the
// store still fails, the packet is rejected (no PUBACK, not forwarded) and
// the client disconnected, so that it sends the message again when it
// reconnects: answering with an error reason code would be a plain PUBACK
// to an MQTT 3.1.1 device, which would then drop the event.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	in := h.in
	d := in.deviceOf(string(cl.Properties.Username))
	err := ErrClosed
	if !in.closing.Load() {
		err = in.takeHeld(in.life, d, cl.Closed, message{topic: pk.TopicName, payload: pk.Payload, received: time.Now()})
	}
	if err == nil {
		return pk, nil
	}
	if pk.FixedHeader.Qos > 0 && !in.closing.Load() {
		cause := "store"
		if errors.Is(err, errThrottled) {
			cause = "rate"
		}
		in.kicked(d, cause)
		h.disconnect(cl)
	}
	return pk, packets.ErrRejectPacket
}

// disconnect drops a client without acknowledging its message. Its stop
// cause, ErrServerBusy, tells OnWillSent that the device was not lost.
func (h *hook) disconnect(cl *mqtt.Client) {
	if cl.Properties.ProtocolVersion >= 5 {
		_ = h.server.DisconnectClient(cl, packets.ErrServerBusy)
		return
	}
	cl.Stop(packets.ErrServerBusy)
}

// OnWillSent raises the supervision trouble of a device whose connection
// was lost, from its last will on its own state topic.
func (h *hook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	in := h.in
	if in.closing.Load() || cl.IsTakenOver() || errors.Is(cl.StopCause(), packets.ErrSessionTakenOver) ||
		errors.Is(cl.StopCause(), packets.ErrServerBusy) || errors.Is(cl.StopCause(), errCredentialsChanged) {
		// Our own shutdown, the device reconnected, or the intake
		// disconnected it (see disconnect and disconnectUsers; mochi
		// sends no will then today, and this keeps it so): not a lost
		// device.
		return
	}
	idn := in.creds.user(string(cl.Properties.Username))
	dev, kind, ok := in.topics.deviceTopic(pk.TopicName)
	if idn == nil || idn.kind != identityDevice || !ok || dev != idn.id || kind != kindState {
		return
	}
	if d := in.live().devices[dev]; d != nil && d.heldLately(time.Now()) {
		// The device gave up on a message that the intake held while the
		// store failed: Skywatch's doing, not a lost device.
		in.metrics.willsIgnored.Inc()
		return
	}
	if !in.enter() {
		return
	}
	defer in.wg.Done()
	// A failure is counted; the supervisor raises the trouble later.
	_ = in.take(in.life, message{topic: pk.TopicName, payload: pk.Payload, received: time.Now()})
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.level && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(a), m.level}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{m.Handler.WithGroup(name), m.level}
}
