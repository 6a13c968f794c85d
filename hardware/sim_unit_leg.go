package hardware

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// metresPerDegree is the length of a degree of latitude, on the sphere
// that alarms.Distance uses.
const metresPerDegree = math.Pi / 180 * 6372797.560856

// simLeg is a straight move of a simulated unit from one point to another
// at a steady pace; a leg whose ends are the same point is a pause.
// Positions are interpolated in degrees, which is close enough over the
// few kilometres of a beat.
type simLeg struct {
	fromLat, fromLon float64
	toLat, toLon     float64
	start            time.Time
	dur              time.Duration
}

// newSimLeg starts a leg at now from one point to another at speed m/s.
func newSimLeg(now time.Time, fromLat, fromLon, toLat, toLon, speed float64) simLeg {
	d := alarms.Distance(fromLat, fromLon, toLat, toLon)
	return simLeg{
		fromLat: fromLat, fromLon: fromLon,
		toLat: toLat, toLon: toLon,
		start: now,
		dur:   time.Duration(d / speed * float64(time.Second)),
	}
}

// pause is a leg that stays at a point for d.
func pause(now time.Time, lat, lon float64, d time.Duration) simLeg {
	return simLeg{fromLat: lat, fromLon: lon, toLat: lat, toLon: lon, start: now, dur: d}
}

// at returns the position at t.
func (l simLeg) at(t time.Time) (lat, lon float64) {
	f := 1.0
	if l.dur > 0 {
		f = min(1, max(0, float64(t.Sub(l.start))/float64(l.dur)))
	}
	return l.fromLat + f*(l.toLat-l.fromLat), l.fromLon + f*(l.toLon-l.fromLon)
}

// end is when the leg ends.
func (l simLeg) end() time.Time { return l.start.Add(l.dur) }

// offsetM moves a point north and east by metres.
func offsetM(lat, lon, northM, eastM float64) (float64, float64) {
	dLat := northM / metresPerDegree
	dLon := eastM / (metresPerDegree * math.Cos(lat*math.Pi/180))
	return lat + dLat, lon + dLon
}

// randomInCircle returns a point uniformly distributed in the circle.
func randomInCircle(rng *rand.Rand, lat, lon, radiusM float64) (float64, float64) {
	r := radiusM * math.Sqrt(rng.Float64())
	theta := 2 * math.Pi * rng.Float64()
	return offsetM(lat, lon, r*math.Cos(theta), r*math.Sin(theta))
}
