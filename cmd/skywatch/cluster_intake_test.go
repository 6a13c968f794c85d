package main

import "testing"

// Every node picks the same adopter for a dead node from the same live
// set, a live one, and the dead nodes spread over the live ones.
func TestAdopterOf(t *testing.T) {
	live := []string{"sky-a", "sky-b", "sky-c"}
	picked := map[string]int{}
	for _, dead := range []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11"} {
		a := adopterOf(dead, live)
		if b := adopterOf(dead, []string{"sky-c", "sky-a", "sky-b"}); a != b {
			t.Fatalf("adopter of %s: %s or %s by the order of the live set", dead, a, b)
		}
		picked[a]++
	}
	if len(picked) < 2 {
		t.Errorf("all dead nodes adopted by one node: %v", picked)
	}
	if got := adopterOf("x", nil); got != "" {
		t.Errorf("adopter with no live node: %q", got)
	}
}
