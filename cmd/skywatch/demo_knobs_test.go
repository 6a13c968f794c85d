package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
)

func TestDurationRangeFlag(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    hardware.DurationRange
		wantErr bool
	}{
		{"1s", hardware.DurationRange{Min: time.Second, Max: time.Second}, false},
		{"2s-15s", hardware.DurationRange{Min: 2 * time.Second, Max: 15 * time.Second}, false},
		{"0s-500ms", hardware.DurationRange{Max: 500 * time.Millisecond}, false},
		{"0s", hardware.DurationRange{}, true},
		{"5s-1s", hardware.DurationRange{}, true},
		{"-1s", hardware.DurationRange{}, true},
		{"soon", hardware.DurationRange{}, true},
		{"1s-", hardware.DurationRange{}, true},
	} {
		var got hardware.DurationRange
		err := durationRangeFlag{&got}.Set(c.in)
		if (err != nil) != c.wantErr || err == nil && got != c.want {
			t.Errorf("Set(%q) = %+v, %v; want %+v, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestDemoKnobs(t *testing.T) {
	k := demoKnobs{dispatch: "manual", unitAccept: 1, unitDelay: hardware.DurationRange{Min: time.Second, Max: time.Second}}
	if err := k.validate(); err != nil {
		t.Fatal(err)
	}
	areas := newDemoGeo().areas()
	k.applyAreas(areas)
	for _, a := range areas {
		if (a.Parent == "") != (a.Dispatch == "manual") {
			t.Errorf("area %s: dispatch %q; the root alone should be manual, the others inherit", a.ID, a.Dispatch)
		}
	}
	var cfg hardware.UnitSimConfig
	k.applyUnits(&cfg)
	if cfg.AcceptRatio != 1 || cfg.DeclineRatio != 0 || cfg.IgnoreRatio != 0 || cfg.AcceptDelay != k.unitDelay {
		t.Errorf("unit sim config %+v", cfg)
	}

	// Bad values are refused, naming the flag.
	for _, args := range [][]string{{"-dispatch", "sometimes"}, {"-unit-accept", "1.5"}, {"-unit-delay", "0s"}} {
		var out bytes.Buffer
		if code := run(context.Background(), append([]string{"demo"}, args...), &out, &out); code != 2 || !strings.Contains(out.String(), args[0]) {
			t.Errorf("demo %v: exit %d, output %q; want 2 naming %s", args, code, out.String(), args[0])
		}
	}
}
