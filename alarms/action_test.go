package alarms

import (
	"slices"
	"testing"
)

func TestAllowedActions(t *testing.T) {
	cases := []struct {
		state IncidentState
		acked bool
		want  []ActionKind
	}{
		{StateNew, false, []ActionKind{ActAcknowledge, ActOffer, ActAssign, ActResolve, ActCancel}},
		{StateAcknowledged, true, []ActionKind{ActOffer, ActAssign, ActResolve, ActCancel}},
		{StateOffered, false, []ActionKind{ActAcknowledge, ActAssign, ActReoffer, ActResolve, ActCancel}},
		{StateOffered, true, []ActionKind{ActAssign, ActReoffer, ActResolve, ActCancel}},
		{StateDispatched, true, []ActionKind{ActResolve, ActCancel}},
		{StateEnRoute, false, []ActionKind{ActAcknowledge, ActResolve, ActCancel}},
		{StateOnScene, true, []ActionKind{ActResolve, ActCancel}},
		{StateResolved, true, []ActionKind{ActClose}},
		{StateClosed, true, nil},
		{StateCancelled, true, nil},
	}
	for _, c := range cases {
		inc := Incident{State: c.state, Acknowledged: c.acked}
		if got := inc.AllowedActions(); !slices.Equal(got, c.want) {
			t.Errorf("%s (acknowledged %v): got %v, want %v", c.state, c.acked, got, c.want)
		}
	}
}
