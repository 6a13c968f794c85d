package hardware

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/skywatch/skywatch/alarms"
)

// Timings of a simulated device's MQTT client.
const (
	simKeepAlive      = 60 * time.Second
	simConnectTimeout = 10 * time.Second
	simMinBackoff     = 500 * time.Millisecond // before reconnecting, doubled while it fails
	simMaxBackoff     = 10 * time.Second
	simAckTimeout     = 30 * time.Second // a PUBACK later than this counts as an error
	simGoodbyeTimeout = 2 * time.Second  // for "offline" when the simulator stops
	simQuiesce        = 250              // ms that Disconnect lets work finish
	simMaxQueued      = 100              // alarms kept while disconnected
	simAckQueue       = 64               // publishes waiting for their PUBACK
)

// simClient is one running simulated device. Its run goroutine owns the
// MQTT connection (it connects and reconnects: the client's own
// reconnection leaves goroutines behind that nobody can wait for), rng,
// n and queued; PublishEvent may publish from other goroutines (the MQTT
// client is safe for that).
type simClient struct {
	sim    *DeviceSim
	dev    SimDevice
	dec    alarms.Decoder
	runID  string
	client mqtt.Client

	eventTopic, hbTopic, stateTopic string

	rng    *rand.Rand
	n      uint64   // events made by the device itself
	queued [][]byte // alarms raised while disconnected

	lost chan struct{} // the connection was lost (from the client's goroutine)

	mu   sync.Mutex
	upCh chan struct{} // closed while connected; replaced when the connection is lost
	conn *cuttableConn // the current connection, for cutting it
}

// simAck is a publish whose PUBACK the ack goroutine waits for.
type simAck struct {
	tok   mqtt.Token
	event bool // count it as an event
}

func newSimClient(s *DeviceSim, d SimDevice, index int, runID string) *simClient {
	if d.Behaviour == "" {
		d.Behaviour = BehaviourNormal
	}
	h := fnv.New64a()
	h.Write([]byte(d.ID))
	base := s.cfg.Prefix + "/dev/" + d.ID
	c := &simClient{
		sim:        s,
		dev:        d,
		dec:        Decoders()[d.Format],
		runID:      runID,
		eventTopic: base + "/event",
		hbTopic:    base + "/hb",
		stateTopic: base + "/state",
		rng:        rand.New(rand.NewPCG(uint64(s.cfg.Seed), h.Sum64()^uint64(index))),
		lost:       make(chan struct{}, 1),
		upCh:       make(chan struct{}),
	}

	opts := mqtt.NewClientOptions().
		AddBroker(s.cfg.Broker).
		SetClientID(d.ID).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetOrderMatters(false).
		SetKeepAlive(simKeepAlive).
		SetConnectTimeout(simConnectTimeout).
		SetWriteTimeout(simConnectTimeout).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetWill(c.stateTopic, "offline", 1, true).
		SetStore(newCopyingStore()).
		SetCustomOpenConnectionFn(c.dial).
		SetConnectionLostHandler(c.onLost)
	if d.Username != "" {
		opts.SetUsername(d.Username).SetPassword(d.Password)
	}
	c.client = mqtt.NewClient(opts)
	return c
}

// dial opens the TCP connection itself so that a flaky device can cut it
// without an MQTT DISCONNECT, which makes the broker publish the will.
func (c *simClient) dial(uri *url.URL, opts mqtt.ClientOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: opts.ConnectTimeout}
	conn, err := d.Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	cc := &cuttableConn{Conn: conn}
	c.mu.Lock()
	c.conn = cc
	c.mu.Unlock()
	return cc, nil
}

// isUp tells whether the device is connected.
func (c *simClient) isUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.upCh:
		return true
	default:
		return false
	}
}

// waitUp waits until the device is connected.
func (c *simClient) waitUp(ctx context.Context) error {
	c.mu.Lock()
	up := c.upCh
	c.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// setUp records a connection going up or down, once per change.
func (c *simClient) setUp(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.upCh:
		if !up {
			c.upCh = make(chan struct{})
			c.sim.counts.connected.Add(-1)
		}
	default:
		if up {
			close(c.upCh)
			c.sim.counts.connected.Add(1)
		}
	}
}

