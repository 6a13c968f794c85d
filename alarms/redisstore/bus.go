package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/alarms"
)

// The engine's command stream, reply keys and feed (alarms.EngineCluster).
// Blocking reads (XREAD BLOCK, BLPOP) each hold a connection of the pool
// while they wait.

// SendCommand appends a request to the command stream, trimmed to about
// Config.EngineCommandsMax entries (the oldest, long applied or expired,
// go first).
func (s *Store) SendCommand(ctx context.Context, data []byte) (string, error) {
	if err := s.check(ctx); err != nil {
		return "", fmt.Errorf("redis store: command: %w", err)
	}
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.key("eng:cmd"), MaxLen: s.cfg.EngineCommandsMax, Approx: true,
		Values: []any{"j", data}}).Result()
	if err != nil {
		return "", fmt.Errorf("redis store: command: %w", err)
	}
	return id, nil
}

// ReadCommands reads commands after id after.
func (s *Store) ReadCommands(ctx context.Context, after string, count int, wait time.Duration) ([]alarms.CommandEntry, error) {
	msgs, err := s.readStream(ctx, "eng:cmd", after, count, wait)
	if err != nil {
		return nil, fmt.Errorf("redis store: commands: %w", err)
	}
	out := make([]alarms.CommandEntry, 0, len(msgs))
	for _, m := range msgs {
		data, _ := m.Values["j"].(string)
		out = append(out, alarms.CommandEntry{ID: m.ID, Data: []byte(data)})
	}
	return out, nil
}

// readStream is XREAD BLOCK on one stream; no entries is not an error.
func (s *Store) readStream(ctx context.Context, name, after string, count int, wait time.Duration) ([]redis.XMessage, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if after == "" {
		after = "0"
	}
	res, err := s.blocking.XRead(ctx, &redis.XReadArgs{Streams: []string{s.key(name), after}, Count: int64(count), Block: wait}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].Messages, nil
}

// Reply stores an answer under its request's key.
func (s *Store) Reply(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("redis store: reply: %w", err)
	}
	k := s.key("eng:reply:", key)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, k, data)
		p.Expire(ctx, k, max(ttl, time.Second))
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis store: reply: %w", err)
	}
	return nil
}

// AwaitReply waits for the answer under key (BLPOP, whole seconds).
func (s *Store) AwaitReply(ctx context.Context, key string, wait time.Duration) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("redis store: await reply: %w", err)
	}
	wait = max(wait.Round(time.Second), time.Second)
	res, err := s.blocking.BLPop(ctx, wait, s.key("eng:reply:", key)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis store: await reply: %w", err)
	}
	return []byte(res[1]), nil
}

// PublishFeed appends items to the feed.
func (s *Store) PublishFeed(ctx context.Context, items []alarms.FeedItem) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("redis store: feed: %w", err)
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, it := range items {
			p.XAdd(ctx, &redis.XAddArgs{Stream: s.key("eng:feed"), MaxLen: s.cfg.EngineFeedMax, Approx: true,
				Values: []any{"u", it.Unit, "j", it.Data}})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis store: feed: %w", err)
	}
	return nil
}

// FeedTail returns the id of the feed's last entry.
func (s *Store) FeedTail(ctx context.Context) (string, error) {
	if err := s.check(ctx); err != nil {
		return "", fmt.Errorf("redis store: feed: %w", err)
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.key("eng:feed"), "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("redis store: feed: %w", err)
	}
	if len(msgs) == 0 {
		return "0", nil
	}
	return msgs[0].ID, nil
}

// ReadFeed reads feed items after id after.
func (s *Store) ReadFeed(ctx context.Context, after string, count int, wait time.Duration) ([]alarms.FeedItem, error) {
	msgs, err := s.readStream(ctx, "eng:feed", after, count, wait)
	if err != nil {
		return nil, fmt.Errorf("redis store: feed: %w", err)
	}
	out := make([]alarms.FeedItem, 0, len(msgs))
	for _, m := range msgs {
		unit, _ := m.Values["u"].(string)
		data, _ := m.Values["j"].(string)
		out = append(out, alarms.FeedItem{ID: m.ID, Unit: unit, Data: []byte(data)})
	}
	// A full batch means the reader lags: the feed may have been trimmed
	// past what it read last. Feed entries are never deleted otherwise, so
	// a first entry of the stream later than after means a gap (or, at
	// worst, that only after itself went: a needless reload).
	if len(out) == count && after != "" && after != "0" {
		info, err := s.rdb.XInfoStream(ctx, s.key("eng:feed")).Result()
		if err == nil && streamIDLess(after, info.FirstEntry.ID) {
			out[0].Gap = true
		}
	}
	return out, nil
}

// streamIDLess compares two stream entry ids ("ms-seq").
func streamIDLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	ami, _ := strconv.ParseUint(am, 10, 64)
	bmi, _ := strconv.ParseUint(bm, 10, 64)
	if ami != bmi {
		return ami < bmi
	}
	asi, _ := strconv.ParseUint(as, 10, 64)
	bsi, _ := strconv.ParseUint(bs, 10, 64)
	return asi < bsi
}
