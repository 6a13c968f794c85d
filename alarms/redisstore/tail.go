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
	res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{key, after}, Count: int64(count), Block: block}).Result()
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
