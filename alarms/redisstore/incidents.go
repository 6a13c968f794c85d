package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/alarms"
)

var _ alarms.IncidentStore = (*Store)(nil)

// Keys of the incident engine, under the prefix P:
//
//	P inc:{id}                 hash: v = version, j = incident JSON,
//	                           m = its index member, a = its area
//	P inc:idx:all              sorted sets, all scores 0, ordered by member:
//	P inc:idx:area:{area}      hex16(created unix ns) id NUL area NUL state
//	P inc:idx:open             NUL class NUL kind (open incidents only)
//	P inc:opendev:{kind}:{dev} string: the device's open incident of a kind
//	P inc:cursor               string: the engine's event log cursor
//	P units                    hash: unit id -> UnitState JSON
//	P units:geo                GEO set of the units' last positions
//
// SaveIncidents is one Lua script (version checks first, then every write),
// so it writes all or nothing. The script builds key names from the
// prefix, which, like the event scripts, rules out Redis Cluster.

// incidentsLua defines the Lua functions that both save scripts (saveLua,
// saveFencedLua) start with. Per incident, from ARGV[b]: id, version,
// json, member, area, open ("1"/"0"), opendev key suffix (7 arguments).
//
// checkIncidents returns {0, id, stored version} when a version is not
// the stored one plus one, else nil; writeIncidents writes them and their
// indexes.
const incidentsLua = `
local function checkIncidents(p, n, first)
  local seen = {}
  for i = 0, n - 1 do
    local b = first + i * 7
    local id = ARGV[b]
    local stored = seen[id]
    if stored == nil then
      stored = tonumber(redis.call('HGET', p .. 'inc:' .. id, 'v') or '0')
    end
    if tonumber(ARGV[b + 1]) ~= stored + 1 then
      return {0, id, stored}
    end
    seen[id] = stored + 1
  end
  return nil
end
local function writeIncidents(p, n, first)
  for i = 0, n - 1 do
    local b = first + i * 7
    local id, member, area, open, dev = ARGV[b], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]
    local h = p .. 'inc:' .. id
    local oldm = redis.call('HGET', h, 'm')
    if oldm then
      local olda = redis.call('HGET', h, 'a') or ''
      redis.call('ZREM', p .. 'inc:idx:all', oldm)
      redis.call('ZREM', p .. 'inc:idx:open', oldm)
      if olda ~= '' then redis.call('ZREM', p .. 'inc:idx:area:' .. olda, oldm) end
    end
    redis.call('HSET', h, 'v', ARGV[b + 1], 'j', ARGV[b + 2], 'm', member, 'a', area)
    redis.call('ZADD', p .. 'inc:idx:all', 0, member)
    if area ~= '' then redis.call('ZADD', p .. 'inc:idx:area:' .. area, 0, member) end
    local dk = p .. 'inc:opendev:' .. dev
    if open == '1' then
      redis.call('ZADD', p .. 'inc:idx:open', 0, member)
      redis.call('SET', dk, id)
    elseif redis.call('GET', dk) == id then
      redis.call('DEL', dk)
    end
  end
end
`

// saveLua writes incidents with version checks, and the cursor.
//
//	ARGV: prefix, cursor ("" keeps it), n, then 7 per incident
//	      (incidentsLua)
//
// It returns {1} when written, {0, id, stored version} on a conflict.
const saveLua = incidentsLua + `
local p = ARGV[1]
local n = tonumber(ARGV[3])
local conflict = checkIncidents(p, n, 4)
if conflict then
  return conflict
end
writeIncidents(p, n, 4)
if ARGV[2] ~= '' then
  redis.call('SET', p .. 'inc:cursor', ARGV[2])
end
return {1}
`

// incMember is an incident's index member: its ordering part (also the
// cursor) then NUL and the fields that filters check.
func incMember(inc *alarms.Incident) string {
	return timeHex(inc.Created) + inc.ID + "\x00" + inc.Area + "\x00" + string(inc.State) + "\x00" +
		string(inc.Class) + "\x00" + string(inc.Kind)
}

func openDevKey(device string, kind alarms.IncidentKind) string {
	return string(kind) + ":" + device
}

// EventsAfter returns events in stream order after the entry id after.
func (s *Store) EventsAfter(ctx context.Context, after string, limit int) ([]alarms.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("redis store: events after: %w", err)
	}
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := s.rdb.XRangeN(ctx, s.key("events"), start, "+", int64(normLimit(limit))).Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: events after %s: %w", after, err)
	}
	out := make([]alarms.Event, 0, len(msgs))
	for _, m := range msgs {
		data, _ := m.Values["e"].(string)
		var e alarms.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, fmt.Errorf("redis store: event %s: %w", m.ID, err)
		}
		e.Offset = m.ID
		out = append(out, e)
	}
	return out, nil
}

