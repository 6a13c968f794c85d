package alarms

// The incident engine in cluster mode (several Skywatch nodes sharing one
// Redis and one MQTT broker).
//
// One node at a time leads: cmd/skywatch holds a Redis lease with a fencing
// token and calls (*Engine).Lead for each term it holds the lease. A term
// loads the units and the open incidents, re-arms the offer deadlines,
// publishes what a previous term left in the outbox, catches up with the
// event log and the command stream from their saved cursors, and runs as
// the single-node engine does until its context ends (the lease is lost) or
// a write is fenced out. Every write of a term goes through a fenced
// variant (FencedStore): it succeeds only while the lease still names the
// term, checked atomically with the write, so a term that lost its lease
// (a long GC pause, a partition) can no longer change anything.
//
// Messages to units go through an outbox: a txn's messages are written in
// the same fenced write as its incidents, then published in commit order by
// the term's publisher goroutine (cluster_engine_outbox.go), which removes
// each once the broker has it (PUBACK); the engine's goroutine never waits
// for the broker. A new term first publishes what is left. Each message
// carries an ID stable per incident, version and unit, so a unit can drop a
// duplicate; a duplicate can only come from a crash between the broker's
// PUBACK and the removal, or from a failed publish (the messages handed to
// the broker behind it are sent again).
//
// Every node, leading or not, serves the public methods the same way: they
// are appended to a command stream in Redis that the leader reads in order
// and applies; the answer comes back on a per-request reply key. The
// leader's node too sends its requests through the stream: one path and one
// order for all nodes, and no race at the boundary of a term (a request
// made as a term ends is simply read by the next term). The stream's read
// position is saved in the same fenced write as the incidents, so a new
// leader neither skips nor repeats a command. A caller that gets no answer
// within EngineOptions.ForwardTimeout gets an error wrapping ErrNoLeader;
// its command carries that deadline and a later leader drops it unapplied
// (but for position reports, which are facts and always applied).
//
// Every change and every message to a unit is written to a feed stream in
// the same fenced write; every node (the leader too) reads the feed and
// feeds its own SubscribeIncidents and DispatchMessages subscribers, so a
// change is shown on every node once, in the leader's order, and only if
// it was saved. A stream rather than pub/sub: a node whose Redis connection
// drops resumes after the last entry it read instead of silently missing
// what was published meanwhile. IncidentChange.Seq is numbered by each
// node; it jumps when a node cannot read the feed for a while (or the
// feed was trimmed past it), telling subscribers to reload.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Fence is a term's lease: a fenced write succeeds only while the Redis key
// Key holds Value.
type Fence struct {
	Key, Value string
}

var (
	// ErrFenced: a write refused because its fence no longer holds (the
	// lease moved to another node). The term that made it stops.
	ErrFenced = errors.New("fenced out: the engine's lease is held by another term")
	// ErrNoLeader: in cluster mode, no incident engine answered in time (no
	// node holds the engine's lease, or it is failing over).
	ErrNoLeader = errors.New("no incident engine leader answered")
)

// OutboxMessage is a message to a unit saved with the change that caused it
// and not yet known to be published.
type OutboxMessage struct {
	// Entry identifies it in the store's outbox (for RemoveOutbox).
	Entry string
	Unit  string
	Msg   DispatchMessage
}

// FeedItem is an entry of the engine's feed: a change or a message to a
// unit, as JSON.
type FeedItem struct {
	// ID is the store's id of the entry (set when read).
	ID string
	// Unit is the unit a dispatch message is for; "" for a change.
	Unit string
	Data []byte
	// Gap is set (when read) on the first item after entries that were
	// trimmed from the feed before this reader read them.
	Gap bool
}

// CommandEntry is a request in the engine's command stream.
type CommandEntry struct {
	ID   string
	Data []byte
}

// FencedSave is one fenced write of a term.
type FencedSave struct {
	Incidents []Incident
	// Cursor is the event log cursor to save ("" keeps it).
	Cursor string
	// Commands is the command stream's read position to save ("" keeps it).
	Commands string
	// Outbox are the messages to units to keep until published.
	Outbox []OutboxMessage
	// Feed are appended to the feed stream.
	Feed []FeedItem
}