// cut closes the current connection abruptly.
func (c *simClient) cut() {
	if !c.isUp() {
		return
	}
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		conn.cut()
		c.sim.counts.cuts.Add(1)
	}
}

// onLost runs in a goroutine of the MQTT client: it tells run.
func (c *simClient) onLost(_ mqtt.Client, err error) {
	c.setUp(false)
	select {
	case c.lost <- struct{}{}:
	default: // run has a signal pending already
	}
	c.sim.log.Debug("device sim: connection lost", "device", c.dev.ID, "error", err)
}

// run is the device: it connects, then heartbeats, raises alarms and
// misbehaves as told until ctx ends; it reconnects with backoff.
func (c *simClient) run(ctx context.Context) {
	cfg := &c.sim.cfg
	acks := make(chan simAck, simAckQueue)
	stopAcks := make(chan struct{})
	var ackers sync.WaitGroup
	ackers.Go(func() { c.waitAcks(acks, stopAcks) })
	defer func() {
		c.stop()
		close(stopAcks)
		ackers.Wait()
	}()

	connect := time.NewTimer(0)
	defer connect.Stop()
	backoff := simMinBackoff
	// The first heartbeat comes at a random phase so that a fleet
	// started together does not beat together.
	hb := time.NewTimer(c.randDuration(cfg.Heartbeat))
	defer hb.Stop()
	alarm := c.newRandomTimer(cfg.AlarmEvery)
	defer alarm.Stop()
	cutTimer := c.newRandomTimer(0)
	if c.dev.Behaviour == BehaviourFlaky {
		cutTimer = c.newRandomTimer(cfg.FlakyEvery)
	}
	defer cutTimer.Stop()
	silent := false
	silence := time.NewTimer(cfg.SilentAfter)
	if c.dev.Behaviour != BehaviourSilent {
		silence.Stop()
	}
	defer silence.Stop()

	for {
		select {
		case <-ctx.Done():
			return
		case <-connect.C:
			if err := waitToken(ctx, c.client.Connect(), 0); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.sim.counts.errs.Add(1)
				c.sim.log.Debug("device sim: connect", "device", c.dev.ID, "error", err)
				connect.Reset(backoff/2 + c.randDuration(backoff))
				backoff = min(2*backoff, simMaxBackoff)
				continue
			}
			backoff = simMinBackoff
			c.sim.counts.connects.Add(1)
			c.setUp(true)
			if !c.send(ctx, acks, c.stateTopic, true, []byte("online"), false) {
				return
			}
			for len(c.queued) > 0 && c.isUp() {
				if !c.send(ctx, acks, c.eventTopic, false, c.queued[0], true) {
					return
				}
				c.queued = c.queued[1:]
			}
		case <-c.lost:
			// A real device notices and redials after a moment.
			connect.Reset(simMinBackoff/2 + c.randDuration(simMinBackoff))
		case <-hb.C:
			hb.Reset(cfg.Heartbeat)
			if !silent && c.isUp() {
				c.client.Publish(c.hbTopic, 0, false, simHeartbeat(c.rng, time.Now()))
				c.sim.counts.heartbeats.Add(1)
			}
		case <-alarm.C:
			alarm.Reset(c.expDuration(cfg.AlarmEvery))
			if silent {
				continue
			}
			p := c.alarmPayload()
			if !c.isUp() {
				// Store and forward, as panels do, within bounds.
				if len(c.queued) == simMaxQueued {
					c.queued = c.queued[1:]
					c.sim.counts.errs.Add(1)
				}
				c.queued = append(c.queued, p)
				continue
			}
			if !c.send(ctx, acks, c.eventTopic, false, p, true) {
				return
			}
		case <-cutTimer.C:
			cutTimer.Reset(c.expDuration(cfg.FlakyEvery))
			c.cut()
		case <-silence.C:
			silent = true
			c.sim.log.Debug("device sim: device fell silent", "device", c.dev.ID)
		}
	}
}

