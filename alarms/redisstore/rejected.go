package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/skywatch/skywatch/alarms"
)

// rejectLua adds a rejected message to the stream of all and to the
// device's, with the same entry id.
//
//	KEYS: rejected stream, device's rejected stream
//	ARGV: rejected JSON
const rejectLua = `
local id = redis.call('XADD', KEYS[1], '*', 'r', ARGV[1])
redis.call('XADD', KEYS[2], id, 'r', ARGV[1])
return id
`

// AddRejected keeps a message that did not decode and sets r.Offset.
func (s *Store) AddRejected(ctx context.Context, r *alarms.Rejected) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("redis store: add rejected: %w", err)
	}
	rec := *r
	rec.Offset = ""
	data, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("redis store: add rejected: %w", err)
	}
	keys := []string{s.key("rejected"), s.key("rejected:device:", r.Device)}
	id, err := s.scriptReject.Run(ctx, s.rdb, keys, data).Text()
	if err != nil {
		return fmt.Errorf("redis store: add rejected: %w", err)
	}
	r.Offset = id
	return nil
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