// FencedStore is the storage a cluster-mode engine needs beside
// IncidentStore: writes that succeed only while a fence holds. redisstore
// implements it (one Lua script per write); NewEngine refuses cluster mode
// with a store that does not.
type FencedStore interface {
	// SaveFenced writes as SaveIncidents does, plus the command position,
	// the outbox messages and the feed items, all or nothing, and only while
	// GET f.Key == f.Value; otherwise it writes nothing and the error wraps
	// ErrFenced. It returns the outbox entries' ids, in order.
	SaveFenced(ctx context.Context, f Fence, s FencedSave) ([]string, error)
	// PutUnitFenced is PutUnit under a fence.
	PutUnitFenced(ctx context.Context, f Fence, u UnitState) error
	// Outbox returns the messages left in the outbox, oldest first.
	Outbox(ctx context.Context) ([]OutboxMessage, error)
	// RemoveOutbox removes published messages by entry.
	RemoveOutbox(ctx context.Context, entries []string) error
	// CommandCursor returns the saved command stream position, "" when none.
	CommandCursor(ctx context.Context) (string, error)
}

// EngineCluster is the shared plumbing of a cluster-mode engine: the
// command stream, the reply keys and the feed. redisstore implements it.
type EngineCluster interface {
	// SendCommand appends a request to the command stream (bounded).
	SendCommand(ctx context.Context, data []byte) (id string, err error)
	// ReadCommands returns up to count commands after id after ("" from the
	// start), waiting up to wait for one.
	ReadCommands(ctx context.Context, after string, count int, wait time.Duration) ([]CommandEntry, error)
	// Reply stores the answer to a request under key, kept for ttl.
	Reply(ctx context.Context, key string, data []byte, ttl time.Duration) error
	// AwaitReply waits up to wait for the answer under key; nil, nil when
	// none came.
	AwaitReply(ctx context.Context, key string, wait time.Duration) ([]byte, error)
	// PublishFeed appends items to the feed (outside a fenced write).
	PublishFeed(ctx context.Context, items []FeedItem) error
	// FeedTail returns the id of the feed's last entry ("" when empty), to
	// read what comes after it.
	FeedTail(ctx context.Context) (string, error)
	// ReadFeed returns up to count feed items after id after, waiting up
	// to wait for one.
	ReadFeed(ctx context.Context, after string, count int, wait time.Duration) ([]FeedItem, error)
}

// Defaults of cluster mode.
const (
	// DefaultForwardTimeout is how long a request waits for the leader: the
	// default failover (10 s) and some.
	DefaultForwardTimeout = 15 * time.Second
	// clusterPoll: the event log is read this often in cluster mode when
	// EngineOptions.Poll is not set (events stored by other nodes do not
	// wake the leader).
	clusterPoll = 200 * time.Millisecond
	// commandBatch is how many commands the leader reads at a time.
	commandBatch = 64
	// feedBatch is how many feed items a node reads at a time.
	feedBatch = 256
	// busWait is how long a blocking read of a stream waits.
	busWait = time.Second
	// pubackWait bounds the publisher's wait for the broker's PUBACK of a
	// unit message; outboxRetry is its first pause before publishing the
	// outbox again after a failure (doubling up to outboxRetryMax; the
	// engine goes on meanwhile; messages wait in the outbox, in order).
	pubackWait  = 2 * time.Second
	outboxRetry = time.Second
)

