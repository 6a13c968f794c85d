package alarms_test

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

func TestAreaTreeValidate(t *testing.T) {
	a := func(id, parent string) alarms.AreaConfig {
		return alarms.AreaConfig{ID: id, Parent: parent, Kind: alarms.AreaVillage}
	}
	centre := [2]float64{30, 120}
	for _, tc := range []struct {
		name  string
		areas []alarms.AreaConfig
		want  string // "" for valid
	}{
		{"empty", nil, ""},
		{"tree", []alarms.AreaConfig{a("c", ""), a("t", "c"), a("v", "t")}, ""},
		{"forest", []alarms.AreaConfig{a("c", ""), a("d", "")}, ""},
		{"unknown parent", []alarms.AreaConfig{a("c", ""), a("t", "x")}, `areas[1].parent: unknown area "x"`},
		{"self parent", []alarms.AreaConfig{a("c", "c")}, `areas[0].parent: area "c" is its own ancestor`},
		{"cycle", []alarms.AreaConfig{a("r", ""), a("a", "b"), a("b", "a")}, "is its own ancestor (a cycle)"},
		{"duplicate", []alarms.AreaConfig{a("c", ""), a("c", "")}, `areas[1].id: duplicate "c" (also areas[0])`},
		{"empty id", []alarms.AreaConfig{a("", "")}, "areas[0].id: must not be empty"},
		{"bad id", []alarms.AreaConfig{a("a b", "")}, "areas[0].id:"},
		{"kind", []alarms.AreaConfig{{ID: "c", Kind: "city"}}, `areas[0].kind: "city" must be`},
		{"dispatch", []alarms.AreaConfig{{ID: "c", Kind: alarms.AreaCounty, Dispatch: "sometimes"}}, "areas[0].dispatch:"},
		{"polygon short", []alarms.AreaConfig{{ID: "c", Kind: alarms.AreaCounty,
			Boundary: alarms.Boundary{Polygon: [][2]float64{{1, 1}, {2, 2}}}}}, "areas[0].boundary.polygon: needs at least 3"},
		{"polygon range", []alarms.AreaConfig{{ID: "c", Kind: alarms.AreaCounty,
			Boundary: alarms.Boundary{Polygon: [][2]float64{{1, 1}, {2, 2}, {95, 1}}}}}, "areas[0].boundary.polygon[2]:"},
		{"both", []alarms.AreaConfig{{ID: "c", Kind: alarms.AreaCounty,
			Boundary: alarms.Boundary{Polygon: [][2]float64{{1, 1}, {2, 2}, {1, 2}}, Centre: &centre, RadiusM: 5}}}, "not both"},
		{"radius", []alarms.AreaConfig{{ID: "c", Kind: alarms.AreaCounty,
			Boundary: alarms.Boundary{Centre: &centre}}}, "areas[0].boundary.radius_m: must be positive"},
		{"radius alone", []alarms.AreaConfig{{ID: "c", Kind: alarms.AreaCounty,
			Boundary: alarms.Boundary{RadiusM: 5}}}, "set without a centre"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alarms.NewAreaTree(tc.areas)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			// Config.Validate reports the same.
			cerr := (&alarms.Config{Areas: tc.areas}).Validate()
			if (cerr == nil) != (err == nil) {
				t.Errorf("Config.Validate: %v, NewAreaTree: %v", cerr, err)
			}
		})
	}
}

