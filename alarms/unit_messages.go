package alarms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// unitPos is the JSON a unit publishes on {prefix}/unit/{id}/pos.
type unitPos struct {
	Lat    *float64   `json:"lat"`
	Lon    *float64   `json:"lon"`
	Status UnitStatus `json:"status"`
	// TS is the unit's clock. It is accepted but not used: the report
	// counts from when the server received it, as device clocks drift.
	TS time.Time `json:"ts"`
}

// unitReply is the JSON a unit publishes on {prefix}/unit/{id}/reply.
type unitReply struct {
	Incident    string      `json:"incident"`
	Action      ReplyAction `json:"action"`
	Disposition Disposition `json:"disposition"`
	Note        string      `json:"note"`
}

// handleUnit passes a unit's report or reply to the engine. A message the
// engine refuses (bad JSON, a reply to an incident not offered to the
// unit, an illegal transition) is handled: it is kept as rejected (under
// device "unit:{id}"), the unit gets an "error" message on its dispatch
// topic, and it is acknowledged. Only a failure to save returns an error,
// so that the message is delivered again.
func (in *Intake) handleUnit(ctx context.Context, unit, kind string, m message) error {
	in.metrics.received.WithLabelValues("unit").Inc()
	if m.replayed {
		return nil // a retained report says nothing about now
	}
	var err error
	incident := ""
	switch kind {
	case kindPos:
		var p unitPos
		if jerr := json.Unmarshal(m.payload, &p); jerr != nil || p.Lat == nil || p.Lon == nil {
			return in.reject(ctx, "unit:"+unit, m, causeInvalid, `unit position: want {"lat":..,"lon":..,"status":"available"|"off_duty"}`)
		}
		err = in.engine.UnitPosition(ctx, unit, *p.Lat, *p.Lon, p.Status)
	case kindReply:
		var r unitReply
		if jerr := json.Unmarshal(m.payload, &r); jerr != nil || r.Incident == "" || r.Action == "" {
			return in.reject(ctx, "unit:"+unit, m, causeInvalid, `unit reply: want {"incident":..,"action":..}`)
		}
		incident = r.Incident
		_, err = in.engine.UnitReply(ctx, unit, r.Incident, r.Action, r.Disposition, r.Note)
	default:
		return in.reject(ctx, "unit:"+unit, m, causeUnknownTopic, fmt.Sprintf("unknown unit topic kind %q", kind))
	}
	if err == nil || !refused(err) {
		return err
	}
	in.engine.sendUnit(unit, DispatchMessage{Type: "error", Incident: incident, Reason: err.Error(), Sent: time.Now()})
	return in.reject(ctx, "unit:"+unit, m, causeInvalid, err.Error())
}

// refused reports whether err is the engine refusing a request, as opposed
// to failing to do it.
func refused(err error) bool {
	var te *TransitionError
	return errors.As(err, &te) || errors.Is(err, ErrUnknownUnit) || errors.Is(err, ErrInvalidAction) ||
		errors.Is(err, ErrNotAssigned) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnitUnavailable)
}
