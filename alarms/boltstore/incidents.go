package boltstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/skywatch/skywatch/alarms"
)

var _ alarms.IncidentStore = (*Store)(nil)

// Buckets of the incident engine:
//
//	incidents         id -> incident JSON
//	inc_index         created (unix ns, 8 bytes) + id -> area 0 state 0 class 0 kind
//	inc_open          created + id -> nothing, for open incidents
//	inc_open_device   device 0 kind -> id, for open incidents
//	units             unit id -> UnitState JSON
//	meta              "incident_cursor" -> the engine's log cursor
var (
	bucketIncidents     = []byte("incidents")
	bucketIncIndex      = []byte("inc_index")
	bucketIncOpen       = []byte("inc_open")
	bucketIncOpenDevice = []byte("inc_open_device")
	bucketUnits         = []byte("units")
	bucketMeta          = []byte("meta")

	keyCursor = []byte("incident_cursor")
)

func incidentBuckets() [][]byte {
	return [][]byte{bucketIncidents, bucketIncIndex, bucketIncOpen, bucketIncOpenDevice, bucketUnits, bucketMeta}
}

func incKey(inc *alarms.Incident) []byte {
	return append(timeKey(inc.Created), inc.ID...)
}

func incMeta(inc *alarms.Incident) []byte {
	return []byte(inc.Area + "\x00" + string(inc.State) + "\x00" + string(inc.Class) + "\x00" + string(inc.Kind))
}

func openDeviceKey(device string, kind alarms.IncidentKind) []byte {
	return []byte(device + "\x00" + string(kind))
}

// EventsAfter returns events in log (seq) order after the offset after.
func (s *Store) EventsAfter(ctx context.Context, after string, limit int) ([]alarms.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("bolt store: events after: %w", err)
	}
	limit = normLimit(limit)
	var from []byte
	if after != "" {
		b, err := parseOffset(after, 8)
		if err != nil {
			return nil, fmt.Errorf("bolt store: events after: %w", err)
		}
		from = b
	}
	var out []alarms.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		var k, v []byte
		if from == nil {
			k, v = c.First()
		} else if k, v = c.Seek(from); k != nil && bytes.Equal(k, from) {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			e, err := decodeEvent(v, k)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt store: events after: %w", err)
	}
	return out, nil
}

// SaveIncidents writes incidents and the cursor in one transaction.
func (s *Store) SaveIncidents(ctx context.Context, incs []alarms.Incident, cursor string) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("bolt store: save incidents: %w", err)
	}
	data := make([][]byte, len(incs))
	for i := range incs {
		b, err := json.Marshal(&incs[i])
		if err != nil {
			return fmt.Errorf("bolt store: save incident %s: %w", incs[i].ID, err)
		}
		data[i] = b
	}
	err := s.db.Batch(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketIncidents)
		index := tx.Bucket(bucketIncIndex)
		open := tx.Bucket(bucketIncOpen)
		openDev := tx.Bucket(bucketIncOpenDevice)
		// Incidents saved earlier in this same call.
		saved := map[string]*alarms.Incident{}
		for i := range incs {
			inc := &incs[i]
			old, ok := saved[inc.ID]
			if !ok {
				if v := all.Get([]byte(inc.ID)); v != nil {
					old = new(alarms.Incident)
					if err := json.Unmarshal(v, old); err != nil {
						return fmt.Errorf("incident %s: %w", inc.ID, err)
					}
				}
			}
			var stored int64
			if old != nil {
				stored = old.Version
			}
			if inc.Version != stored+1 {
				return fmt.Errorf("incident %s: version %d, stored %d: %w", inc.ID, inc.Version, stored, alarms.ErrConflict)
			}
			saved[inc.ID] = inc
			if old != nil && old.Device != inc.Device {
				return fmt.Errorf("incident %s: device changed", inc.ID)
			}
			if old != nil && old.State.Open() && !inc.State.Open() {
				if err := openDev.Delete(openDeviceKey(old.Device, old.Kind)); err != nil {
					return err
				}
			}
			if err := all.Put([]byte(inc.ID), data[i]); err != nil {
				return err
			}
			k := incKey(inc)
			if err := index.Put(k, incMeta(inc)); err != nil {
				return err
			}
			if inc.State.Open() {
				if err := open.Put(k, nil); err != nil {
					return err
				}
				if err := openDev.Put(openDeviceKey(inc.Device, inc.Kind), []byte(inc.ID)); err != nil {
					return err
				}
			} else if err := open.Delete(k); err != nil {
				return err
			}
		}
		if cursor != "" {
			return tx.Bucket(bucketMeta).Put(keyCursor, []byte(cursor))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt store: save incidents: %w", err)
	}
	return nil
}

