package hardware

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/skywatch/skywatch/alarms"
)

// Bounds of a simulated unit.
const (
	unitInbox      = 64 // dispatch messages waiting for the unit's goroutine
	unitMaxQueued  = 32 // replies kept while disconnected
	unitRecentSeen = 32 // offers remembered to drop repeated deliveries
	// unitReplyGap is the least time between a unit's replies about one
	// incident (accept, en_route, arrived, cleared): the server handles
	// messages concurrently, and a reply that overtook the one before it
	// would be refused. A real unit is never that quick anyway.
	unitReplyGap = 500 * time.Millisecond
)

// unitPosReport is the JSON a unit publishes on {prefix}/unit/{id}/pos.
// Status is "available" while the unit is free, and left out while it is
// on an incident: the server works out busy from the incident and takes
// only available or off_duty from the unit.
type unitPosReport struct {
	Lat    float64           `json:"lat"`
	Lon    float64           `json:"lon"`
	Status alarms.UnitStatus `json:"status,omitempty"`
	TS     time.Time         `json:"ts"`
}

// unitReplyMsg is the JSON a unit publishes on {prefix}/unit/{id}/reply.
type unitReplyMsg struct {
	Incident    string             `json:"incident"`
	Action      alarms.ReplyAction `json:"action"`
	Disposition alarms.Disposition `json:"disposition,omitempty"`
	Note        string             `json:"note,omitempty"`
}

// unitPhase is where a unit is with its incident.
type unitPhase int

const (
	phaseOffered    unitPhase = iota + 1 // an answer is due at jobTimer
	phaseAccepted                        // sets off (en_route) at jobTimer
	phaseTravelling                      // driving there; arrives at the end of its leg
	phaseOnScene                         // clears at jobTimer
)

// unitJob is the incident a unit is answering or working on.
type unitJob struct {
	incident string
	lat, lon float64
	phase    unitPhase
	accept   bool // the answer due in phaseOffered
}

// unitSimClient is one running simulated unit. Its run goroutine owns the
// MQTT connection (it connects and reconnects itself, as simClient does),
// the unit's position, its job and rng. The MQTT client's router goroutine
// hands dispatch messages over through inbox.
type unitSimClient struct {
	sim    *UnitSim
	unit   SimUnit
	client mqtt.Client

	posTopic, replyTopic, dispatchTopic string
	speed, radius                       float64

	rng    *rand.Rand
	leg    simLeg
	job    *unitJob
	seen   []string // recent offers (incident and sent time)
	queued []unitReplyMsg

	inbox    chan []byte
	stopping chan struct{} // closed when run ends, so that the router never blocks on inbox
	lost     chan struct{}

	mu sync.Mutex
	up bool
}

func newUnitSimClient(s *UnitSim, u SimUnit, index int) *unitSimClient {
	h := fnv.New64a()
	h.Write([]byte(u.ID))
	base := s.cfg.Prefix + "/unit/" + u.ID
	kind, _ := simKindOf(u.kind())
	speed := kind.speed
	if s.cfg.TravelSpeed > 0 {
		speed = s.cfg.TravelSpeed
	}
	c := &unitSimClient{
		sim:           s,
		unit:          u,
		posTopic:      base + "/pos",
		replyTopic:    base + "/reply",
		dispatchTopic: base + "/dispatch",
		speed:         speed,
		radius:        u.radius(),
		rng:           rand.New(rand.NewPCG(uint64(s.cfg.Seed), h.Sum64()^uint64(index))),
		inbox:         make(chan []byte, unitInbox),
		stopping:      make(chan struct{}),
		lost:          make(chan struct{}, 1),
	}
	opts := mqtt.NewClientOptions().
		AddBroker(s.cfg.Broker).
		SetClientID(u.ID).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetOrderMatters(true). // an offer before its withdrawal
		SetKeepAlive(simKeepAlive).
		SetConnectTimeout(simConnectTimeout).
		SetWriteTimeout(simConnectTimeout).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetStore(newCopyingStore()).
		// Messages of the persistent session may come before Subscribe
		// has registered its handler.
		SetDefaultPublishHandler(c.onMessage).
		SetConnectionLostHandler(c.onLost)
	if u.Username != "" {
		opts.SetUsername(u.Username).SetPassword(u.Password)
	}
	c.client = mqtt.NewClient(opts)
	return c
}

// onMessage runs on the MQTT client's router goroutine: it hands the
// payload to run. The message is acknowledged when it returns.
func (c *unitSimClient) onMessage(_ mqtt.Client, m mqtt.Message) {
	if m.Topic() != c.dispatchTopic {
		return
	}
	if f := c.sim.cfg.OnDispatch; f != nil {
		f(c.unit.ID, m.Payload())
	}
	select {
	case c.inbox <- append([]byte(nil), m.Payload()...):
	case <-c.stopping:
	}
}

