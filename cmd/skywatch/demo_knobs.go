package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/hardware"
)

// demoKnobs are the demo's flags that shape dispatch: who offers incidents
// to units and how the simulated units answer. A trainer sets them to let
// operators offer by hand to units that always accept, say; the browser
// test sets them to make a dispatch it can wait for.
type demoKnobs struct {
	dispatch   string
	unitAccept float64
	unitDelay  hardware.DurationRange
}

const demoDispatchUsage = "who offers incidents to units: auto (the server, at once) or manual (an operator, from the console)"

const demoUnitAcceptUsage = "share of offers a simulated unit accepts, 0-1; of the rest it declines two in three and leaves the others unanswered"

const demoUnitDelayUsage = "how long a simulated unit takes to answer an offer: a duration (1s) or a range (2s-15s)"

// validate checks the knobs; messages name the flag.
func (k demoKnobs) validate() error {
	switch {
	case k.dispatch != string(alarms.DispatchAuto) && k.dispatch != string(alarms.DispatchManual):
		return fmt.Errorf("-dispatch: %q is not auto or manual", k.dispatch)
	case !(k.unitAccept >= 0 && k.unitAccept <= 1): // NaN too
		return errors.New("-unit-accept: must be between 0 and 1")
	}
	return nil
}

// applyAreas sets the dispatch policy of the root areas; the others
// inherit it.
func (k demoKnobs) applyAreas(areas []alarms.AreaConfig) {
	for i := range areas {
		if areas[i].Parent == "" {
			areas[i].Dispatch = alarms.DispatchPolicy(k.dispatch)
		}
	}
}

// applyUnits sets how the simulated units answer offers. The ratios keep
// the simulator's default proportion of declines to silences (2 to 1).
func (k demoKnobs) applyUnits(cfg *hardware.UnitSimConfig) {
	cfg.AcceptRatio = k.unitAccept
	cfg.DeclineRatio = (1 - k.unitAccept) * 2 / 3
	cfg.IgnoreRatio = (1 - k.unitAccept) / 3
	cfg.AcceptDelay = k.unitDelay
}

// durationRangeFlag is a flag.Value for "2s" or "2s-15s".
type durationRangeFlag struct{ r *hardware.DurationRange }

func (f durationRangeFlag) String() string {
	if f.r == nil {
		return ""
	}
	if f.r.Min == f.r.Max {
		return f.r.Min.String()
	}
	return f.r.Min.String() + "-" + f.r.Max.String()
}

func (f durationRangeFlag) Set(s string) error {
	first, second, isRange := strings.Cut(s, "-")
	lo, err := time.ParseDuration(strings.TrimSpace(first))
	if err != nil {
		return err
	}
	hi := lo
	if isRange {
		if hi, err = time.ParseDuration(strings.TrimSpace(second)); err != nil {
			return err
		}
	}
	// The simulator takes a zero maximum for "its default".
	if lo < 0 || hi <= 0 || hi < lo {
		return errors.New("give a duration above 0, or min-max with 0 <= min <= max and max above 0")
	}
	*f.r = hardware.DurationRange{Min: lo, Max: hi}
	return nil
}
