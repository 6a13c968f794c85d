package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Timings of a flood device.
const (
	floodAckTimeout   = 15 * time.Second // a PUBACK later than this: send again on a new connection
	floodConnTimeout  = 5 * time.Second
	floodMinBackoff   = 50 * time.Millisecond
	floodMaxBackoff   = time.Second
	floodTopicPrefix  = "skywatch"
	floodEventPayload = `{"id":"n-%d","class":"alarm","qualifier":"new","zone":"1"}`
)

// flood is a fleet of alarm devices, each publishing its events n-0 ...
// n-(perDevice-1) one at a time with QoS 1 and waiting for each PUBACK.
// An event whose PUBACK does not come (the connection broke, or Skywatch
// was killed) is sent again, with the same id, on a new connection: the
// device's own store and forward. Skywatch's dedup keeps it once.
//
// Each connection is a new paho client with a clean session and without
// paho's reconnection, so that a completed publish token means a PUBACK:
// with a persistent session paho resends its stored messages after a
// reconnection and completes the original tokens without an error before
// any PUBACK came (messageIds.claimID in paho v1.5.1), which would make an
// unacknowledged event look acknowledged.
type flood struct {
	broker    string        // tcp://host:port
	devices   []string      // device ids, also their client ids and user names
	perDevice int           // events per device
	passwords bool          // authenticate with user id and password "pw-<id>"
	interval  time.Duration // pause after each acknowledged event

	acked   []atomic.Int64 // per device: events 0 .. acked-1 have their PUBACK
	lost    []atomic.Int64 // per device: connections that ended under it
	resends atomic.Int64   // events sent again after a missing PUBACK
	connErr atomic.Int64   // failed connection attempts

	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{} // closed when every device has finished or stopped
}

// startFlood starts the devices; the test's cleanup stops them.
func startFlood(t *testing.T, f *flood) *flood {
	f.acked = make([]atomic.Int64, len(f.devices))
	f.lost = make([]atomic.Int64, len(f.devices))
	f.done = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for i := range f.devices {
		f.wg.Go(func() { f.device(ctx, i) })
	}
	go func() {
		f.wg.Wait()
		close(f.done)
	}()
	t.Cleanup(f.stop)
	return f
}

// stop stops the devices and waits for them.
func (f *flood) stop() {
	f.cancel()
	<-f.done
}

// total is the number of events acknowledged so far.
func (f *flood) total() int64 {
	var n int64
	for i := range f.acked {
		n += f.acked[i].Load()
	}
	return n
}

// want is the number of events of the whole flood.
func (f *flood) want() int64 { return int64(len(f.devices) * f.perDevice) }

// snapshot is how many events each device had acknowledged.
func (f *flood) snapshot() []int64 {
	out := make([]int64, len(f.acked))
	for i := range f.acked {
		out[i] = f.acked[i].Load()
	}
	return out
}

// wait waits until every event is acknowledged; after timeout it fails
// the test and returns false.
func (f *flood) wait(t *testing.T, timeout time.Duration) bool {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(timeout):
		t.Errorf("flood: %d of %d events acknowledged after %v (%d resent, %d failed connection attempts)",
			f.total(), f.want(), timeout, f.resends.Load(), f.connErr.Load())
		return false
	}
	if got := f.total(); got != f.want() {
		t.Errorf("flood stopped with %d of %d events acknowledged", got, f.want())
		return false
	}
	return true
}

// device publishes one device's events.
func (f *flood) device(ctx context.Context, i int) {
	id := f.devices[i]
	topic := fmt.Sprintf("%s/dev/%s/event", floodTopicPrefix, id)
	var c paho.Client
	defer func() {
		if c != nil {
			c.Disconnect(0)
		}
	}()
	backoff := floodMinBackoff
	for k := 0; k < f.perDevice; {
		if c == nil {
			var err error
			c, err = f.connect(ctx, i)
			if err != nil {
				f.connErr.Add(1)
				if !sleepCtx(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, floodMaxBackoff)
				continue
			}
		}
		tok := c.Publish(topic, 1, false, fmt.Sprintf(floodEventPayload, k))
		if err := waitToken(ctx, tok, floodAckTimeout); err != nil {
			if ctx.Err() != nil {
				return
			}
			// Skywatch may be up without its store: wait before the next
			// attempt, as real devices do.
			f.resends.Add(1)
			c.Disconnect(0)
			c = nil
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, floodMaxBackoff)
			continue
		}
		backoff = floodMinBackoff
		k++
		f.acked[i].Store(int64(k))
		if f.interval > 0 && !sleepCtx(ctx, f.interval) {
			return
		}
	}
}

// disconnects is how many connections each device lost (closed by the
// broker or the network, not by the device).
func (f *flood) disconnects() []int64 {
	out := make([]int64, len(f.lost))
	for i := range f.lost {
		out[i] = f.lost[i].Load()
	}
	return out
}

// connect opens a new connection for device i.
func (f *flood) connect(ctx context.Context, i int) (paho.Client, error) {
	id := f.devices[i]
	opts := paho.NewClientOptions().
		AddBroker(f.broker).
		SetClientID(id).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(floodConnTimeout).
		SetWriteTimeout(floodConnTimeout).
		SetKeepAlive(30 * time.Second).
		SetConnectionLostHandler(func(paho.Client, error) { f.lost[i].Add(1) })
	if f.passwords {
		opts.SetUsername(id).SetPassword("pw-" + id)
	}
	c := paho.NewClient(opts)
	if err := waitToken(ctx, c.Connect(), floodConnTimeout+time.Second); err != nil {
		c.Disconnect(0)
		return nil, err
	}
	return c, nil
}

// waitToken waits for an MQTT operation, failing after timeout or when ctx
// ends.
func waitToken(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("timed out")
	}
}

// sleepCtx sleeps for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