// onLost runs in a goroutine of the MQTT client: it tells run.
func (c *unitSimClient) onLost(_ mqtt.Client, err error) {
	c.setUp(false)
	select {
	case c.lost <- struct{}{}:
	default:
	}
	c.sim.log.Debug("unit sim: connection lost", "unit", c.unit.ID, "error", err)
}

func (c *unitSimClient) isUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// setUp records a connection going up or down, once per change.
func (c *unitSimClient) setUp(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up == up {
		return
	}
	c.up = up
	if up {
		c.sim.counts.connected.Add(1)
	} else {
		c.sim.counts.connected.Add(-1)
	}
}

// run is the unit: it connects, patrols, and answers and works offers
// until ctx ends; it reconnects with backoff.
func (c *unitSimClient) run(ctx context.Context) {
	cfg := &c.sim.cfg
	acks := make(chan mqtt.Token, simAckQueue)
	stopAcks := make(chan struct{})
	var ackers sync.WaitGroup
	ackers.Go(func() { c.waitAcks(acks, stopAcks) })
	defer func() {
		close(c.stopping)
		c.client.Disconnect(simQuiesce)
		c.setUp(false)
		close(stopAcks)
		ackers.Wait()
	}()

	now := time.Now()
	lat, lon := randomInCircle(c.rng, c.unit.HomeLat, c.unit.HomeLon, 0.98*c.radius)
	c.leg = pause(now, lat, lon, c.randDuration(3*cfg.PositionEvery))

	connect := time.NewTimer(0)
	defer connect.Stop()
	backoff := simMinBackoff
	// The first report comes at a random phase so that a fleet started
	// together does not report together.
	pos := time.NewTimer(c.randDuration(cfg.PositionEvery))
	defer pos.Stop()
	move := time.NewTimer(time.Until(c.leg.end()))
	defer move.Stop()
	jobTimer := time.NewTimer(time.Hour)
	jobTimer.Stop()
	defer jobTimer.Stop()

	for {
		select {
		case <-ctx.Done():
			return
		case <-connect.C:
			if err := c.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.sim.counts.errs.Add(1)
				c.sim.log.Debug("unit sim: connect", "unit", c.unit.ID, "error", err)
				connect.Reset(backoff/2 + c.randDuration(backoff))
				backoff = min(2*backoff, simMaxBackoff)
				continue
			}
			backoff = simMinBackoff
			c.report(time.Now())
			for len(c.queued) > 0 && c.isUp() {
				if !c.send(ctx, acks, c.queued[0]) {
					return
				}
				c.queued = c.queued[1:]
			}
		case <-c.lost:
			connect.Reset(simMinBackoff/2 + c.randDuration(simMinBackoff))
		case <-pos.C:
			pos.Reset(cfg.PositionEvery)
			c.report(time.Now())
		case <-move.C:
			now := time.Now()
			if c.job != nil && c.job.phase == phaseTravelling {
				c.leg = pause(now, c.job.lat, c.job.lon, time.Hour)
				c.job.phase = phaseOnScene
				c.sim.counts.arrived.Add(1)
				c.report(now)
				if !c.reply(ctx, acks, alarms.ReplyArrived, "", "") {
					return
				}
				jobTimer.Reset(max(unitReplyGap, cfg.OnSceneTime.draw(c.rng)))
			} else if c.job == nil || c.job.phase == phaseOffered || c.job.phase == phaseAccepted {
				c.patrol(now)
			}
			move.Reset(time.Until(c.leg.end()))
		case <-jobTimer.C:
			now := time.Now()
			switch {
			case c.job == nil:
			case c.job.phase == phaseOffered && c.job.accept:
				c.job.phase = phaseAccepted
				c.sim.counts.accepted.Add(1)
				if !c.reply(ctx, acks, alarms.ReplyAccept, "", "") {
					return
				}
				jobTimer.Reset(unitReplyGap)
			case c.job.phase == phaseAccepted:
				c.job.phase = phaseTravelling
				if !c.reply(ctx, acks, alarms.ReplyEnRoute, "", "") {
					return
				}
				lat, lon := c.leg.at(now)
				c.leg = newSimLeg(now, lat, lon, c.job.lat, c.job.lon, c.speed)
				c.leg.dur = max(c.leg.dur, unitReplyGap)
				move.Reset(time.Until(c.leg.end()))
				c.report(now)
			case c.job.phase == phaseOffered:
				c.sim.counts.declined.Add(1)
				if !c.reply(ctx, acks, alarms.ReplyDecline, "", "cannot go now") {
					return
				}
				c.job = nil
			case c.job.phase == phaseOnScene:
				disp, note := c.disposition()
				c.sim.counts.cleared.Add(1)
				if !c.reply(ctx, acks, alarms.ReplyCleared, disp, note) {
					return
				}
				c.free(now)
				move.Reset(time.Until(c.leg.end()))
			}
		case p := <-c.inbox:
			freed, ok := c.handle(ctx, acks, p, jobTimer)
			if !ok {
				return
			}
			if freed {
				move.Reset(time.Until(c.leg.end()))
			}
		}
	}
}

