package accounts

import "testing"

func TestRoles(t *testing.T) {
	tests := []struct {
		role                 Role
		valid, act, clo, aud bool
	}{
		{RoleViewer, true, false, false, false},
		{RoleOperator, true, true, false, false},
		{RoleSupervisor, true, true, true, false},
		{RoleAdmin, true, true, true, true},
		{"", false, false, false, false},
		{"Admin", false, false, false, false},
		{"root", false, false, false, false},
	}
	for _, tc := range tests {
		if tc.role.Valid() != tc.valid || tc.role.CanAct() != tc.act || tc.role.CanClose() != tc.clo || tc.role.CanAudit() != tc.aud {
			t.Errorf("%q: valid %v act %v close %v audit %v, want %v %v %v %v", tc.role,
				tc.role.Valid(), tc.role.CanAct(), tc.role.CanClose(), tc.role.CanAudit(), tc.valid, tc.act, tc.clo, tc.aud)
		}
	}
	order := []Role{RoleViewer, RoleOperator, RoleSupervisor, RoleAdmin}
	for i, r := range order {
		for j, o := range order {
			if got := r.AtLeast(o); got != (i >= j) {
				t.Errorf("%s.AtLeast(%s) = %v", r, o, got)
			}
		}
		if r.AtLeast("") || Role("x").AtLeast(r) {
			t.Errorf("%s: AtLeast true with an invalid role", r)
		}
	}
}