// Lead runs one term of leadership under fence f: it loads the units and
// the open incidents, re-arms offer deadlines (past ones fire at once),
// publishes what the outbox holds, catches up with the event log and the
// command stream from their saved cursors, dispatches waiting incidents,
// and runs until ctx ends (the lease is lost) or a write is fenced out.
// Then it drops its state: the next term starts from the store. It returns
// nil when the term ended by ctx or by the fence, an error when it could
// not start (the caller may try again).
func (e *Engine) Lead(ctx context.Context, f Fence) error {
	if e.cl == nil {
		return errors.New("alarms: engine: Lead needs cluster mode (EngineOptions.Cluster)")
	}
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return ErrEngineClosed
	case !e.started:
		e.mu.Unlock()
		return errors.New("alarms: engine: Lead before Start")
	case e.leading:
		e.mu.Unlock()
		return errors.New("alarms: engine: a term is running already")
	}
	e.leading = true
	life := e.life
	e.terms.Add(1)
	e.mu.Unlock()
	defer e.terms.Done()
	defer func() {
		e.mu.Lock()
		e.leading, e.termDone = false, nil
		e.mu.Unlock()
	}()

	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// From here on, Apply hands the term its changes (see Engine.Apply);
	// before, the term's state is built from the configuration Apply set.
	e.mu.Lock()
	e.termDone = tctx.Done()
	e.mu.Unlock()
	stop := context.AfterFunc(life, cancel) // Close ends the term
	defer stop()

	st := newEngineState(e)
	st.fence, st.endTerm = &f, cancel
	// The publisher starts by publishing what the outbox holds (a previous
	// term's leftovers), then what this term commits.
	st.pub = newOutboxPublisher(e)
	lctx, lcancel := storeCtx(tctx)
	err := st.load(lctx)
	if err == nil {
		st.commands, err = e.fstore.CommandCursor(lctx)
	}
	lcancel()
	if err != nil {
		return fmt.Errorf("alarms: engine: start of term: %w", err)
	}
	reports := e.conf().reports
	for _, u := range st.unitOrder {
		r := reports[u.cfg.ID]
		if r == nil {
			continue // removed by a reload meanwhile
		}
		r.mu.Lock()
		r.last = u.st
		r.mu.Unlock()
	}
	e.logger.Info("alarms: incident engine: leading", "fence", f.Value)

	var wg sync.WaitGroup
	wg.Go(func() { st.pub.run(tctx) })
	wg.Go(func() { e.readCommands(tctx, st) })
	e.loop(tctx, st)
	cancel()
	wg.Wait()
	e.logger.Info("alarms: incident engine: term over", "fence", f.Value, "fenced", st.fenced.Load())
	return nil
}

// startFollower starts the follower side of a cluster-mode engine: the
// goroutine that feeds local subscribers from the feed. e.mu is held.
func (e *Engine) startFollower(ctx context.Context) error {
	tail, err := e.cl.FeedTail(ctx)
	if err != nil {
		return fmt.Errorf("alarms: engine: feed: %w", err)
	}
	e.started = true
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.life, e.cancel = life, cancel
	go func() {
		defer close(e.done)
		e.readFeed(life, tail)
		e.terms.Wait()
	}()
	return nil
}

// fencedOut stops the term after a write refused by the fence.
func (s *engineState) fencedOut(err error) {
	if s.endTerm != nil && errors.Is(err, ErrFenced) {
		if !s.fenced.Swap(true) {
			s.e.logger.Warn("alarms: incident engine: fenced out; ending the term", "err", err)
		}
		s.endTerm()
	}
}

// messageIDs sets the IDs of a txn's messages: incident:v{version}:unit,
// with :2, :3... for further messages of the same triple in the txn.
func (t *txn) messageIDs() {
	seen := map[string]int{}
	for i := range t.msgs {
		m := &t.msgs[i].m
		var v int64
		if w := t.work[m.Incident]; w != nil {
			v = w.inc.Version
		}
		id := m.Incident + ":v" + strconv.FormatInt(v, 10) + ":" + t.msgs[i].unit
		seen[id]++
		if n := seen[id]; n > 1 {
			id += ":" + strconv.Itoa(n)
		}
		m.ID = id
	}
}

