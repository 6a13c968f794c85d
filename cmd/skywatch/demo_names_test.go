package main

import (
	"slices"
	"testing"
	"unicode"
)

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// TestDemoNamesChineseIDsASCII: the demo's areas, cameras and operators
// are named in Chinese, the console's default language, under the ASCII
// IDs that tests, URLs and the patrol page use.
func TestDemoNamesChineseIDsASCII(t *testing.T) {
	var areaIDs []string
	for _, a := range newDemoGeo().areas() {
		areaIDs = append(areaIDs, a.ID)
		if !hasHan(a.Name) {
			t.Errorf("area %s is named %q", a.ID, a.Name)
		}
	}
	if want := []string{"qingshan", "dongcheng", "east-village", "river-village", "xicheng", "west-village", "hill-village"}; !slices.Equal(areaIDs, want) {
		t.Errorf("area IDs %v, want %v", areaIDs, want)
	}
	var camIDs []string
	for _, c := range demoCameras(7) {
		camIDs = append(camIDs, c.id)
		if !hasHan(c.name) {
			t.Errorf("camera %s is named %q", c.id, c.name)
		}
	}
	if want := []string{"north-gate", "market-square", "school-road", "river-bridge", "bus-station", "town-hall", "north-gate-2"}; !slices.Equal(camIDs, want) {
		t.Errorf("camera IDs %v, want %v", camIDs, want)
	}
	geo := newDemoGeo()
	fleet := demoFleet(5)
	for i, want := range [][2]string{{"东村 1 号户", "东城镇东村 1 号"}, {"河湾村 1 号户", "东城镇河湾村 1 号"},
		{"西村 1 号户", "西城镇西村 1 号"}, {"山前村 1 号户", "西城镇山前村 1 号"}, {"东村 2 号户", "东城镇东村 2 号"}} {
		d := geo.device(i, fleet[i], map[string][]string{"east-village": {"north-gate"}})
		if d.ID != fleet[i].ID || d.Name != want[0] || d.Address != want[1] {
			t.Errorf("device %d: %s %q at %q, want %s %q at %q", i, d.ID, d.Name, d.Address, fleet[i].ID, want[0], want[1])
		}
	}
	users, err := demoUsers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
		if !hasHan(u.Name) {
			t.Errorf("user %s is named %q", u.Username, u.Name)
		}
	}
	if want := []string{"admin", "duty", "dongcheng", "xicheng", "watch"}; !slices.Equal(names, want) {
		t.Errorf("user names %v, want %v", names, want)
	}
}