// connect connects and subscribes to the dispatch topic (again: the
// broker may have lost the session).
func (c *unitSimClient) connect(ctx context.Context) error {
	if err := waitToken(ctx, c.client.Connect(), 0); err != nil {
		return err
	}
	c.sim.counts.connects.Add(1)
	c.setUp(true)
	if err := waitToken(ctx, c.client.Subscribe(c.dispatchTopic, 1, c.onMessage), simAckTimeout); err != nil {
		c.client.Disconnect(0)
		c.setUp(false)
		return err
	}
	return nil
}

// handle acts on one dispatch message. It returns freed when the unit
// left its incident (its leg changed), and false in ok when ctx ended.
func (c *unitSimClient) handle(ctx context.Context, acks chan<- mqtt.Token, p []byte, jobTimer *time.Timer) (freed, ok bool) {
	var m alarms.DispatchMessage
	if err := json.Unmarshal(p, &m); err != nil || m.Type == "" {
		c.sim.counts.errs.Add(1)
		c.sim.log.Debug("unit sim: undecodable dispatch message", "unit", c.unit.ID)
		return false, true
	}
	mine := c.job != nil && c.job.incident == m.Incident
	now := time.Now()
	switch m.Type {
	case "offer":
		key := m.Incident + "@" + m.Sent.Format(time.RFC3339Nano)
		for _, s := range c.seen {
			if s == key {
				return false, true // a repeated delivery
			}
		}
		if len(c.seen) == unitRecentSeen {
			c.seen = c.seen[1:]
		}
		c.seen = append(c.seen, key)
		c.sim.counts.offers.Add(1)
		if mine {
			return false, true // offered again (the server restarted): the answer is on its way
		}
		if c.job != nil {
			// The server thinks the unit free; a unit with an incident
			// says no.
			c.sim.counts.declined.Add(1)
			msg := unitReplyMsg{Incident: m.Incident, Action: alarms.ReplyDecline, Note: "busy with another incident"}
			return false, c.send(ctx, acks, msg)
		}
		cfg := &c.sim.cfg
		r := c.rng.Float64()
		if r >= cfg.AcceptRatio+cfg.DeclineRatio {
			c.sim.counts.ignored.Add(1)
			return false, true
		}
		lat, lon := c.destination(m, now)
		c.job = &unitJob{incident: m.Incident, lat: lat, lon: lon, phase: phaseOffered, accept: r < cfg.AcceptRatio}
		jobTimer.Reset(cfg.AcceptDelay.draw(c.rng))
	case "withdrawn":
		if mine && c.job.phase == phaseOffered {
			c.sim.counts.withdrawn.Add(1)
			c.job = nil
			jobTimer.Stop()
		}
	case "cancelled", "resolved", "update", "error":
		if m.Type == "error" {
			c.sim.counts.refused.Add(1)
			c.sim.log.Debug("unit sim: reply refused", "unit", c.unit.ID, "incident", m.Incident, "reason", m.Reason)
		}
		if !mine || m.Type == "update" && !finished(m.State) {
			return false, true
		}
		// The incident is over for this unit, or the server refused what
		// the unit said about it: the unit is free again.
		if c.job.phase != phaseOffered {
			c.sim.counts.cancelled.Add(1)
		} else if m.Type != "error" {
			c.sim.counts.withdrawn.Add(1)
		}
		jobTimer.Stop()
		c.free(now)
		return true, true
	}
	return false, true
}

// finished reports whether an incident in this state needs no unit.
func finished(s alarms.IncidentState) bool {
	switch s {
	case alarms.StateResolved, alarms.StateClosed, alarms.StateCancelled:
		return true
	}
	return false
}

