// Package nodestats keeps the figures each node of a cluster publishes
// about itself (events stored per second, viewers, cameras pulled...) in
// Redis, so that any node can show every node's: one hash under the
// store's key prefix, {prefix}cluster:stats, node id -> JSON. Entries are
// the node's own; a node that stops publishing is pruned after MaxAge.
package nodestats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/redisconn"
)

// MaxAge is how long a node's last figures are kept after it stopped
// publishing: long enough for an admin to see which node died and what it
// was doing.
const MaxAge = 24 * time.Hour

// Record is what a node publishes: At (when it measured) and its figures
// as JSON of the caller's shape.
type Record struct {
	Node string          `json:"node"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
}

// Store reads and writes the nodes' figures. It is safe for concurrent use.
type Store struct {
	rdb *redisconn.Client
	key string
}

// Open connects to Redis with the store's settings (store.redis_url,
// store.redis_key_prefix, store.redis_timeout) and checks that it answers.
func Open(ctx context.Context, redisURL, keyPrefix string, timeout time.Duration) (*Store, error) {
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	opts, err := redisconn.Options(redisURL, keyPrefix, timeout)
	if err != nil {
		return nil, err
	}
	rdb, err := redisconn.Dial(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("node stats: %w", err)
	}
	return &Store{rdb: rdb, key: keyPrefix + "cluster:stats"}, nil
}

// Close closes the connections. It is idempotent.
func (s *Store) Close() error { return s.rdb.Close() }

// Put publishes rec, replacing the node's previous one.
func (s *Store) Put(ctx context.Context, rec Record) error {
	if rec.Node == "" {
		return errors.New("node stats: put: no node")
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("node stats: put: %w", err)
	}
	if err := s.rdb.HSet(ctx, s.key, rec.Node, data).Err(); err != nil {
		return fmt.Errorf("node stats: put: %w", err)
	}
	return nil
}

// All returns every node's last record, by node id; records older than
// MaxAge at now are removed.
func (s *Store) All(ctx context.Context, now time.Time) (map[string]Record, error) {
	m, err := s.rdb.HGetAll(ctx, s.key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("node stats: read: %w", err)
	}
	out := make(map[string]Record, len(m))
	var old []string
	for node, v := range m {
		var rec Record
		if json.Unmarshal([]byte(v), &rec) != nil || now.Sub(rec.At) > MaxAge {
			old = append(old, node)
			continue
		}
		out[node] = rec
	}
	if len(old) > 0 {
		if err := s.rdb.HDel(ctx, s.key, old...).Err(); err != nil {
			return out, fmt.Errorf("node stats: prune: %w", err)
		}
	}
	return out, nil
}
