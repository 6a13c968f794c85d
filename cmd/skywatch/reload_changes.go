package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// reloadChanges is what a reload changed, by section; empty sections are
// left out of the JSON.
type reloadChanges struct {
	// Cameras: Changed are cameras pulled again (URL, credentials,
	// transport or mode changed); Updated changed only in what needs no
	// new RTSP session (name, area, position, record settings).
	Cameras   *idChanges   `json:"cameras,omitempty"`
	Recording *idChanges   `json:"recording,omitempty"`
	Devices   *idChanges   `json:"devices,omitempty"`
	Models    *idChanges   `json:"models,omitempty"`
	Units     *idChanges   `json:"units,omitempty"`
	Areas     *idChanges   `json:"areas,omitempty"`
	Routing   bool         `json:"routing,omitempty"`
	Users     *userChanges `json:"users,omitempty"`
	Tokens    *idChanges   `json:"tokens,omitempty"`
	Map       bool         `json:"map,omitempty"`
	// TLSCertificate says the certificate files were read again and
	// hold a new certificate.
	TLSCertificate bool `json:"tls_certificate,omitempty"`
	// VideoSessions counts the WHEP sessions the web server ended: of
	// users logged out, of tokens ended, of cameras moved out of their
	// viewer's area (those of removed or changed cameras end with them,
	// uncounted here).
	VideoSessions int    `json:"video_sessions_ended,omitempty"`
	WarmOnAlarm   string `json:"warm_on_alarm,omitempty"`
	LogLevel      string `json:"log_level,omitempty"`
}

// idChanges are the IDs added, changed and removed in one section.
type idChanges struct {
	Added   []string `json:"added,omitempty"`
	Changed []string `json:"changed,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// Updated are cameras changed without a new RTSP session.
	Updated []string `json:"updated,omitempty"`
	// Disconnected are devices or units whose connection to the
	// embedded broker was closed because their credentials changed or
	// they were removed.
	Disconnected []string `json:"disconnected,omitempty"`
}

func (c idChanges) empty() bool {
	return len(c.Added)+len(c.Changed)+len(c.Removed)+len(c.Updated)+len(c.Disconnected) == 0
}

// nonEmpty is c, or nil when it is empty.
func nonEmpty(c idChanges) *idChanges {
	if c.empty() {
		return nil
	}
	return &c
}

// userChanges are the users changed and the sessions that ended.
type userChanges struct {
	idChanges
	// LoggedOut are the users whose sessions ended (removed, or their
	// password hash, role or area changed).
	LoggedOut []string `json:"logged_out,omitempty"`
	Sessions  int      `json:"sessions_ended"`
}

// diffByID compares two lists of entries by their IDs: an entry whose
// value differs in any way is changed. The IDs come out sorted.
func diffByID[T any](old, cur []T, id func(T) string) idChanges {
	was := make(map[string]T, len(old))
	for _, x := range old {
		was[id(x)] = x
	}
	var c idChanges
	for _, x := range cur {
		k := id(x)
		prev, ok := was[k]
		switch {
		case !ok:
			c.Added = append(c.Added, k)
		case !reflect.DeepEqual(prev, x):
			c.Changed = append(c.Changed, k)
		}
		delete(was, k)
	}
	for k := range was {
		c.Removed = append(c.Removed, k)
	}
	for _, l := range [][]string{c.Added, c.Changed, c.Removed} {
		slices.Sort(l)
	}
	return c
}

// cameraChanges are the camera manager's changes, with the cameras whose
// entry changed in what the manager does not pull again for as Updated.
func cameraChanges(added, changed, removed []string, old, cur []cameraConfig) *idChanges {
	c := idChanges{Added: added, Changed: changed, Removed: removed}
	file := diffByID(old, cur, func(c cameraConfig) string { return c.ID })
	for _, id := range file.Changed {
		if !slices.Contains(changed, id) {
			c.Updated = append(c.Updated, id)
		}
	}
	return nonEmpty(c)
}

// splitBy splits ids into those f keeps and the others, in order.
func splitBy(ids []string, f func(string) bool) (in, out []string) {
	for _, id := range ids {
		if f(id) {
			in = append(in, id)
		} else {
			out = append(out, id)
		}
	}
	return in, out
}

// summary is one line for the log and the audit record:
// "cameras +1 ~1 -1, devices ~1 (1 disconnected), users ~1 (2 sessions ended)".
func (c reloadChanges) summary() string {
	var parts []string
	add := func(name string, x *idChanges) {
		if x == nil {
			return
		}
		p := name + counts(*x)
		if len(x.Updated) > 0 {
			p += fmt.Sprintf(" (%d updated in place)", len(x.Updated))
		}
		if len(x.Disconnected) > 0 {
			p += fmt.Sprintf(" (%d disconnected)", len(x.Disconnected))
		}
		parts = append(parts, p)
	}
	add("cameras", c.Cameras)
	add("recording", c.Recording)
	add("devices", c.Devices)
	add("models", c.Models)
	add("units", c.Units)
	add("areas", c.Areas)
	if c.Routing {
		parts = append(parts, "routing")
	}
	if u := c.Users; u != nil {
		parts = append(parts, fmt.Sprintf("users%s (%d sessions ended)", counts(u.idChanges), u.Sessions))
	}
	add("tokens", c.Tokens)
	if c.Map {
		parts = append(parts, "map")
	}
	if c.TLSCertificate {
		parts = append(parts, "tls certificate")
	}
	if c.WarmOnAlarm != "" {
		parts = append(parts, "ingest.warm_on_alarm "+c.WarmOnAlarm)
	}
	if c.LogLevel != "" {
		parts = append(parts, "log.level "+strings.ToLower(c.LogLevel))
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

// counts is " +added ~changed -removed", leaving out zeros.
func counts(c idChanges) string {
	s := ""
	for _, x := range []struct {
		sign string
		n    int
	}{{"+", len(c.Added)}, {"~", len(c.Changed)}, {"-", len(c.Removed)}} {
		if x.n > 0 {
			s += fmt.Sprintf(" %s%d", x.sign, x.n)
		}
	}
	return s
}
