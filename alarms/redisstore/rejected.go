package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/skywatch/skywatch/alarms"
)

// rejectLua adds a rejected message to the stream of all and to the
// device's, with the same entry id, then drops the oldest messages past the
// limits (0: none), from both streams.
//
//	KEYS: rejected stream, device's rejected stream
//	ARGV: rejected JSON, per-device limit, total limit,
//	      prefix of the device streams' keys, device
//
// It returns {entry id, number of messages dropped}. The device streams
// dropped for the total limit are named from the entry's d field (or its
// JSON, for entries from before that field); a device stream left empty is
// deleted, so that many device names (unknown devices at an external
// broker) leave no keys behind.
const rejectLua = `
local id = redis.call('XADD', KEYS[1], '*', 'r', ARGV[1], 'd', ARGV[5])
redis.call('XADD', KEYS[2], id, 'r', ARGV[1])
local dropped = 0
local per = tonumber(ARGV[2])
if per > 0 then
  local n = redis.call('XLEN', KEYS[2]) - per
  if n > 0 then
    for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', n)) do
      redis.call('XDEL', KEYS[1], e[1])
      redis.call('XDEL', KEYS[2], e[1])
      dropped = dropped + 1
    end
  end
end
local total = tonumber(ARGV[3])
if total > 0 then
  local n = redis.call('XLEN', KEYS[1]) - total
  if n > 0 then
    for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n)) do
      local f, dev = e[2], nil
      for i = 1, #f, 2 do
        if f[i] == 'd' then dev = f[i + 1] end
      end
      if not dev then
        for i = 1, #f, 2 do
          if f[i] == 'r' then dev = cjson.decode(f[i + 1]).device end
        end
      end
      redis.call('XDEL', KEYS[1], e[1])
      if type(dev) == 'string' then
        local k = ARGV[4] .. dev
        redis.call('XDEL', k, e[1])
        if redis.call('XLEN', k) == 0 then redis.call('DEL', k) end
      end
      dropped = dropped + 1
    end
  end
end
return {id, dropped}
`

// AddRejected keeps a message that did not decode and sets r.Offset,
// dropping the oldest messages past lim; see alarms.Store.
func (s *Store) AddRejected(ctx context.Context, r *alarms.Rejected, lim alarms.RejectedLimits) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("redis store: add rejected: %w", err)
	}
	rec := *r
	rec.Offset = ""
	data, err := json.Marshal(&rec)
	if err != nil {
		return 0, fmt.Errorf("redis store: add rejected: %w", err)
	}
	keys := []string{s.key("rejected"), s.key("rejected:device:", r.Device)}
	res, err := s.scriptReject.Run(ctx, s.rdb, keys, data, max(lim.PerDevice, 0), max(lim.Total, 0),
		s.key("rejected:device:"), r.Device).Slice()
	if err != nil {
		return 0, fmt.Errorf("redis store: add rejected: %w", err)
	}
	var (
		id      string
		dropped int64
	)
	if len(res) == 2 {
		id, _ = res[0].(string)
		dropped, _ = res[1].(int64)
	}
	if id == "" {
		return 0, fmt.Errorf("redis store: add rejected: unexpected reply %v", res)
	}
	r.Offset = id
	return int(dropped), nil
}

// validID reports whether id is a stream entry id, ms-seq.
func validID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	digits := func(s string) bool {
		if s == "" || len(s) > 20 {
			return false
		}
		for _, r := range s {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	}
	return ok && digits(ms) && digits(seq)
}

// Rejected lists rejected messages, newest first.
func (s *Store) Rejected(ctx context.Context, q alarms.RejectedQuery) ([]alarms.Rejected, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("redis store: rejected: %w", err)
	}
	hi := "+"
	if q.Before != "" {
		if !validID(q.Before) {
			return nil, fmt.Errorf("redis store: rejected: malformed offset %q", q.Before)
		}
		hi = "(" + q.Before
	}
	key := s.key("rejected")
	if q.Device != "" {
		key = s.key("rejected:device:", q.Device)
	}
	msgs, err := s.rdb.XRevRangeN(ctx, key, hi, "-", int64(normLimit(q.Limit))).Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: rejected: %w", err)
	}
	out := make([]alarms.Rejected, 0, len(msgs))
	for _, m := range msgs {
		data, _ := m.Values["r"].(string)
		var r alarms.Rejected
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return nil, fmt.Errorf("redis store: rejected %s: %w", m.ID, err)
		}
		r.Offset = m.ID
		out = append(out, r)
	}
	return out, nil
}
