package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/alarms"
)

var _ alarms.EventTail = (*Store)(nil)

// TailEvents follows the event stream with XREAD BLOCK, so that every
// Skywatch node sees the events every node stores, in log order; see
// alarms.EventTail. after "" returns the ID of the stream's last entry
// ("0-0" when it is empty).
func (s *Store) TailEvents(ctx context.Context, after string, count int, block time.Duration) ([]alarms.Event, string, error) {
	if err := s.check(ctx); err != nil {
		return nil, after, fmt.Errorf("redis store: tail events: %w", err)
	}
	key := s.key("events")
	if after == "" {
		last, err := s.rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
		if err != nil {
			return nil, "", fmt.Errorf("redis store: tail events: %w", err)
		}
		if len(last) == 0 {
			return nil, "0-0", nil
		}
		return nil, last[0].ID, nil
	}
	if block <= 0 {
		block = time.Millisecond // 0 would block for ever
	}
	if count <= 0 {
		count = 1
	}
	res, err := s.blocking.XRead(ctx, &redis.XReadArgs{Streams: []string{key, after}, Count: int64(count), Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, after, nil
	}
	if err != nil {
		return nil, after, fmt.Errorf("redis store: tail events: %w", err)
	}
	var out []alarms.Event
	next := after
	for _, st := range res {
		for _, m := range st.Messages {
			next = m.ID
			data, _ := m.Values["e"].(string)
			var e alarms.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				continue // not ours to fix here; Events reports it
			}
			e.Offset = m.ID
			out = append(out, e)
		}
	}
	return out, next, nil
}

var _ alarms.DeviceStateSetter = (*Store)(nil)

// putDeviceIfLua saves a device's state if the stored one's rev is the
// expected one.
//
//	KEYS: devices hash
//	ARGV: device id, expected rev, state JSON (with the new rev)
const putDeviceIfLua = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local rev = 0
if cur then
  local ok, st = pcall(cjson.decode, cur)
  if ok and type(st) == 'table' and type(st['rev']) == 'number' then rev = st['rev'] end
end
if rev ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`

// PutDeviceIf saves d with Rev rev+1 if the stored state's Rev is rev;
// see alarms.DeviceStateSetter.
func (s *Store) PutDeviceIf(ctx context.Context, d alarms.DeviceState, rev int64) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, fmt.Errorf("redis store: put device %s: %w", d.ID, err)
	}
	d.Rev = rev + 1
	data, err := json.Marshal(&d)
	if err != nil {
		return false, fmt.Errorf("redis store: put device %s: %w", d.ID, err)
	}
	// A Script per call (a SHA-1 of 300 bytes) keeps Store's fields to
	// the other writes; EVALSHA still spares sending the script.
	n, err := redis.NewScript(putDeviceIfLua).Run(ctx, s.rdb, []string{s.key("devices")}, d.ID, rev, data).Int64()
	if err != nil {
		return false, fmt.Errorf("redis store: put device %s: %w", d.ID, err)
	}
	return n == 1, nil
}
