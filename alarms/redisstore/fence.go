package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/alarms"
)

var (
	_ alarms.FencedStore   = (*Store)(nil)
	_ alarms.EngineCluster = (*Store)(nil)
)

// Keys of the engine in cluster mode, under the prefix P:
//
//	P eng:outbox      stream; fields u = unit, j = DispatchMessage JSON:
//	                  messages saved with their change, not yet published
//	P eng:feed        stream, bounded (Config.EngineFeedMax); fields u =
//	                  unit ("" for a change), j = JSON of the change or message
//	P eng:cmd         stream, bounded (Config.EngineCommandsMax); field j =
//	                  a request to the leader
//	P eng:cmdcursor   string: the last command the leader applied
//	P eng:reply:{key} list: the answer to one request (expires)
//
// The fence key is given by the caller (the cluster's lease key, under
// the same prefix).

// saveFencedLua is saveLua behind a fence, with the command position, the
// outbox and the feed.
//
//	KEYS[1] = fence key
//	ARGV: fence value, prefix, cursor, commands, n, nOutbox, nFeed, feed
//	      maxlen, then 7 per incident (as saveLua), 2 per outbox message
//	      (unit, json), 2 per feed item (unit, json)
//
// It returns {-1} when fenced out, {0, id, stored version} on a conflict,
// else {1, outbox entry ids...}.
const saveFencedLua = incidentsLua + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1}
end
local p = ARGV[2]
local n = tonumber(ARGV[5])
local nout = tonumber(ARGV[6])
local nfeed = tonumber(ARGV[7])
local conflict = checkIncidents(p, n, 9)
if conflict then
  return conflict
end
writeIncidents(p, n, 9)
if ARGV[3] ~= '' then
  redis.call('SET', p .. 'inc:cursor', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('SET', p .. 'eng:cmdcursor', ARGV[4])
end
local out = {1}
local b = 9 + n * 7
for i = 0, nout - 1 do
  out[#out + 1] = redis.call('XADD', p .. 'eng:outbox', '*', 'u', ARGV[b + i * 2], 'j', ARGV[b + i * 2 + 1])
end
b = b + nout * 2
for i = 0, nfeed - 1 do
  redis.call('XADD', p .. 'eng:feed', 'MAXLEN', '~', ARGV[8], '*', 'u', ARGV[b + i * 2], 'j', ARGV[b + i * 2 + 1])
end
return out
`

// putUnitFencedLua is PutUnit behind a fence.
//
//	KEYS[1] = fence key; ARGV: fence value, prefix, id, json, lon, lat
const putUnitFencedLua = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('HSET', ARGV[2] .. 'units', ARGV[3], ARGV[4])
redis.call('GEOADD', ARGV[2] .. 'units:geo', ARGV[5], ARGV[6], ARGV[3])
return 1
`

func fencedErr(op string, f alarms.Fence) error {
	return fmt.Errorf("redis store: %s: %s no longer holds %q: %w", op, f.Key, f.Value, alarms.ErrFenced)
}

// SaveFenced writes incidents, cursors, outbox and feed in one script, only
// while the fence holds.
func (s *Store) SaveFenced(ctx context.Context, f alarms.Fence, fs alarms.FencedSave) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("redis store: save incidents: %w", err)
	}
	args := []any{f.Value, s.cfg.KeyPrefix, fs.Cursor, fs.Commands, len(fs.Incidents), len(fs.Outbox), len(fs.Feed),
		s.cfg.EngineFeedMax}
	for i := range fs.Incidents {
		inc := &fs.Incidents[i]
		if inc.ID == "" || strings.ContainsRune(inc.ID, 0) {
			return nil, fmt.Errorf("redis store: save incidents: bad id %q", inc.ID)
		}
		data, err := json.Marshal(inc)
		if err != nil {
			return nil, fmt.Errorf("redis store: save incident %s: %w", inc.ID, err)
		}
		open := "0"
		if inc.State.Open() {
			open = "1"
		}
		args = append(args, inc.ID, inc.Version, data, incMember(inc), inc.Area, open, openDevKey(inc.Device, inc.Kind))
	}
	for i := range fs.Outbox {
		data, err := json.Marshal(&fs.Outbox[i].Msg)
		if err != nil {
			return nil, fmt.Errorf("redis store: outbox: %w", err)
		}
		args = append(args, fs.Outbox[i].Unit, data)
	}
	for _, it := range fs.Feed {
		args = append(args, it.Unit, it.Data)
	}
	res, err := s.scriptSaveFenced.Run(ctx, s.rdb, []string{f.Key}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("redis store: save incidents: %w", err)
	}
	switch code, _ := res[0].(int64); code {
	case -1:
		return nil, fencedErr("save incidents", f)
	case 0:
		return nil, fmt.Errorf("redis store: save incident %v: version is not stored %v + 1: %w", res[1], res[2], alarms.ErrConflict)
	}
	ids := make([]string, 0, len(res)-1)
	for _, r := range res[1:] {
		id, _ := r.(string)
		ids = append(ids, id)
	}
	return ids, nil
}

// PutUnitFenced saves a unit's report while the fence holds.
func (s *Store) PutUnitFenced(ctx context.Context, f alarms.Fence, u alarms.UnitState) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("redis store: put unit %s: %w", u.ID, err)
	}
	data, err := json.Marshal(&u)
	if err != nil {
		return fmt.Errorf("redis store: put unit %s: %w", u.ID, err)
	}
	code, err := s.scriptPutUnitFenced.Run(ctx, s.rdb, []string{f.Key}, f.Value, s.cfg.KeyPrefix, u.ID, data, u.Lon, u.Lat).Int64()
	if err != nil {
		return fmt.Errorf("redis store: put unit %s: %w", u.ID, err)
	}
	if code == -1 {
		return fencedErr("put unit "+u.ID, f)
	}
	return nil
}

// Outbox returns the messages left in the outbox, oldest first.
func (s *Store) Outbox(ctx context.Context) ([]alarms.OutboxMessage, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("redis store: outbox: %w", err)
	}
	msgs, err := s.rdb.XRange(ctx, s.key("eng:outbox"), "-", "+").Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: outbox: %w", err)
	}
	out := make([]alarms.OutboxMessage, 0, len(msgs))
	for _, m := range msgs {
		unit, _ := m.Values["u"].(string)
		data, _ := m.Values["j"].(string)
		om := alarms.OutboxMessage{Entry: m.ID, Unit: unit}
		if err := json.Unmarshal([]byte(data), &om.Msg); err != nil {
			return nil, fmt.Errorf("redis store: outbox entry %s: %w", m.ID, err)
		}
		out = append(out, om)
	}
	return out, nil
}

// RemoveOutbox removes published messages.
func (s *Store) RemoveOutbox(ctx context.Context, entries []string) error {
	if len(entries) == 0 {
		return nil
	}
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("redis store: outbox: %w", err)
	}
	if err := s.rdb.XDel(ctx, s.key("eng:outbox"), entries...).Err(); err != nil {
		return fmt.Errorf("redis store: outbox: remove: %w", err)
	}
	return nil
}

// CommandCursor returns the last command the leader applied.
func (s *Store) CommandCursor(ctx context.Context) (string, error) {
	if err := s.check(ctx); err != nil {
		return "", fmt.Errorf("redis store: command cursor: %w", err)
	}
	c, err := s.rdb.Get(ctx, s.key("eng:cmdcursor")).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis store: command cursor: %w", err)
	}
	return c, nil
}