// send publishes with QoS 1 and hands the token to the ack goroutine; it
// returns false when ctx ended first.
func (c *simClient) send(ctx context.Context, acks chan<- simAck, topic string, retained bool, payload []byte, event bool) bool {
	if event {
		c.sim.counts.published.Add(1)
	}
	select {
	case acks <- simAck{c.client.Publish(topic, 1, retained, payload), event}:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitAcks counts PUBACKs in publishing order. A PUBACK that does not come
// within simAckTimeout, or before stop, is an error (the client still
// sends the message again after a reconnection).
func (c *simClient) waitAcks(acks <-chan simAck, stop <-chan struct{}) {
	for {
		var a simAck
		select {
		case a = <-acks:
		case <-stop:
			for {
				select {
				case a := <-acks:
					c.countAck(a, waitToken(context.Background(), a.tok, time.Nanosecond))
				default:
					return
				}
			}
		}
		t := time.NewTimer(simAckTimeout)
		var err error
		select {
		case <-a.tok.Done():
			err = a.tok.Error()
		case <-t.C:
			err = errors.New("no acknowledgement in time")
		case <-stop:
			err = waitToken(context.Background(), a.tok, time.Nanosecond)
		}
		t.Stop()
		c.countAck(a, err)
	}
}

func (c *simClient) countAck(a simAck, err error) {
	switch {
	case err != nil:
		c.sim.counts.errs.Add(1)
	case a.event:
		c.sim.counts.acked.Add(1)
	}
}

// alarmPayload makes the device's next alarm in its format, or garbage
// about half of the time for a garbage device.
func (c *simClient) alarmPayload() []byte {
	c.n++
	var p []byte
	switch c.dev.Format {
	case FormatContactID:
		p = simContactIDPayload(c.rng, simAccount(c.dev.ID))
	case FormatZigbee2MQTT:
		p = simZigbeeReport(c.rng)
	default:
		id := fmt.Sprintf("ev-%s-%s-%d", c.dev.ID, c.runID, c.n)
		p = simSkywatchPayload(c.rng, id, c.n, time.Now())
	}
	if c.dev.Behaviour == BehaviourGarbage && c.rng.IntN(2) == 0 {
		c.sim.counts.garbage.Add(1)
		p = simGarbage(c.rng, c.dec, p)
	}
	return p
}

// publishEvent publishes an event with QoS 1 and waits for its PUBACK,
// counting the outcome; for PublishEvent.
func (c *simClient) publishEvent(ctx context.Context, payload []byte) error {
	c.sim.counts.published.Add(1)
	err := waitToken(ctx, c.client.Publish(c.eventTopic, 1, false, payload), simAckTimeout)
	if err != nil {
		c.sim.counts.errs.Add(1)
		return err
	}
	c.sim.counts.acked.Add(1)
	return nil
}

// stop says "offline" (a device switched off on purpose leaves no will)
// and disconnects.
func (c *simClient) stop() {
	if c.isUp() {
		ctx, cancel := context.WithTimeout(context.Background(), simGoodbyeTimeout)
		_ = waitToken(ctx, c.client.Publish(c.stateTopic, 1, true, []byte("offline")), 0)
		cancel()
	}
	c.client.Disconnect(simQuiesce)
	c.setUp(false)
}

// waitToken waits for an MQTT operation, ctx, or timeout (0: none).
func waitToken(ctx context.Context, tok mqtt.Token, timeout time.Duration) error {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-expired:
		return errors.New("no acknowledgement in time")
	}
}

// randDuration is uniform in [0, d).
func (c *simClient) randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(c.rng.Int64N(int64(d)))
}

// expDuration is exponentially distributed with mean d (a Poisson
// process), at least 1 ms.
func (c *simClient) expDuration(d time.Duration) time.Duration {
	return max(time.Millisecond, time.Duration(c.rng.ExpFloat64()*float64(d)))
}

// newRandomTimer fires after expDuration(mean), or never when mean is 0.
func (c *simClient) newRandomTimer(mean time.Duration) *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	if mean > 0 {
		t.Reset(c.expDuration(mean))
	}
	return t
}