// SaveIncidents writes incidents and the cursor, all or nothing.
func (s *Store) SaveIncidents(ctx context.Context, incs []alarms.Incident, cursor string) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("redis store: save incidents: %w", err)
	}
	args := []any{s.cfg.KeyPrefix, cursor, len(incs)}
	for i := range incs {
		inc := &incs[i]
		if inc.ID == "" || strings.ContainsRune(inc.ID, 0) {
			return fmt.Errorf("redis store: save incidents: bad id %q", inc.ID)
		}
		data, err := json.Marshal(inc)
		if err != nil {
			return fmt.Errorf("redis store: save incident %s: %w", inc.ID, err)
		}
		open := "0"
		if inc.State.Open() {
			open = "1"
		}
		args = append(args, inc.ID, inc.Version, data, incMember(inc), inc.Area, open, openDevKey(inc.Device, inc.Kind))
	}
	// One key is named so that the script runs where the prefix lives.
	res, err := s.scriptSave.Run(ctx, s.rdb, []string{s.key("inc:cursor")}, args...).Slice()
	if err != nil {
		return fmt.Errorf("redis store: save incidents: %w", err)
	}
	if len(res) == 3 {
		return fmt.Errorf("redis store: save incident %v: version is not stored %v + 1: %w", res[1], res[2], alarms.ErrConflict)
	}
	return nil
}

// IncidentCursor returns the engine's saved cursor.
func (s *Store) IncidentCursor(ctx context.Context) (string, error) {
	if err := s.check(ctx); err != nil {
		return "", fmt.Errorf("redis store: incident cursor: %w", err)
	}
	c, err := s.rdb.Get(ctx, s.key("inc:cursor")).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis store: incident cursor: %w", err)
	}
	return c, nil
}

// Incident returns one incident.
func (s *Store) Incident(ctx context.Context, id string) (alarms.Incident, error) {
	if err := s.check(ctx); err != nil {
		return alarms.Incident{}, fmt.Errorf("redis store: incident %s: %w", id, err)
	}
	incs, err := s.fetchIncidents(ctx, []string{id})
	if err != nil {
		return alarms.Incident{}, fmt.Errorf("redis store: incident %s: %w", id, err)
	}
	if len(incs) == 0 {
		return alarms.Incident{}, fmt.Errorf("redis store: incident %s: %w", id, alarms.ErrNotFound)
	}
	return incs[0], nil
}

// fetchIncidents reads incidents in one round trip, skipping missing ones.
func (s *Store) fetchIncidents(ctx context.Context, ids []string) ([]alarms.Incident, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, s.key("inc:", id), "j")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]alarms.Incident, 0, len(ids))
	for i, cmd := range cmds {
		data, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var inc alarms.Incident
		if err := json.Unmarshal(data, &inc); err != nil {
			return nil, fmt.Errorf("incident %s: %w", ids[i], err)
		}
		out = append(out, inc)
	}
	return out, nil
}

// incMatches checks q's filters (but the time bounds) against a member's
// fields after its ordering part.
func incMatches(fields string, q alarms.IncidentQuery) bool {
	f := strings.SplitN(fields, "\x00", 4)
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

// Incidents lists incidents newest first. It walks the open index for
// q.Open, else the area's index for a single area, else all; other filters
// are checked on the members; at most scanBound members per call.
func (s *Store) Incidents(ctx context.Context, q alarms.IncidentQuery) (alarms.IncidentPage, error) {
	if err := s.check(ctx); err != nil {
		return alarms.IncidentPage{}, fmt.Errorf("redis store: incidents: %w", err)
	}
	limit := normLimit(q.Limit)
	hi, lo := "+", "-"
	if q.Cursor != "" {
		if len(q.Cursor) < 16 || strings.ContainsRune(q.Cursor, 0) {
			return alarms.IncidentPage{}, fmt.Errorf("redis store: incidents: malformed cursor %q", q.Cursor)
		}
		hi = "(" + q.Cursor
	}
	if !q.Until.IsZero() {
		if u := "(" + timeHex(q.Until); hi == "+" || u < hi {
			hi = u
		}
	}
	if !q.Since.IsZero() {
		lo = "[" + timeHex(q.Since)
	}
	key := s.key("inc:idx:all")
	switch {
	case q.Open:
		key = s.key("inc:idx:open")
	case len(q.Areas) == 1:
		key = s.key("inc:idx:area:", q.Areas[0])
	}
	batch := int64(max(limit+1, 200))
	var (
		ids, keys []string
		scanned   int
		last      string
		next      string
	)
scan:
	for {
		members, err := s.rdb.ZRevRangeByLex(ctx, key, &redis.ZRangeBy{Min: lo, Max: hi, Count: batch}).Result()
		if err != nil {
			return alarms.IncidentPage{}, fmt.Errorf("redis store: incidents: %w", err)
		}
		for _, m := range members {
			order, fields, ok := strings.Cut(m, "\x00")
			if !ok || len(order) <= 16 {
				return alarms.IncidentPage{}, fmt.Errorf("redis store: incidents: malformed index member in %s", key)
			}
			if scanned++; scanned > scanBound {
				next = last
				break scan
			}
			last = order
			if !incMatches(fields, q) {
				continue
			}
			if len(ids) == limit {
				next = keys[len(keys)-1]
				break scan
			}
			ids = append(ids, order[16:])
			keys = append(keys, order)
		}
		if int64(len(members)) < batch {
			break
		}
		hi = "(" + last
	}
	incs, err := s.fetchIncidents(ctx, ids)
	if err != nil {
		return alarms.IncidentPage{}, fmt.Errorf("redis store: incidents: %w", err)
	}
	return alarms.IncidentPage{Incidents: incs, Next: next}, nil
}

// OpenIncidents returns the open incidents, oldest first.
func (s *Store) OpenIncidents(ctx context.Context) ([]alarms.Incident, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("redis store: open incidents: %w", err)
	}
	members, err := s.rdb.ZRangeByLex(ctx, s.key("inc:idx:open"), &redis.ZRangeBy{Min: "-", Max: "+"}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: open incidents: %w", err)
	}
	ids := make([]string, 0, len(members))
	for _, m := range members {
		order, _, _ := strings.Cut(m, "\x00")
		if len(order) <= 16 {
			return nil, errors.New("redis store: open incidents: malformed index member")
		}
		ids = append(ids, order[16:])
	}
	incs, err := s.fetchIncidents(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("redis store: open incidents: %w", err)
	}
	return incs, nil
}

