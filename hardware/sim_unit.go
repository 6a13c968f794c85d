package hardware

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/skywatch/skywatch/alarms"
)

// SimUnit is one simulated patrol unit.
type SimUnit struct {
	// ID is the unit ID: its MQTT client id and its topic segment.
	ID string
	// Username and Password are its MQTT credentials; an empty Username
	// connects without credentials.
	Username string
	Password string
	// Kind sets the unit's default speed and patrol radius; it defaults to
	// alarms.UnitPatrolCar.
	Kind alarms.UnitKind
	// Area is the unit's home area. The simulator does not use it (the
	// server knows each unit's area from its config); it is carried so that
	// a fleet from SimUnits can be written into a config.
	Area string
	// HomeLat and HomeLon are the centre of the unit's beat.
	HomeLat, HomeLon float64
	// RadiusM is how far from home the unit patrols, in metres; 0 uses the
	// kind's default (patrol car 3,000, foot patrol 500, volunteer patrol
	// 1,000, grid manager 800).
	RadiusM float64
}

// simKind is what a kind of unit does by default.
type simKind struct {
	speed   float64 // m/s when going to an incident
	radiusM float64 // of its beat
}

// simKindOf returns the defaults of a kind: a car on rural roads, a walk,
// a bicycle, an electric scooter; false for an unknown kind.
func simKindOf(k alarms.UnitKind) (simKind, bool) {
	switch k {
	case alarms.UnitPatrolCar:
		return simKind{speed: 12, radiusM: 3000}, true
	case alarms.UnitFootPatrol:
		return simKind{speed: 1.5, radiusM: 500}, true
	case alarms.UnitVolunteerPatrol:
		return simKind{speed: 4, radiusM: 1000}, true
	case alarms.UnitGridManager:
		return simKind{speed: 5, radiusM: 800}, true
	}
	return simKind{}, false
}

// kind returns the unit's kind with its default filled in.
func (u SimUnit) kind() alarms.UnitKind {
	if u.Kind == "" {
		return alarms.UnitPatrolCar
	}
	return u.Kind
}

// radius returns the unit's beat radius with its default filled in.
func (u SimUnit) radius() float64 {
	if u.RadiusM > 0 {
		return u.RadiusM
	}
	k, _ := simKindOf(u.kind())
	return k.radiusM
}

// validate checks one unit; i is its index in the config.
func (u SimUnit) validate(i int) error {
	switch {
	case u.ID == "":
		return fmt.Errorf("units[%d].id: required", i)
	case len(u.ID) > 64:
		return fmt.Errorf("units[%d].id: longer than 64 bytes", i)
	case strings.ContainsAny(u.ID, "/+#\x00"):
		return fmt.Errorf("units[%d].id: %q holds an MQTT topic character", i, u.ID)
	case u.Username == "" && u.Password != "":
		return fmt.Errorf("units[%d].username: required when a password is set", i)
	case math.IsNaN(u.HomeLat) || u.HomeLat < -90 || u.HomeLat > 90:
		return fmt.Errorf("units[%d].home_lat: %g is not a latitude", i, u.HomeLat)
	case math.IsNaN(u.HomeLon) || u.HomeLon < -180 || u.HomeLon > 180:
		return fmt.Errorf("units[%d].home_lon: %g is not a longitude", i, u.HomeLon)
	case math.IsNaN(u.RadiusM) || u.RadiusM < 0 || u.RadiusM > 100_000:
		return fmt.Errorf("units[%d].radius_m: %g is not between 0 and 100,000", i, u.RadiusM)
	}
	if _, ok := simKindOf(u.kind()); !ok {
		return fmt.Errorf("units[%d].kind: %q is not patrol_car, foot_patrol, volunteer_patrol or grid_manager", i, u.Kind)
	}
	return nil
}

// Where SimUnits puts areas: on a grid of SimAreaSpacingM around
// SimOriginLat, SimOriginLon (a rural county), since it knows only the
// areas' names.
const (
	SimOriginLat    = 30.0
	SimOriginLon    = 120.0
	SimAreaSpacingM = 5000.0
)

// SimUnits builds a fleet of n patrol units like a county's: IDs idPrefix
// followed by a 4-digit number, each with its ID as username and a random
// password; 35% patrol cars, 20% foot patrols, 25% volunteer patrols and
// 20% grid managers (at least one of each once n reaches 4), dealt to
// areas in turn. The k-th area (0 based) gets a centre on a square grid,
// SimAreaSpacingM apart, starting at SimOriginLat, SimOriginLon; each
// unit's home is within 1.5 km of its area's centre, with its kind's
// default radius. Callers that know the areas' boundaries may move
// HomeLat and HomeLon. With no areas, units have no area and share the
// origin as centre. The same seed gives the same fleet.
func SimUnits(n int, idPrefix string, areas []string, seed int64) []SimUnit {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x0417))
	side := int(math.Ceil(math.Sqrt(float64(max(1, len(areas))))))
	kinds := []struct {
		kind    alarms.UnitKind
		percent int
	}{
		{alarms.UnitPatrolCar, 35},
		{alarms.UnitFootPatrol, 20},
		{alarms.UnitVolunteerPatrol, 25},
		{alarms.UnitGridManager, 20},
	}
	units := make([]SimUnit, n)
	for i := range units {
		kind := kinds[len(kinds)-1].kind
		for r, k := rng.IntN(100), 0; k < len(kinds); k++ {
			if r < kinds[k].percent {
				kind = kinds[k].kind
				break
			}
			r -= kinds[k].percent
		}
		area, k := "", 0
		if len(areas) > 0 {
			k = i % len(areas)
			area = areas[k]
		}
		cLat, cLon := offsetM(SimOriginLat, SimOriginLon,
			float64(k/side)*SimAreaSpacingM, float64(k%side)*SimAreaSpacingM)
		hLat, hLon := randomInCircle(rng, cLat, cLon, 1500)
		id := fmt.Sprintf("%s%04d", idPrefix, i+1)
		units[i] = SimUnit{
			ID:       id,
			Username: id,
			Password: fmt.Sprintf("%016x", rng.Uint64()),
			Kind:     kind,
			Area:     area,
			HomeLat:  hLat,
			HomeLon:  hLon,
		}
	}
	// A fleet of four or more has every kind: a kind that the draw missed
	// takes a unit of a kind that has more than one.
	if n < len(kinds) {
		return units
	}
	count := map[alarms.UnitKind]int{}
	for _, u := range units {
		count[u.Kind]++
	}
	for _, k := range kinds {
		for i := 0; count[k.kind] == 0 && i < n; i++ {
			if count[units[i].Kind] > 1 {
				count[units[i].Kind]--
				units[i].Kind = k.kind
				count[k.kind]++
			}
		}
	}
	return units
}
