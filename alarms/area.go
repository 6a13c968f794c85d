package alarms

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// AreaKind is the level of an area in the jurisdiction tree.
type AreaKind string

// Area kinds, from the largest to the smallest.
const (
	AreaCounty    AreaKind = "county"
	AreaTownship  AreaKind = "township"
	AreaVillage   AreaKind = "village"
	AreaCommunity AreaKind = "community"
	AreaGrid      AreaKind = "grid"
)

func (k AreaKind) valid() bool {
	switch k {
	case AreaCounty, AreaTownship, AreaVillage, AreaCommunity, AreaGrid:
		return true
	}
	return false
}

// DispatchPolicy says whether an area's incidents are offered to units
// automatically or wait for an operator.
type DispatchPolicy string

// Dispatch policies.
const (
	// DispatchAuto offers an incident to the best unit at once.
	DispatchAuto DispatchPolicy = "auto"
	// DispatchManual leaves an incident waiting (new or acknowledged) until
	// an operator offers or assigns it.
	DispatchManual DispatchPolicy = "manual"
)

// AreaConfig is one area of the jurisdiction tree (config key "areas").
type AreaConfig struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"` // defaults to ID
	// Parent is the enclosing area's ID; empty for the root (the county).
	Parent string   `yaml:"parent" json:"parent,omitempty"`
	Kind   AreaKind `yaml:"kind" json:"kind"`
	// Boundary decides which area a position belongs to (Locate). It may be
	// empty: the area then locates nothing itself.
	Boundary Boundary `yaml:"boundary" json:"boundary"`
	// Dispatch is "auto" or "manual"; when empty it is inherited from the
	// parent, and the root's defaults to "auto".
	Dispatch DispatchPolicy `yaml:"dispatch" json:"dispatch,omitempty"`
}

// Boundary is a polygon or a circle.
type Boundary struct {
	// Polygon lists the vertices as [lat, lon], at least three.
	Polygon [][2]float64 `yaml:"polygon" json:"polygon,omitempty"`
	// Centre ([lat, lon]) and RadiusM (metres) make a circle.
	Centre  *[2]float64 `yaml:"centre" json:"centre,omitempty"`
	RadiusM float64     `yaml:"radius_m" json:"radius_m,omitempty"`
}

func (b *Boundary) empty() bool { return len(b.Polygon) == 0 && b.Centre == nil }

// contains reports whether the point is inside the boundary.
func (b *Boundary) contains(lat, lon float64) bool {
	if len(b.Polygon) > 0 {
		return inPolygon(lat, lon, b.Polygon)
	}
	if b.Centre != nil {
		return Distance(b.Centre[0], b.Centre[1], lat, lon) <= b.RadiusM
	}
	return false
}

// size is the boundary's area in square metres, to pick the smallest of
// several areas that contain a point.
func (b *Boundary) size() float64 {
	if len(b.Polygon) > 0 {
		return polygonArea(b.Polygon)
	}
	if b.Centre != nil {
		return math.Pi * b.RadiusM * b.RadiusM
	}
	return math.Inf(1)
}

func (b *Boundary) validate(key string) error {
	var errs []error
	if len(b.Polygon) > 0 && b.Centre != nil {
		errs = append(errs, fmt.Errorf("%s: set polygon or centre, not both", key))
	}
	if len(b.Polygon) > 0 && len(b.Polygon) < 3 {
		errs = append(errs, fmt.Errorf("%s.polygon: needs at least 3 points", key))
	}
	for i, p := range b.Polygon {
		if !validLatLon(p[0], p[1]) {
			errs = append(errs, fmt.Errorf("%s.polygon[%d]: [lat, lon] out of range", key, i))
		}
	}
	if b.Centre != nil {
		if !validLatLon(b.Centre[0], b.Centre[1]) {
			errs = append(errs, fmt.Errorf("%s.centre: [lat, lon] out of range", key))
		}
		if b.RadiusM <= 0 {
			errs = append(errs, fmt.Errorf("%s.radius_m: must be positive with a centre", key))
		}
	} else if b.RadiusM != 0 {
		errs = append(errs, fmt.Errorf("%s.radius_m: set without a centre", key))
	}
	return errors.Join(errs...)
}

