package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// loadObserver sees stored events (or, for the ceiling, events the broker
// delivers) and reports them to the tracker.
type loadObserver struct {
	s     loadSettings
	tr    *loadTracker
	log   *slog.Logger
	ready chan struct{} // closed once the observer listens

	reconnects, gaps atomic.Uint64
	readyOnce        atomic.Bool
}

func newLoadObserver(s loadSettings, tr *loadTracker, logger *slog.Logger) *loadObserver {
	return &loadObserver{s: s, tr: tr, log: logger, ready: make(chan struct{})}
}

// troubles returns the stream's reconnections and gaps so far.
func (o *loadObserver) troubles() (reconnects, gaps uint64) {
	return o.reconnects.Load(), o.gaps.Load()
}

func (o *loadObserver) markReady() {
	if o.readyOnce.CompareAndSwap(false, true) {
		close(o.ready)
	}
}

// run observes until ctx ends.
func (o *loadObserver) run(ctx context.Context) error {
	if o.s.observe == "mqtt" {
		return o.runMQTT(ctx)
	}
	return o.runSSE(ctx)
}

// runSSE reads GET /api/stream, reconnecting with Last-Event-ID (Skywatch
// disconnects a client that falls behind; it then replays what it missed).
func (o *loadObserver) runSSE(ctx context.Context) error {
	url := strings.TrimSuffix(o.s.httpURL, "/") + "/api/stream"
	lastID := ""
	for ctx.Err() == nil {
		id, err := o.readStream(ctx, url, lastID)
		if id != "" {
			lastID = id
		}
		if ctx.Err() != nil {
			return nil
		}
		if !o.readyOnce.Load() {
			return err // the first connection failed: say why
		}
		o.reconnects.Add(1)
		o.log.Debug("event stream ended, reconnecting", "error", err)
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return nil
}

// readStream reads one connection of the event stream; it returns the id
// of the last event read.
func (o *loadObserver) readStream(ctx context.Context, url, lastID string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	for k, vs := range o.s.header {
		req.Header[k] = vs
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /api/stream: %s", resp.Status)
	}
	o.markReady()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var event struct {
		ID string `json:"id"`
	}
	var change struct {
		Entry struct {
			Action string `json:"action"`
			Event  string `json:"event"` // device/id
		} `json:"entry"`
	}
	var name, id string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0: // end of an event
			switch name {
			case "alarm":
				at := time.Now()
				event.ID = ""
				if json.Unmarshal(data, &event) == nil && event.ID != "" {
					o.tr.observed(event.ID, at)
				}
				lastID = id
			case "incident":
				at := time.Now()
				change.Entry.Action, change.Entry.Event = "", ""
				if json.Unmarshal(data, &change) == nil && change.Entry.Event != "" &&
					(change.Entry.Action == "opened" || change.Entry.Action == "joined") {
					_, evID, _ := strings.Cut(change.Entry.Event, "/")
					o.tr.observedIncident(evID, at)
				}
			case "gap":
				o.gaps.Add(1)
			}
			name, id, data = "", "", data[:0]
		case bytes.HasPrefix(line, []byte("event: ")):
			name = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("id: ")):
			id = string(line[len("id: "):])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data, line[len("data: "):]...)
		}
	}
	if err := sc.Err(); err != nil {
		return lastID, err
	}
	return lastID, errors.New("stream closed by the server")
}

// runMQTT subscribes as a plain MQTT client to the device topics (as the
// intake does at an external broker) and observes events as they arrive.
func (o *loadObserver) runMQTT(ctx context.Context) error {
	opts := paho.NewClientOptions().
		AddBroker(o.s.broker).
		SetClientID("skywatch-load-observer-" + strconv.FormatInt(time.Now().UnixNano(), 36)).
		SetCleanSession(true).
		SetKeepAlive(30 * time.Second).
		SetAutoReconnect(true).
		SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) {
			if !strings.HasSuffix(msg.Topic(), "/event") {
				return
			}
			at := time.Now()
			var event struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(msg.Payload(), &event) == nil && event.ID != "" {
				o.tr.observed(event.ID, at)
			}
		})
	if o.s.subUser != "" {
		opts.SetUsername(o.s.subUser).SetPassword(o.s.subPass)
	}
	c := paho.NewClient(opts)
	if err := waitPaho(ctx, c.Connect()); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Disconnect(250)
	p := o.s.prefix + "/dev/+/"
	filters := map[string]byte{p + "event": 1, p + "hb": 1, p + "state": 1}
	if err := waitPaho(ctx, c.SubscribeMultiple(filters, nil)); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	o.markReady()
	<-ctx.Done()
	return nil
}

func waitPaho(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return errors.New("no answer in 30 s")
	}
}
