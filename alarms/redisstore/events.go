package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/alarms"
)

// appendLua stores an event unless its dedup key exists.
//
//	KEYS: dedup key, events stream, index keys...
//	ARGV: dedup ttl in ms ("0": no dedup), event JSON,
//	      hex16 of the received time, member suffix (device NUL area NUL class),
//	      the write's token
//
// It returns {1, entry id} when stored, {0, stored entry id} for a duplicate.
// The dedup key holds the entry id, a space and the token of the write that
// stored it: when go-redis sends the script again because the reply to the
// first run was lost, that run's own event is found with the same token and
// reported as stored, not as a duplicate, so that it is announced once.
const appendLua = `
local ttl = ARGV[1]
if ttl ~= '0' then
  local old = redis.call('GET', KEYS[1])
  if old then
    local sp = string.find(old, ' ', 1, true)
    if sp then
      local id = string.sub(old, 1, sp - 1)
      if string.sub(old, sp + 1) == ARGV[5] then return {1, id} end
      return {0, id}
    end
    return {0, old}
  end
end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
local dash = string.find(id, '-', 1, true)
local member = ARGV[3] .. string.format('%016x%016x', tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))) .. ARGV[4]
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], 0, member)
end
if ttl ~= '0' then
  redis.call('SET', KEYS[1], id .. ' ' .. ARGV[5], 'PX', ttl)
end
return {1, id}
`

const (
	defaultLimit = 100
	maxLimit     = 1000
	// scanBound is how many index entries one Events call reads at most
	// when a filter is not served by the index it walks.
	scanBound = 10000
	// keyLen is the length of an index member's ordering part, which is
	// also the cursor.
	keyLen = 48
)

// timeHex is t in unix nanoseconds as 16 hex digits, clamped at 1970.
func timeHex(t time.Time) string {
	var ns int64
	if t.After(time.Unix(0, 0)) {
		ns = t.UnixNano()
	}
	return fmt.Sprintf("%016x", ns)
}

// AppendEvent stores e unless its key is already stored; see alarms.Store.
func (s *Store) AppendEvent(ctx context.Context, e *alarms.Event, window time.Duration) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, fmt.Errorf("redis store: append event: %w", err)
	}
	rec := *e
	rec.Offset = ""
	data, err := json.Marshal(&rec)
	if err != nil {
		return false, fmt.Errorf("redis store: append event: %w", err)
	}
	ttl := s.cfg.DedupRetention
	if e.SyntheticID {
		ttl = window
	}
	var ttlMS int64
	if ttl > 0 {
		ttlMS = max(ttl.Milliseconds(), 1)
	}
	keys := []string{s.key("dedup:", e.Key()), s.key("events"), s.key("idx:all")}
	if e.Device != "" {
		keys = append(keys, s.key("idx:device:", e.Device))
	}
	if e.Area != "" {
		keys = append(keys, s.key("idx:area:", e.Area))
	}
	if e.Class != "" {
		keys = append(keys, s.key("idx:class:", string(e.Class)))
	}
	meta := e.Device + "\x00" + e.Area + "\x00" + string(e.Class)
	// The token is fixed before the first try, so that go-redis's own
	// retry of this call carries it too.
	token := rand.Text()
	var res []any
	if s.waitAOF {
		res, err = s.appendWaitAOF(ctx, keys, ttlMS, data, timeHex(e.ReceivedAt), meta, token)
	} else {
		res, err = s.scriptAppend.Run(ctx, s.rdb, keys, ttlMS, data, timeHex(e.ReceivedAt), meta, token).Slice()
	}
	if err != nil {
		return false, fmt.Errorf("redis store: append event: %w", err)
	}
	var (
		stored int64
		id     string
	)
	if len(res) == 2 {
		stored, _ = res[0].(int64)
		id, _ = res[1].(string)
	}
	if id == "" {
		return false, fmt.Errorf("redis store: append event: unexpected reply %v", res)
	}
	e.Offset = id
	return stored == 1, nil
}

// appendWaitAOF runs the append script and WAITAOF on one connection (a
// pipeline), so that WAITAOF waits for this write to be fsynced.
func (s *Store) appendWaitAOF(ctx context.Context, keys []string, args ...any) ([]any, error) {
	var (
		ev   *redis.Cmd
		wait *redis.Cmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		ev = p.Eval(ctx, appendLua, keys, args...)
		wait = p.Do(ctx, "WAITAOF", 1, 0, s.cfg.Timeout.Milliseconds())
		return nil
	})
	if err != nil {
		return nil, err
	}
	n, err := wait.Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("WAITAOF: %w", err)
	}
	if len(n) < 1 || n[0] < 1 {
		return nil, errors.New("WAITAOF: not on Redis's disk within the timeout")
	}
	return ev.Slice()
}

func normLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// validCursor reports whether c could be an index key.
func validCursor(c string) bool {
	if len(c) != keyLen {
		return false
	}
	for _, r := range c {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// Events lists events newest first. It walks the index of the device, or
// else of the area, or else of the class, and checks the other filters on
// the index members; at most scanBound members per call.
func (s *Store) Events(ctx context.Context, q alarms.EventQuery) (alarms.EventPage, error) {
	if err := s.check(ctx); err != nil {
		return alarms.EventPage{}, fmt.Errorf("redis store: events: %w", err)
	}
	limit := normLimit(q.Limit)
	hi, lo := "+", "-"
	if q.Cursor != "" {
		if !validCursor(q.Cursor) {
			return alarms.EventPage{}, fmt.Errorf("redis store: events: malformed cursor %q", q.Cursor)
		}
		hi = "(" + q.Cursor
	}
	if !q.Until.IsZero() {
		// A shorter prefix sorts first, so this keeps the tighter bound.
		if u := "(" + timeHex(q.Until); hi == "+" || u < hi {
			hi = u
		}
	}
	if !q.Since.IsZero() {
		lo = "[" + timeHex(q.Since)
	}
	areas := q.AreaFilter()
	q.Areas = areas // for metaMatches
	var key string
	switch {
	case q.Device != "":
		key = s.key("idx:device:", q.Device)
	case len(areas) == 1:
		key = s.key("idx:area:", areas[0])
	case q.Class != "":
		key = s.key("idx:class:", string(q.Class))
	default:
		key = s.key("idx:all")
	}
	// Ask for one more than a page, to know whether there is a next one;
	// more when filters are checked here.
	batch := int64(limit + 1)
	if (len(areas) > 0 && q.Device != "") || len(areas) > 1 || (q.Class != "" && (q.Device != "" || len(areas) > 0)) {
		batch = max(batch, 500)
	}

	var (
		matches []string // index keys of the page's events
		scanned int
		last    string // index key of the last member scanned
		next    string
	)
scan:
	for {
		members, err := s.rdb.ZRevRangeByLex(ctx, key, &redis.ZRangeBy{Min: lo, Max: hi, Count: batch}).Result()
		if err != nil {
			return alarms.EventPage{}, fmt.Errorf("redis store: events: %w", err)
		}
		for _, m := range members {
			if len(m) < keyLen {
				return alarms.EventPage{}, fmt.Errorf("redis store: events: malformed index member in %s", key)
			}
			if scanned++; scanned > scanBound {
				next = last
				break scan
			}
			last = m[:keyLen]
			if !metaMatches(m[keyLen:], q) {
				continue
			}
			if len(matches) == limit {
				next = matches[len(matches)-1]
				break scan
			}
			matches = append(matches, m[:keyLen])
		}
		if int64(len(members)) < batch {
			break
		}
		hi = "(" + last
	}

	events, err := s.fetch(ctx, matches)
	if err != nil {
		return alarms.EventPage{}, fmt.Errorf("redis store: events: %w", err)
	}
	return alarms.EventPage{Events: events, Next: next}, nil
}

// metaMatches checks q's filters against an index member's suffix; q.Areas
// must be q.AreaFilter().
func metaMatches(meta string, q alarms.EventQuery) bool {
	f := strings.SplitN(meta, "\x00", 3)
	if len(f) != 3 {
		return false
	}
	return (q.Device == "" || f[0] == q.Device) &&
		(len(q.Areas) == 0 || slices.Contains(q.Areas, f[1])) &&
		(q.Class == "" || f[2] == string(q.Class))
}

// fetch reads the events of index keys from the stream, in one round trip.
// An entry trimmed from the stream by hand is skipped.
func (s *Store) fetch(ctx context.Context, keys []string) ([]alarms.Event, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(keys))
	for i, k := range keys {
		ms, err1 := strconv.ParseUint(k[16:32], 16, 64)
		seq, err2 := strconv.ParseUint(k[32:48], 16, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed index key %q", k)
		}
		id := fmt.Sprintf("%d-%d", ms, seq)
		cmds[i] = pipe.XRange(ctx, s.key("events"), id, id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]alarms.Event, 0, len(keys))
	for _, cmd := range cmds {
		msgs := cmd.Val()
		if len(msgs) != 1 {
			continue
		}
		data, _ := msgs[0].Values["e"].(string)
		var e alarms.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, fmt.Errorf("event %s: %w", msgs[0].ID, err)
		}
		e.Offset = msgs[0].ID
		out = append(out, e)
	}
	return out, nil
}