func validLatLon(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// Area is an area of the tree as the API shows it: its config with the
// effective dispatch policy, its depth (0 for the root) and children.
type Area struct {
	AreaConfig
	Depth    int      `json:"depth"`
	Children []string `json:"children,omitempty"`
}

// AreaTree is the validated jurisdiction tree. It is immutable and safe
// for concurrent use.
type AreaTree struct {
	byID  map[string]*Area
	order []string // config order
}

// NewAreaTree checks areas (ids unique and valid, parents known, no
// cycles, kinds and boundaries valid) and builds the tree. Messages name
// the config key, as in `areas[2].parent: unknown area "x"`. A forest (more
// than one root) is allowed: routing then stops at each root.
func NewAreaTree(areas []AreaConfig) (*AreaTree, error) {
	t := &AreaTree{byID: make(map[string]*Area, len(areas))}
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	index := map[string]int{}
	for i, a := range areas {
		key := fmt.Sprintf("areas[%d]", i)
		switch {
		case a.ID == "":
			add(key+".id", "must not be empty")
			continue
		case !validID(a.ID):
			add(key+".id", "%q must contain only letters, digits, '-', '_' and '.'", a.ID)
			continue
		}
		if j, dup := index[a.ID]; dup {
			add(key+".id", "duplicate %q (also areas[%d])", a.ID, j)
			continue
		}
		index[a.ID] = i
		if a.Name == "" {
			a.Name = a.ID
		}
		if !a.Kind.valid() {
			add(key+".kind", "%q must be county, township, village, community or grid", a.Kind)
		}
		if a.Dispatch != "" && a.Dispatch != DispatchAuto && a.Dispatch != DispatchManual {
			add(key+".dispatch", "%q must be auto or manual", a.Dispatch)
		}
		if err := a.Boundary.validate(key + ".boundary"); err != nil {
			errs = append(errs, err)
		}
		t.byID[a.ID] = &Area{AreaConfig: a}
		t.order = append(t.order, a.ID)
	}
	for _, id := range t.order {
		a := t.byID[id]
		if a.Parent == "" {
			continue
		}
		key := fmt.Sprintf("areas[%d].parent", index[id])
		p := t.byID[a.Parent]
		if p == nil {
			add(key, "unknown area %q", a.Parent)
			a.Parent = "" // keep walking the rest safely
			continue
		}
		p.Children = append(p.Children, id)
	}
	// Cycles: walk up from each area; a walk longer than the tree loops.
	for _, id := range t.order {
		seen := map[string]bool{}
		for cur := id; cur != ""; cur = t.byID[cur].Parent {
			if seen[cur] {
				add(fmt.Sprintf("areas[%d].parent", index[id]), "area %q is its own ancestor (a cycle)", id)
				break
			}
			seen[cur] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, id := range t.order {
		a := t.byID[id]
		for cur := a; ; cur = t.byID[cur.Parent] {
			if a.Dispatch == "" {
				a.Dispatch = cur.Dispatch
			}
			if cur.Parent == "" {
				break
			}
			a.Depth++
		}
		if a.Dispatch == "" {
			a.Dispatch = DispatchAuto
		}
	}
	return t, nil
}

// Len is the number of areas.
func (t *AreaTree) Len() int { return len(t.order) }

// Area returns an area by ID.
func (t *AreaTree) Area(id string) (Area, bool) {
	a := t.byID[id]
	if a == nil {
		return Area{}, false
	}
	c := *a
	c.Children = slices.Clone(a.Children)
	return c, true
}

// Areas returns every area in config order.
func (t *AreaTree) Areas() []Area {
	out := make([]Area, 0, len(t.order))
	for _, id := range t.order {
		a, _ := t.Area(id)
		out = append(out, a)
	}
	return out
}

// Has reports whether the area exists.
func (t *AreaTree) Has(id string) bool { return t.byID[id] != nil }

// Contains reports whether area is ancestor or lies under it. An unknown
// area is contained in nothing (and contains only itself).
func (t *AreaTree) Contains(ancestor, area string) bool {
	if ancestor == area {
		return true
	}
	for a := t.byID[area]; a != nil && a.Parent != ""; a = t.byID[a.Parent] {
		if a.Parent == ancestor {
			return true
		}
	}
	return false
}

// Path returns area and its ancestors, nearest first, up to the root; nil
// for an unknown area.
func (t *AreaTree) Path(area string) []string {
	var out []string
	for a := t.byID[area]; a != nil; a = t.byID[a.Parent] {
		out = append(out, a.ID)
	}
	return out
}

// Subtree returns area and every area under it (area first), or nil.
func (t *AreaTree) Subtree(area string) []string {
	if t.byID[area] == nil {
		return nil
	}
	out := []string{area}
	for i := 0; i < len(out); i++ {
		out = append(out, t.byID[out[i]].Children...)
	}
	return out
}

// Policy returns the area's effective dispatch policy; auto for an
// unknown or empty area.
func (t *AreaTree) Policy(area string) DispatchPolicy {
	if a := t.byID[area]; a != nil {
		return a.Dispatch
	}
	return DispatchAuto
}

// Locate returns the smallest area whose boundary contains the point (ties
// go to the deeper area, then to config order), or "" and false.
func (t *AreaTree) Locate(lat, lon float64) (string, bool) {
	best, bestSize, bestDepth := "", math.Inf(1), -1
	for _, id := range t.order {
		a := t.byID[id]
		if a.Boundary.empty() || !a.Boundary.contains(lat, lon) {
			continue
		}
		size := a.Boundary.size()
		if size < bestSize || size == bestSize && a.Depth > bestDepth {
			best, bestSize, bestDepth = id, size, a.Depth
		}
	}
	return best, best != ""
}
