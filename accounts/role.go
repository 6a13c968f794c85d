package accounts

// Role is what a user may do in the console. Each role has what the one
// before it has: viewer < operator < supervisor < admin.
type Role string

// Roles.
const (
	// RoleViewer sees cameras, video, incidents, devices, units and the map.
	RoleViewer Role = "viewer"
	// RoleOperator also acts on incidents: acknowledge, offer, assign,
	// reoffer, cancel, resolve.
	RoleOperator Role = "operator"
	// RoleSupervisor also closes incidents.
	RoleSupervisor Role = "supervisor"
	// RoleAdmin also reads the audit log, unlocks logins and ends other
	// users' sessions.
	RoleAdmin Role = "admin"
)

// rank orders the roles; 0 is not a role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleSupervisor:
		return 3
	case RoleAdmin:
		return 4
	}
	return 0
}

// Valid tells whether r is one of the four roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast tells whether r has everything o has. It is false when either is
// not a valid role.
func (r Role) AtLeast(o Role) bool {
	return r.Valid() && o.Valid() && r.rank() >= o.rank()
}

// CanAct tells whether r may act on incidents (acknowledge, offer, assign,
// reoffer, cancel, resolve).
func (r Role) CanAct() bool { return r.AtLeast(RoleOperator) }

// CanClose tells whether r may close incidents.
func (r Role) CanClose() bool { return r.AtLeast(RoleSupervisor) }

// CanAudit tells whether r may read the audit log.
func (r Role) CanAudit() bool { return r.AtLeast(RoleAdmin) }

// CanManageSessions tells whether r may unlock logins and end other
// users' sessions.
func (r Role) CanManageSessions() bool { return r.AtLeast(RoleAdmin) }