// feedItems turns changes and messages into feed items.
func feedItems(changes []IncidentChange, msgs []unitMessage) ([]FeedItem, error) {
	out := make([]FeedItem, 0, len(changes)+len(msgs))
	for i := range changes {
		b, err := json.Marshal(&changes[i])
		if err != nil {
			return nil, err
		}
		out = append(out, FeedItem{Data: b})
	}
	for i := range msgs {
		b, err := json.Marshal(&msgs[i].m)
		if err != nil {
			return nil, err
		}
		out = append(out, FeedItem{Unit: msgs[i].unit, Data: b})
	}
	return out, nil
}

// announce publishes a change that is not part of a saved txn (a unit's
// status after a position report): locally, or on the feed in cluster mode.
func (s *engineState) announce(ch IncidentChange) {
	if s.e.cl == nil {
		ch.Seq = s.nextSeq()
		s.e.changes.publish("", ch)
		return
	}
	items, err := feedItems([]IncidentChange{ch}, nil)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err = s.e.cl.PublishFeed(ctx, items)
		cancel()
	}
	if err != nil {
		s.e.logger.Warn("alarms: incident engine: feed", "err", err)
	}
}

// readFeed is every cluster node's goroutine that feeds the local
// subscribers from the feed stream, until ctx ends.
func (e *Engine) readFeed(ctx context.Context, after string) {
	failing := false
	var seq uint64
	for ctx.Err() == nil {
		items, err := e.cl.ReadFeed(ctx, after, feedBatch, busWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				e.logger.Warn("alarms: incident engine: cannot read the feed; retrying", "err", err)
				failing = true
				seq++ // subscribers see a jump and reload
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		failing = false
		for _, it := range items {
			after = it.ID
			if it.Gap {
				seq++ // subscribers see a jump and reload
			}
			if it.Unit != "" {
				var m DispatchMessage
				if json.Unmarshal(it.Data, &m) == nil {
					e.toUnits.publish(it.Unit, m)
				}
				continue
			}
			var ch IncidentChange
			if json.Unmarshal(it.Data, &ch) != nil {
				continue
			}
			seq++
			ch.Seq = seq
			e.changes.publish("", ch)
		}
	}
}

// commitFenced is commit in cluster mode: one fenced write holds the
// incidents, the cursors, the units' messages (outbox) and the feed; the
// messages are published after it, then removed from the outbox. A fenced
// out write ends the term.
func (t *txn) commitFenced(ctx context.Context, cursor, commands string) error {
	s := t.s
	if cursor == s.cursor {
		cursor = ""
	}
	if commands == s.commands {
		commands = ""
	}
	if len(t.order) == 0 {
		if cursor == "" && commands == "" {
			return nil
		}
		if _, err := s.e.fstore.SaveFenced(ctx, *s.fence, FencedSave{Cursor: cursor, Commands: commands}); err != nil {
			s.fencedOut(err)
			return err
		}
		if commands != "" {
			s.commands = commands
		}
		return nil
	}
	incs := t.versions()
	t.messageIDs()
	// Installed first, for the units' statuses the feed carries; undone if
	// the write fails.
	changes := t.install()
	feed, err := feedItems(changes, t.msgs)
	var entries []string
	if err == nil {
		outbox := make([]OutboxMessage, len(t.msgs))
		for i, um := range t.msgs {
			outbox[i] = OutboxMessage{Unit: um.unit, Msg: um.m}
		}
		entries, err = s.e.fstore.SaveFenced(ctx, *s.fence, FencedSave{Incidents: incs, Cursor: cursor,
			Commands: commands, Outbox: outbox, Feed: feed})
	}
	if err != nil {
		t.uninstall()
		s.fencedOut(err)
		return err
	}
	if commands != "" {
		s.commands = commands
	}
	if len(t.msgs) == 0 {
		return nil
	}
	// Published by the term's publisher, never waited for here.
	if len(entries) != len(t.msgs) {
		s.pub.reloadOutbox()
		return nil
	}
	sent := make([]OutboxMessage, len(t.msgs))
	for i, um := range t.msgs {
		sent[i] = OutboxMessage{Entry: entries[i], Unit: um.unit, Msg: um.m}
	}
	s.pub.enqueue(sent)
	return nil
}
