package alarms

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Timings of the external broker connection. Reconnection is fast: until
// the intake's persistent session is back, a broker that lost its state
// (Mosquitto killed between two autosaves) drops what devices publish to
// it, so every second of backoff widens that loss; the jitter keeps several
// Skywatch nodes from reconnecting in step.
const (
	connectBackoffMin = 250 * time.Millisecond
	connectBackoffMax = time.Second
	// storeRetryMax caps the wait between attempts to store a message that
	// failed: short, so that storing resumes within about half a second of
	// the store's return.
	storeRetryMax = 500 * time.Millisecond
	storeRetryMin = 50 * time.Millisecond
)

// brokerClient is the intake's persistent session at an external broker.
// Messages are acknowledged only after they are stored; until then the
// broker keeps them (and its in-flight limit holds back the rest).
type brokerClient struct {
	in *Intake
	c  paho.Client
}

func newBrokerClient(in *Intake) *brokerClient {
	cfg := &in.cfg.MQTT
	x := &brokerClient{in: in}
	opts := paho.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(in.clientID()).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false). // the broker keeps our subscriptions and unacknowledged messages
		SetAutoReconnect(true).
		// paho retries at once, then every interval (doubling from 1 s up
		// to it): 0.5 to 1.5 s here.
		SetMaxReconnectInterval(jitter(connectBackoffMax)).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetAutoAckDisabled(true).
		SetOrderMatters(false). // handlers run concurrently: stores can group commits
		SetOnConnectHandler(x.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			in.health.setConnected(false, fmt.Errorf("connection lost: %w", err))
		}).
		SetDefaultPublishHandler(x.onMessage)
	x.c = paho.NewClient(opts)
	return x
}

// run connects, retrying with backoff until the first connection; after
// that paho reconnects by itself.
func (x *brokerClient) run(ctx context.Context) {
	backoff := connectBackoffMin
	for {
		tok := x.c.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return
		}
		if tok.Error() == nil {
			return
		}
		x.in.health.setConnected(false, fmt.Errorf("connect: %w", tok.Error()))
		select {
		case <-time.After(jitter(backoff)):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, connectBackoffMax)
	}
}

// jitter returns a random duration between d/2 and 3d/2.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// onConnect subscribes (again) to the device topics. With a persistent
// session the subscriptions exist already, but the first connection, or a
// broker that lost its state, needs them.
func (x *brokerClient) onConnect(c paho.Client) {
	in := x.in
	if !in.enter() {
		return
	}
	defer in.wg.Done()
	filters := map[string]byte{}
	for _, f := range in.filters() {
		filters[f] = 1
	}
	tok := c.SubscribeMultiple(filters, nil) // nil: the default handler takes them
	select {
	case <-tok.Done():
	case <-in.life.Done():
		return
	}
	if err := tok.Error(); err != nil {
		in.health.setConnected(false, fmt.Errorf("subscribe: %w", err))
		return
	}
	in.health.setConnected(true, nil)
}

// onMessage stores a message and only then acknowledges it. While the
// store fails it tries again with backoff; if the intake closes first, the
// message stays unacknowledged and the broker delivers it again.
func (x *brokerClient) onMessage(_ paho.Client, msg paho.Message) {
	in := x.in
	if !in.enter() {
		return
	}
	defer in.wg.Done()
	m := message{topic: msg.Topic(), payload: msg.Payload(), replayed: msg.Retained(), received: time.Now()}
	backoff := storeRetryMin
	for {
		err := in.take(in.life, m)
		if err == nil {
			msg.Ack()
			return
		}
		select {
		case <-time.After(backoff):
		case <-in.life.Done():
			return
		}
		backoff = min(2*backoff, storeRetryMax)
	}
}

// close ends the session politely; the broker keeps it for the next run.
func (x *brokerClient) close() {
	x.c.Disconnect(250)
}