// OpenIncident returns a device's open incident of a kind.
func (s *Store) OpenIncident(ctx context.Context, device string, kind alarms.IncidentKind) (alarms.Incident, error) {
	if err := s.check(ctx); err != nil {
		return alarms.Incident{}, fmt.Errorf("redis store: open incident of %s: %w", device, err)
	}
	id, err := s.rdb.Get(ctx, s.key("inc:opendev:", openDevKey(device, kind))).Result()
	if errors.Is(err, redis.Nil) {
		return alarms.Incident{}, fmt.Errorf("redis store: open incident of %s: %w", device, alarms.ErrNotFound)
	}
	if err != nil {
		return alarms.Incident{}, fmt.Errorf("redis store: open incident of %s: %w", device, err)
	}
	return s.Incident(ctx, id)
}

// PutUnit saves a unit's last report and its position, in one MULTI.
func (s *Store) PutUnit(ctx context.Context, u alarms.UnitState) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("redis store: put unit %s: %w", u.ID, err)
	}
	data, err := json.Marshal(&u)
	if err != nil {
		return fmt.Errorf("redis store: put unit %s: %w", u.ID, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.key("units"), u.ID, data)
		p.GeoAdd(ctx, s.key("units:geo"), &redis.GeoLocation{Name: u.ID, Longitude: u.Lon, Latitude: u.Lat})
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis store: put unit %s: %w", u.ID, err)
	}
	return nil
}

// Units returns every saved unit, by ID.
func (s *Store) Units(ctx context.Context) ([]alarms.UnitState, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("redis store: units: %w", err)
	}
	all, err := s.rdb.HGetAll(ctx, s.key("units")).Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: units: %w", err)
	}
	out := make([]alarms.UnitState, 0, len(all))
	for id, data := range all {
		var u alarms.UnitState
		if err := json.Unmarshal([]byte(data), &u); err != nil {
			return nil, fmt.Errorf("redis store: unit %s: %w", id, err)
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b alarms.UnitState) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// anyDistance is a radius that covers the Earth, for "any distance".
const anyDistance = 21000e3

// NearestUnits searches the GEO set (GEOSEARCH ... ASC WITHDIST).
func (s *Store) NearestUnits(ctx context.Context, lat, lon, radiusM float64, limit int) ([]alarms.UnitDistance, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("redis store: nearest units: %w", err)
	}
	if radiusM <= 0 {
		radiusM = anyDistance
	}
	locs, err := s.rdb.GeoSearchLocation(ctx, s.key("units:geo"), &redis.GeoSearchLocationQuery{
		GeoSearchQuery: redis.GeoSearchQuery{Longitude: lon, Latitude: lat, Radius: radiusM, RadiusUnit: "m",
			Sort: "ASC", Count: limit},
		WithDist: true,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: nearest units: %w", err)
	}
	out := make([]alarms.UnitDistance, len(locs))
	for i, l := range locs {
		out[i] = alarms.UnitDistance{ID: l.Name, DistanceM: l.Dist}
	}
	// Equal distances in a stable order, as the bolt store gives them.
	slices.SortStableFunc(out, func(a, b alarms.UnitDistance) int {
		switch {
		case a.DistanceM < b.DistanceM:
			return -1
		case a.DistanceM > b.DistanceM:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}
