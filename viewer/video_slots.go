package viewer

import "sync"

// videoSlots counts the video (WHEP) sessions open per user and per
// address, and refuses one more past either limit. A slot is taken before
// the session is negotiated and given back when it ends, however it ends
// (DELETE, ICE failure, stream end, logout). It is a small locked API.
type videoSlots struct {
	perUser, perAddr int

	mu    sync.Mutex
	users map[string]int
	addrs map[string]int
}

func newVideoSlots(perUser, perAddr int) *videoSlots {
	return &videoSlots{perUser: perUser, perAddr: perAddr, users: map[string]int{}, addrs: map[string]int{}}
}

// take takes a slot of user ("" for none: no accounts) and addr; when one
// of them is full it takes nothing and says which ("user" or "address")
// and its limit.
func (v *videoSlots) take(user, addr string) (full string, limit int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if user != "" && v.users[user] >= v.perUser {
		return "user", v.perUser
	}
	if v.addrs[addr] >= v.perAddr {
		return "address", v.perAddr
	}
	if user != "" {
		v.users[user]++
	}
	v.addrs[addr]++
	return "", 0
}

// give gives back a slot that take took.
func (v *videoSlots) give(user, addr string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	dec := func(m map[string]int, k string) {
		if m[k]--; m[k] <= 0 {
			delete(m, k)
		}
	}
	if user != "" {
		dec(v.users, user)
	}
	dec(v.addrs, addr)
}
