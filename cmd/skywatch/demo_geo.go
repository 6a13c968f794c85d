package main

import (
	"fmt"
	"math"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/hardware"
)

// demoGeo is the demo's county: two townships of two villages each. The
// villages sit where hardware.SimUnits puts the home areas of its units (a
// grid of SimAreaSpacingM from SimOrigin), so that the simulated units
// patrol the villages they belong to.
type demoGeo struct {
	villages []demoVillage
}

type demoVillage struct {
	id, name, township string
	lat, lon           float64
}

const (
	demoVillageRadiusM  = 2000
	demoTownshipRadiusM = 6000
)

func newDemoGeo() demoGeo {
	names := []struct{ id, name, township string }{
		{"east-village", "East Village", "dongcheng"},
		{"river-village", "River Village", "dongcheng"},
		{"west-village", "West Village", "xicheng"},
		{"hill-village", "Hill Village", "xicheng"},
	}
	side := int(math.Ceil(math.Sqrt(float64(len(names)))))
	var g demoGeo
	for k, n := range names {
		lat, lon := offsetMetres(hardware.SimOriginLat, hardware.SimOriginLon,
			float64(k/side)*hardware.SimAreaSpacingM, float64(k%side)*hardware.SimAreaSpacingM)
		g.villages = append(g.villages, demoVillage{n.id, n.name, n.township, lat, lon})
	}
	return g
}

// areas is the jurisdiction tree: county > township > village.
func (g demoGeo) areas() []alarms.AreaConfig {
	out := []alarms.AreaConfig{{ID: "qingshan", Name: "Qingshan County", Kind: alarms.AreaCounty}}
	townships := map[string][]demoVillage{}
	var order []string
	for _, v := range g.villages {
		if townships[v.township] == nil {
			order = append(order, v.township)
		}
		townships[v.township] = append(townships[v.township], v)
	}
	for _, t := range order {
		vs := townships[t]
		var lat, lon float64
		for _, v := range vs {
			lat += v.lat / float64(len(vs))
			lon += v.lon / float64(len(vs))
		}
		centre := [2]float64{lat, lon}
		out = append(out, alarms.AreaConfig{
			ID: t, Name: titleCase(t) + " Township", Parent: "qingshan", Kind: alarms.AreaTownship,
			Boundary: alarms.Boundary{Centre: &centre, RadiusM: demoTownshipRadiusM},
		})
		for _, v := range vs {
			c := [2]float64{v.lat, v.lon}
			out = append(out, alarms.AreaConfig{
				ID: v.id, Name: v.name, Parent: t, Kind: alarms.AreaVillage,
				Boundary: alarms.Boundary{Centre: &c, RadiusM: demoVillageRadiusM},
			})
		}
	}
	return out
}

// place returns the i-th position in village v: spread on a spiral within
// maxM metres of its centre, the same every run.
func (v demoVillage) place(i int, maxM float64) (lat, lon float64) {
	angle := float64(i) * 2.399963 // the golden angle spreads points evenly
	r := maxM * math.Sqrt(float64(i%50+1)/50)
	return offsetMetres(v.lat, v.lon, r*math.Cos(angle), r*math.Sin(angle))
}

// offsetMetres moves a position north and east by metres.
func offsetMetres(lat, lon, north, east float64) (float64, float64) {
	const metresPerDegree = 111320.0
	return lat + north/metresPerDegree, lon + east/(metresPerDegree*math.Cos(lat*math.Pi/180))
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return fmt.Sprintf("%c%s", s[0]-'a'+'A', s[1:])
}
