package alarms

import "math"

// earthRadius is the mean Earth radius in metres, as Redis's GEO commands
// use it, so that both stores order units alike.
const earthRadius = 6372797.560856

// Distance is the great-circle (haversine) distance in metres between two
// points given in degrees. Routing uses straight-line distance: road
// distance would need a map that command centres do not have offline.
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Min(1, math.Sqrt(a)))
}

// Bearing is the initial compass bearing in degrees (0 north, 90 east)
// from the first point to the second, for the "direction" a unit is told.
func Bearing(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	y := math.Sin((lon2-lon1)*rad) * math.Cos(lat2*rad)
	x := math.Cos(lat1*rad)*math.Sin(lat2*rad) - math.Sin(lat1*rad)*math.Cos(lat2*rad)*math.Cos((lon2-lon1)*rad)
	b := math.Atan2(y, x) / rad
	return math.Mod(b+360, 360)
}

// inPolygon reports whether the point is inside the polygon of [lat, lon]
// vertices (ray casting in the plane of degrees: areas are small enough
// for that, and none crosses the antimeridian).
func inPolygon(lat, lon float64, poly [][2]float64) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		yi, xi := poly[i][0], poly[i][1]
		yj, xj := poly[j][0], poly[j][1]
		if (yi > lat) != (yj > lat) && lon < (xj-xi)*(lat-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}

// polygonArea is the polygon's area in square degrees scaled to metres at
// its latitude: only used to compare the sizes of areas.
func polygonArea(poly [][2]float64) float64 {
	if len(poly) < 3 {
		return 0
	}
	var sum float64
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		sum += poly[j][1]*poly[i][0] - poly[i][1]*poly[j][0]
	}
	degM := math.Pi / 180 * earthRadius
	return math.Abs(sum) / 2 * degM * degM * math.Cos(poly[0][0]*math.Pi/180)
}
