// Package redisstore keeps alarm events in Redis: the alarms.Store for
// production and for several Skywatch nodes sharing one state.
//
// Durability: a write returns once Redis has applied it. For no loss across
// a Redis crash, run Redis with appendonly yes and appendfsync always;
// everysec can lose about the last 2 s of writes when Redis or its machine
// crashes (Redis delays a write while the previous fsync lasts). Without
// the append-only file, a Redis restart loses what the last RDB snapshot
// did not hold. Open reads these settings (Durability tells them), and in
// strict mode (Config.Durability) refuses settings that can lose events, or
// on Redis 7.2 and later sends WAITAOF after each event.
//
// Redis going away: operations fail within about the configured Timeout
// (2 s by default; a refused connection fails at once) and work again when
// Redis is back, on the same Store. Open itself fails if Redis does not
// answer.
//
// Key layout, under the configurable prefix P (default "skywatch:"):
//
//	P events                 stream; field e = event JSON. Offset = entry id.
//	P dedup:{device}/{id}    string = entry id, space, token of the write;
//	                         expires after the retention (30 days) or, for
//	                         a synthetic id, the window.
//	P idx:all                sorted set, all scores 0, ordered by member:
//	P idx:device:{device}    hex16(received unix ns) hex16(entry ms) hex16(entry seq)
//	P idx:area:{area}        then device NUL area NUL class, so that filters
//	P idx:class:{class}      not served by the index need no event fetch.
//	P rejected               stream; field r = rejected JSON (payload base64),
//	                         field d = device.
//	P rejected:device:{d}    the same entries again (field r), with the same
//	                         ids. Both are bounded: AddRejected drops the
//	                         oldest past its limits from both.
//	P devices                hash; device id -> state JSON.
//	P format                 hash; "alarms" -> FormatVersion (format.go).
//
// An event is stored by one Lua script (dedup check, XADD, index ZADDs,
// dedup key), so a crash or timeout leaves either all of it or nothing, and
// a retry of an event whose reply was lost finds it by its dedup key: go-redis's
// own retry (same token) as stored, a later call as a duplicate. The
// scripts touch keys they are given, but of different hash slots: Redis
// Cluster is not supported.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/redisconn"

	"github.com/skywatch/skywatch/alarms"
)

var _ alarms.Store = (*Store)(nil)

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("store is closed")

// Store is an alarms.Store in Redis.
type Store struct {
	rdb *redisconn.Client
	// blocking carries the reads that wait in Redis (XREAD BLOCK, BLPOP)
	// on a pool of its own, so that they never hold up the short commands
	// of the intake and the engine.
	blocking     *redisconn.Client
	cfg          Config
	scriptAppend *redis.Script
	scriptReject *redis.Script
	scriptSave   *redis.Script
	// Cluster mode's fenced writes.
	scriptSaveFenced    *redis.Script
	scriptPutUnitFenced *redis.Script
	// durability is read at Open; waitAOF sends WAITAOF after each event
	// (strict mode on Redis 7.2 and later).
	durability alarms.StoreDurability
	waitAOF    bool
	// migration is what Open migrated, nil if nothing.
	migration *Migration
}

// Open connects to Redis and checks that it answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	opts, err := cfg.options()
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	rdb, err := redisconn.Dial(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	blocking, err := redisconn.Dial(ctx, opts)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis store: %w", err)
	}
	s := &Store{
		rdb:                 rdb,
		blocking:            blocking,
		cfg:                 cfg,
		scriptAppend:        redis.NewScript(appendLua),
		scriptReject:        redis.NewScript(rejectLua),
		scriptSave:          redis.NewScript(saveLua),
		scriptSaveFenced:    redis.NewScript(saveFencedLua),
		scriptPutUnitFenced: redis.NewScript(putUnitFencedLua),
	}
	if err := s.setDurability(ctx); err != nil {
		_ = rdb.Close()
		_ = blocking.Close()
		return nil, fmt.Errorf("redis store: %w", err)
	}
	if err := s.checkFormat(ctx); err != nil {
		_ = rdb.Close()
		_ = blocking.Close()
		return nil, fmt.Errorf("redis store: key prefix %q: %w", cfg.KeyPrefix, err)
	}
	return s, nil
}

// Close closes the connections. It is idempotent.
func (s *Store) Close() error {
	berr := s.blocking.Close()
	if err := errors.Join(s.rdb.Close(), berr); err != nil {
		return fmt.Errorf("redis store: close: %w", err)
	}
	return nil
}

// check reports a cancelled context or a closed store before any work.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.rdb.Closed() {
		return ErrClosed
	}
	return nil
}

// key is a key under the prefix.
func (s *Store) key(parts ...string) string {
	return s.cfg.KeyPrefix + strings.Join(parts, "")
}

// Ping tells whether Redis answers now.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("redis store: ping: %w", err)
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis store: ping: %w", err)
	}
	return nil
}

// PutDevice saves a device's state.
func (s *Store) PutDevice(ctx context.Context, d alarms.DeviceState) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("redis store: put device %s: %w", d.ID, err)
	}
	data, err := json.Marshal(&d)
	if err != nil {
		return fmt.Errorf("redis store: put device %s: %w", d.ID, err)
	}
	if err := s.rdb.HSet(ctx, s.key("devices"), d.ID, data).Err(); err != nil {
		return fmt.Errorf("redis store: put device %s: %w", d.ID, err)
	}
	return nil
}

// Device returns a device's state or alarms.ErrNotFound.
func (s *Store) Device(ctx context.Context, id string) (alarms.DeviceState, error) {
	if err := s.check(ctx); err != nil {
		return alarms.DeviceState{}, fmt.Errorf("redis store: device %s: %w", id, err)
	}
	data, err := s.rdb.HGet(ctx, s.key("devices"), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return alarms.DeviceState{}, fmt.Errorf("redis store: device %s: %w", id, alarms.ErrNotFound)
	}
	if err != nil {
		return alarms.DeviceState{}, fmt.Errorf("redis store: device %s: %w", id, err)
	}
	var d alarms.DeviceState
	if err := json.Unmarshal(data, &d); err != nil {
		return alarms.DeviceState{}, fmt.Errorf("redis store: device %s: %w", id, err)
	}
	return d, nil
}

// Devices returns every device's state, by ID.
func (s *Store) Devices(ctx context.Context) ([]alarms.DeviceState, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("redis store: devices: %w", err)
	}
	all, err := s.rdb.HGetAll(ctx, s.key("devices")).Result()
	if err != nil {
		return nil, fmt.Errorf("redis store: devices: %w", err)
	}
	out := make([]alarms.DeviceState, 0, len(all))
	for id, data := range all {
		var d alarms.DeviceState
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			return nil, fmt.Errorf("redis store: devices: %s: %w", id, err)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b alarms.DeviceState) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
