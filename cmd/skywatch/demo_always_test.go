package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestDemoAlways: -always names demo cameras, separated by commas; an
// unknown one is refused with the flag's name.
func TestDemoAlways(t *testing.T) {
	cams := demoCameras(3)
	for _, tc := range []struct {
		flag string
		want []string
		err  string
	}{
		{flag: "north-gate", want: []string{"north-gate"}},
		{flag: " north-gate, school-road ,", want: []string{"north-gate", "school-road"}},
		{flag: "", want: nil},
		{flag: "north-gate,bus-station", err: `-always: no demo camera "bus-station"`},
	} {
		got, err := demoAlways(tc.flag, cams)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.flag, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.flag, err)
			continue
		}
		if ids := slices.Sorted(maps.Keys(got)); !slices.Equal(ids, tc.want) {
			t.Errorf("%q: %v, want %v", tc.flag, ids, tc.want)
		}
	}
}