// IncidentCursor returns the engine's saved cursor.
func (s *Store) IncidentCursor(ctx context.Context) (string, error) {
	if err := s.check(ctx); err != nil {
		return "", fmt.Errorf("bolt store: incident cursor: %w", err)
	}
	var c string
	err := s.db.View(func(tx *bolt.Tx) error {
		c = string(tx.Bucket(bucketMeta).Get(keyCursor))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("bolt store: incident cursor: %w", err)
	}
	return c, nil
}

func getIncident(tx *bolt.Tx, id []byte) (alarms.Incident, error) {
	v := tx.Bucket(bucketIncidents).Get(id)
	if v == nil {
		return alarms.Incident{}, alarms.ErrNotFound
	}
	var inc alarms.Incident
	if err := json.Unmarshal(v, &inc); err != nil {
		return alarms.Incident{}, err
	}
	return inc, nil
}

// Incident returns one incident.
func (s *Store) Incident(ctx context.Context, id string) (alarms.Incident, error) {
	if err := s.check(ctx); err != nil {
		return alarms.Incident{}, fmt.Errorf("bolt store: incident %s: %w", id, err)
	}
	var inc alarms.Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		inc, err = getIncident(tx, []byte(id))
		return err
	})
	if err != nil {
		return alarms.Incident{}, fmt.Errorf("bolt store: incident %s: %w", id, err)
	}
	return inc, nil
}

// incMetaMatches checks q's filters (but the time bounds) against an index
// entry's value.
func incMetaMatches(meta []byte, q alarms.IncidentQuery) bool {
	f := strings.SplitN(string(meta), "\x00", 4)
	if len(f) != 4 {
		return false
	}
	state := alarms.IncidentState(f[1])
	return (len(q.Areas) == 0 || slices.Contains(q.Areas, f[0])) &&
		(len(q.States) == 0 || slices.Contains(q.States, state)) &&
		(!q.Open || state.Open()) &&
		(q.Class == "" || f[2] == string(q.Class)) &&
		(q.Kind == "" || f[3] == string(q.Kind))
}

// Incidents lists incidents newest first, walking the time index (or the
// open index for q.Open) and filtering on the index entries; at most
// scanBound entries per call.
func (s *Store) Incidents(ctx context.Context, q alarms.IncidentQuery) (alarms.IncidentPage, error) {
	if err := s.check(ctx); err != nil {
		return alarms.IncidentPage{}, fmt.Errorf("bolt store: incidents: %w", err)
	}
	limit := normLimit(q.Limit)
	var hi, lo []byte
	if q.Cursor != "" {
		c, err := hex.DecodeString(q.Cursor)
		if err != nil || len(c) < 8 {
			return alarms.IncidentPage{}, fmt.Errorf("bolt store: incidents: malformed cursor %q", q.Cursor)
		}
		hi = c
	}
	if !q.Until.IsZero() {
		if u := timeKey(q.Until); hi == nil || bytes.Compare(u, hi) < 0 {
			hi = u
		}
	}
	if !q.Since.IsZero() {
		lo = timeKey(q.Since)
	}
	var page alarms.IncidentPage
	err := s.db.View(func(tx *bolt.Tx) error {
		index := tx.Bucket(bucketIncIndex)
		walk := index
		if q.Open {
			walk = tx.Bucket(bucketIncOpen)
		}
		c := walk.Cursor()
		var k []byte
		if hi == nil {
			k, _ = c.Last()
		} else if k, _ = c.Seek(hi); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		var scannedKey, pageKey []byte
		for scanned := 0; k != nil && (lo == nil || bytes.Compare(k, lo) >= 0); k, _ = c.Prev() {
			if scanned++; scanned > scanBound {
				page.Next = hex.EncodeToString(scannedKey)
				return nil
			}
			scannedKey = k
			if !incMetaMatches(index.Get(k), q) {
				continue
			}
			if len(page.Incidents) == limit {
				page.Next = hex.EncodeToString(pageKey)
				return nil
			}
			pageKey = k
			inc, err := getIncident(tx, k[8:])
			if err != nil {
				return fmt.Errorf("incident %s: %w", k[8:], err)
			}
			page.Incidents = append(page.Incidents, inc)
		}
		return nil
	})
	if err != nil {
		return alarms.IncidentPage{}, fmt.Errorf("bolt store: incidents: %w", err)
	}
	return page, nil
}

