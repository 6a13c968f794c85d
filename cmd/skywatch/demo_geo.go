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
// patrol the villages they belong to. The names are Chinese, as the
// console's default language is; the IDs stay ASCII (configuration, URLs,
// tests and the patrol page use them).
type demoGeo struct {
	villages  []demoVillage
	townships []demoTownship
}

type demoTownship struct{ id, name string }

type demoVillage struct {
	id, name, township string
	lat, lon           float64
}

const (
	demoVillageRadiusM  = 2000
	demoTownshipRadiusM = 6000
)

const (
	demoCountyID   = "qingshan"
	demoCountyName = "青山县"
)

func newDemoGeo() demoGeo {
	names := []struct{ id, name, township string }{
		{"east-village", "东村", "dongcheng"},
		{"river-village", "河湾村", "dongcheng"},
		{"west-village", "西村", "xicheng"},
		{"hill-village", "山前村", "xicheng"},
	}
	side := int(math.Ceil(math.Sqrt(float64(len(names)))))
	g := demoGeo{townships: []demoTownship{{"dongcheng", "东城镇"}, {"xicheng", "西城镇"}}}
	for k, n := range names {
		lat, lon := offsetMetres(hardware.SimOriginLat, hardware.SimOriginLon,
			float64(k/side)*hardware.SimAreaSpacingM, float64(k%side)*hardware.SimAreaSpacingM)
		g.villages = append(g.villages, demoVillage{n.id, n.name, n.township, lat, lon})
	}
	return g
}

// townshipName is the name of township id (id itself when unknown).
func (g demoGeo) townshipName(id string) string {
	for _, t := range g.townships {
		if t.id == id {
			return t.name
		}
	}
	return id
}

// areas is the jurisdiction tree: county > township > village.
func (g demoGeo) areas() []alarms.AreaConfig {
	out := []alarms.AreaConfig{{ID: demoCountyID, Name: demoCountyName, Kind: alarms.AreaCounty}}
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
			ID: t, Name: g.townshipName(t), Parent: demoCountyID, Kind: alarms.AreaTownship,
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

// device configures the fleet's i-th device: a household of the villages
// in turn ("东村 3 号户" at "东城镇东村 3 号"), linked to the first camera of
// its village.
func (g demoGeo) device(i int, d hardware.SimDevice, villageCameras map[string][]string) alarms.DeviceConfig {
	v := g.villages[i%len(g.villages)]
	house := i/len(g.villages) + 1
	lat, lon := v.place(house-1, 1200)
	cams := villageCameras[v.id]
	return alarms.DeviceConfig{
		ID: d.ID, Name: fmt.Sprintf("%s %d 号户", v.name, house), Model: d.Format,
		Area: v.id, Lat: lat, Lon: lon, Address: fmt.Sprintf("%s%s %d 号", g.townshipName(v.township), v.name, house),
		Cameras:  cams[:min(1, len(cams))],
		Username: d.Username, Password: d.Password,
	}
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