// Devices' and units' areas must exist once areas are configured; the
// routing section is checked.
func TestConfigAreasAndRouting(t *testing.T) {
	base := func() alarms.Config {
		return alarms.Config{
			Areas:   []alarms.AreaConfig{{ID: "c", Kind: alarms.AreaCounty}},
			Devices: []alarms.DeviceConfig{{ID: "d1", Area: "c", Password: "x"}},
			Units:   []alarms.UnitConfig{{ID: "u1", Area: "c", Password: "y"}},
		}
	}
	for _, tc := range []struct {
		name string
		mod  func(*alarms.Config)
		want string
	}{
		{"valid", func(*alarms.Config) {}, ""},
		{"device area", func(c *alarms.Config) { c.Devices[0].Area = "x" }, `devices[0].area: unknown area "x"`},
		{"device no area", func(c *alarms.Config) { c.Devices[0].Area = "" }, "devices[0].area: must be set"},
		{"unit area", func(c *alarms.Config) { c.Units[0].Area = "x" }, `units[0].area: unknown area "x"`},
		{"no areas", func(c *alarms.Config) { c.Areas = nil; c.Units[0].Area = "x" }, ""},
		{"unit kind", func(c *alarms.Config) { c.Units[0].Kind = "tank" }, `units[0].kind: "tank"`},
		{"unit silence", func(c *alarms.Config) { c.Units[0].Silence = -time.Second }, "units[0].silence:"},
		{"timeout", func(c *alarms.Config) { c.Routing.OfferTimeout = -1 }, "routing.offer_timeout:"},
		{"respond", func(c *alarms.Config) { c.Routing.Respond = []alarms.Class{"party"} }, `routing.respond[0]: unknown class "party"`},
		{"both kinds", func(c *alarms.Config) { c.Routing.Respond = []alarms.Class{alarms.ClassTrouble} }, "also in routing.maintenance"},
		{"priority", func(c *alarms.Config) { c.Routing.Priority = map[alarms.Class]int{alarms.ClassFire: 0} }, "routing.priority.fire:"},
		{"prefer", func(c *alarms.Config) {
			c.Routing.Prefer = map[alarms.Class][]alarms.UnitKind{alarms.ClassFire: {"tank"}}
		}, "routing.prefer.fire[0]:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.mod(&cfg)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAreaTreeQueries(t *testing.T) {
	centre := [2]float64{30.01, 120.01}
	tree, err := alarms.NewAreaTree([]alarms.AreaConfig{
		{ID: "c", Kind: alarms.AreaCounty, Dispatch: alarms.DispatchManual,
			Boundary: alarms.Boundary{Polygon: [][2]float64{{29.9, 119.9}, {29.9, 120.2}, {30.2, 120.2}, {30.2, 119.9}}}},
		{ID: "t", Parent: "c", Kind: alarms.AreaTownship, Dispatch: alarms.DispatchAuto,
			Boundary: alarms.Boundary{Polygon: [][2]float64{{30, 120}, {30, 120.05}, {30.05, 120.05}, {30.05, 120}}}},
		{ID: "v", Parent: "t", Kind: alarms.AreaVillage, Boundary: alarms.Boundary{Centre: &centre, RadiusM: 500}},
		{ID: "g", Parent: "v", Kind: alarms.AreaGrid},
		{ID: "t2", Parent: "c", Kind: alarms.AreaTownship},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ancestor, area string
		want           bool
	}{
		{"c", "g", true}, {"t", "g", true}, {"g", "g", true}, {"v", "t", false},
		{"t2", "g", false}, {"c", "nope", false}, {"nope", "c", false},
	} {
		if got := tree.Contains(tc.ancestor, tc.area); got != tc.want {
			t.Errorf("Contains(%s, %s) = %v, want %v", tc.ancestor, tc.area, got, tc.want)
		}
	}
	if got := tree.Path("g"); !slices.Equal(got, []string{"g", "v", "t", "c"}) {
		t.Errorf("Path(g) = %v", got)
	}
	if got := tree.Path("nope"); got != nil {
		t.Errorf("Path(nope) = %v", got)
	}
	if got := tree.Subtree("t"); !slices.Equal(got, []string{"t", "v", "g"}) {
		t.Errorf("Subtree(t) = %v", got)
	}
	// Policies are inherited from the nearest ancestor that sets one.
	for area, want := range map[string]alarms.DispatchPolicy{"c": alarms.DispatchManual, "t2": alarms.DispatchManual,
		"t": alarms.DispatchAuto, "g": alarms.DispatchAuto} {
		if got := tree.Policy(area); got != want {
			t.Errorf("Policy(%s) = %s, want %s", area, got, want)
		}
	}
	for _, tc := range []struct {
		lat, lon float64
		want     string
	}{
		{30.01, 120.01, "v"},   // inside all three: the smallest
		{30.04, 120.04, "t"},   // outside the village's circle
		{29.95, 120.15, "c"},   // county only
		{31, 121, ""},          // outside everything
		{30.0141, 120.01, "v"}, // ~457 m north of the village's centre: inside its 500 m
		{30.0147, 120.01, "t"}, // ~523 m: outside
	} {
		got, ok := tree.Locate(tc.lat, tc.lon)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Locate(%v, %v) = %q %v, want %q", tc.lat, tc.lon, got, ok, tc.want)
		}
	}
	a, ok := tree.Area("g")
	if !ok || a.Depth != 3 || a.Name != "g" || a.Dispatch != alarms.DispatchAuto {
		t.Errorf("Area(g) = %+v", a)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tol              float64
	}{
		{"same point", 30, 120, 30, 120, 0, 0.001},
		{"one degree of latitude", 30, 120, 31, 120, 111226, 50},
		{"one degree of longitude at 60N", 60, 10, 60, 11, 55613, 50},
		{"Beijing to Shanghai", 39.9042, 116.4074, 31.2304, 121.4737, 1067000, 3000},
		{"antipodes", 0, 0, 0, 180, math.Pi * 6372797.560856, 1},
	} {
		if got := alarms.Distance(tc.lat1, tc.lon1, tc.lat2, tc.lon2); math.Abs(got-tc.want) > tc.tol {
			t.Errorf("%s: %.0f m, want %.0f ± %.0f", tc.name, got, tc.want, tc.tol)
		}
	}
	if b := alarms.Bearing(30, 120, 31, 120); math.Abs(b) > 0.01 {
		t.Errorf("bearing north = %v", b)
	}
	if b := alarms.Bearing(30, 120, 30, 121); math.Abs(b-89.75) > 0.1 {
		t.Errorf("bearing east = %v", b)
	}
}