// OpenIncidents returns the open incidents, oldest first.
func (s *Store) OpenIncidents(ctx context.Context) ([]alarms.Incident, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("bolt store: open incidents: %w", err)
	}
	var out []alarms.Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIncOpen).ForEach(func(k, _ []byte) error {
			inc, err := getIncident(tx, k[8:])
			if err != nil {
				return fmt.Errorf("incident %s: %w", k[8:], err)
			}
			out = append(out, inc)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt store: open incidents: %w", err)
	}
	return out, nil
}

// OpenIncident returns a device's open incident of a kind.
func (s *Store) OpenIncident(ctx context.Context, device string, kind alarms.IncidentKind) (alarms.Incident, error) {
	if err := s.check(ctx); err != nil {
		return alarms.Incident{}, fmt.Errorf("bolt store: open incident of %s: %w", device, err)
	}
	var inc alarms.Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketIncOpenDevice).Get(openDeviceKey(device, kind))
		if id == nil {
			return alarms.ErrNotFound
		}
		var err error
		inc, err = getIncident(tx, id)
		return err
	})
	if err != nil {
		return alarms.Incident{}, fmt.Errorf("bolt store: open incident of %s: %w", device, err)
	}
	return inc, nil
}

// PutUnit saves a unit's last report.
func (s *Store) PutUnit(ctx context.Context, u alarms.UnitState) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("bolt store: put unit %s: %w", u.ID, err)
	}
	data, err := json.Marshal(&u)
	if err != nil {
		return fmt.Errorf("bolt store: put unit %s: %w", u.ID, err)
	}
	err = s.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUnits).Put([]byte(u.ID), data)
	})
	if err != nil {
		return fmt.Errorf("bolt store: put unit %s: %w", u.ID, err)
	}
	return nil
}

// Units returns every saved unit, by ID.
func (s *Store) Units(ctx context.Context) ([]alarms.UnitState, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("bolt store: units: %w", err)
	}
	var out []alarms.UnitState
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUnits).ForEach(func(k, v []byte) error {
			var u alarms.UnitState
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("unit %s: %w", k, err)
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt store: units: %w", err)
	}
	return out, nil
}

// NearestUnits scans every unit: a county has a few hundred.
func (s *Store) NearestUnits(ctx context.Context, lat, lon, radiusM float64, limit int) ([]alarms.UnitDistance, error) {
	units, err := s.Units(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]alarms.UnitDistance, 0, len(units))
	for _, u := range units {
		d := alarms.Distance(lat, lon, u.Lat, u.Lon)
		if radiusM > 0 && d > radiusM {
			continue
		}
		out = append(out, alarms.UnitDistance{ID: u.ID, DistanceM: d})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].DistanceM != out[j].DistanceM {
			return out[i].DistanceM < out[j].DistanceM
		}
		return out[i].ID < out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