// destination is where an offer sends the unit: the incident's position,
// or, when the offer has none, the distance and bearing it gives from the
// unit, or else where the unit is.
func (c *unitSimClient) destination(m alarms.DispatchMessage, now time.Time) (float64, float64) {
	if m.Lat != 0 || m.Lon != 0 {
		return m.Lat, m.Lon
	}
	lat, lon := c.leg.at(now)
	if m.DistanceM > 0 {
		rad := m.BearingDeg * math.Pi / 180
		return offsetM(lat, lon, m.DistanceM*math.Cos(rad), m.DistanceM*math.Sin(rad))
	}
	return lat, lon
}

// free drops the unit's incident: it reports itself available at once and
// patrols its beat again.
func (c *unitSimClient) free(now time.Time) {
	c.job = nil
	c.report(now)
	c.patrol(now)
}

// patrol starts the next leg of the beat: after a drive, a pause; after a
// pause, a drive at half speed to a random point of the beat.
func (c *unitSimClient) patrol(now time.Time) {
	lat, lon := c.leg.at(now)
	if c.leg.fromLat != c.leg.toLat || c.leg.fromLon != c.leg.toLon {
		c.leg = pause(now, lat, lon, c.randDuration(3*c.sim.cfg.PositionEvery))
		return
	}
	toLat, toLon := randomInCircle(c.rng, c.unit.HomeLat, c.unit.HomeLon, 0.98*c.radius)
	c.leg = newSimLeg(now, lat, lon, toLat, toLon, c.speed/2)
}

// disposition draws how an incident turned out: mostly genuine.
func (c *unitSimClient) disposition() (alarms.Disposition, string) {
	switch r := c.rng.IntN(100); {
	case r < 75:
		return alarms.DispGenuine, "checked on site"
	case r < 90:
		return alarms.DispFalseUser, "set off by the household"
	default:
		return alarms.DispFalseEquipment, "faulty sensor"
	}
}

// report publishes the unit's position (QoS 0: a late position is worth
// less than the next one) when connected.
func (c *unitSimClient) report(now time.Time) {
	if !c.isUp() {
		return
	}
	lat, lon := c.leg.at(now)
	p := unitPosReport{Lat: lat, Lon: lon, TS: now.UTC()}
	if c.job == nil || c.job.phase == phaseOffered {
		p.Status = alarms.UnitAvailable
	}
	data, err := json.Marshal(p)
	if err != nil {
		c.sim.counts.errs.Add(1)
		return
	}
	c.client.Publish(c.posTopic, 0, false, data)
	c.sim.counts.positions.Add(1)
}

// reply sends a reply about the unit's incident; false when ctx ended.
func (c *unitSimClient) reply(ctx context.Context, acks chan<- mqtt.Token, action alarms.ReplyAction, disp alarms.Disposition, note string) bool {
	return c.send(ctx, acks, unitReplyMsg{Incident: c.job.incident, Action: action, Disposition: disp, Note: note})
}

// send publishes a reply with QoS 1 and hands its token to the ack
// goroutine, or keeps it for the next connection (the oldest is dropped
// past unitMaxQueued); false when ctx ended first.
func (c *unitSimClient) send(ctx context.Context, acks chan<- mqtt.Token, m unitReplyMsg) bool {
	if !c.isUp() {
		if len(c.queued) == unitMaxQueued {
			c.queued = c.queued[1:]
			c.sim.counts.errs.Add(1)
		}
		c.queued = append(c.queued, m)
		return true
	}
	data, err := json.Marshal(m)
	if err != nil {
		c.sim.counts.errs.Add(1)
		return true
	}
	select {
	case acks <- c.client.Publish(c.replyTopic, 1, false, data):
		return true
	case <-ctx.Done():
		return false
	}
}

// waitAcks counts replies whose PUBACK does not come within
// simAckTimeout, or before stop, as errors (the client still sends them
// again after a reconnection).
func (c *unitSimClient) waitAcks(acks <-chan mqtt.Token, stop <-chan struct{}) {
	for {
		var tok mqtt.Token
		select {
		case tok = <-acks:
		case <-stop:
			for {
				select {
				case tok := <-acks:
					c.countAck(waitToken(context.Background(), tok, time.Nanosecond))
				default:
					return
				}
			}
		}
		t := time.NewTimer(simAckTimeout)
		var err error
		select {
		case <-tok.Done():
			err = tok.Error()
		case <-t.C:
			err = errors.New("no acknowledgement in time")
		case <-stop:
			err = waitToken(context.Background(), tok, time.Nanosecond)
		}
		t.Stop()
		c.countAck(err)
	}
}

func (c *unitSimClient) countAck(err error) {
	if err != nil {
		c.sim.counts.errs.Add(1)
	}
}

// randDuration is uniform in [0, d).
func (c *unitSimClient) randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(c.rng.Int64N(int64(d)))
}
