package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/redisconn"
)

// RedisStore keeps the audit log and the preferences in Redis, for several
// Skywatch nodes sharing one state. Keys, under the prefix P:
//
//	P audit   stream, never trimmed; field r = record JSON. Cursor = entry id.
//	P prefs   hash; lower-case user name -> preferences JSON.
//	P sessions    hash; session key -> session JSON.
//	P tokens      hash; lower-case token name -> token JSON (hashed).
//	P token_uses  hash; lower-case token name -> use count.
//	P token_last  hash; lower-case token name -> last use, Unix ms.
//	P format      hash; "records" -> RecordsFormatVersion (format.go).
//
// A record is stored when AppendAudit returns; for it to survive a crash of
// Redis too, run Redis with appendonly yes (see the alarm store). A write
// retried after a lost reply may store a record twice, never lose it.
//
// QueryAudit reads the stream backwards (XREVRANGE, 1000 entries a round
// trip when filtering) until the page is full; a query matching little
// reads the whole stream, at some 7 µs a record (BenchmarkRedisStoreScan):
// 7 seconds for a million records.
//
// A RedisStore is safe for concurrent use.
type RedisStore struct {
	rdb *redisconn.Client
	cfg RedisConfig
	// migration is what OpenRedisStore migrated, nil if nothing.
	migration *RecordsMigration
}

// OpenRedisStore connects to Redis and checks that it answers.
func OpenRedisStore(ctx context.Context, cfg RedisConfig) (*RedisStore, error) {
	cfg.setDefaults()
	opts, err := cfg.options()
	if err != nil {
		return nil, fmt.Errorf("accounts redis store: %w", err)
	}
	rdb, err := redisconn.Dial(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("accounts redis store: %w", err)
	}
	s := &RedisStore{rdb: rdb, cfg: cfg}
	if err := s.checkFormat(ctx); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("accounts redis store: key prefix %q: %w", cfg.KeyPrefix, err)
	}
	return s, nil
}

// Close closes the connections. It is idempotent.
func (s *RedisStore) Close() error {
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("accounts redis store: close: %w", err)
	}
	return nil
}

// check reports a cancelled context or a closed store before any work.
func (s *RedisStore) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.rdb.Closed() {
		return ErrClosed
	}
	return nil
}

func (s *RedisStore) auditStream() string { return s.cfg.KeyPrefix + "audit" }
func (s *RedisStore) prefsHash() string   { return s.cfg.KeyPrefix + "prefs" }

// AppendAudit adds a record to the log.
func (s *RedisStore) AppendAudit(ctx context.Context, r AuditRecord) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("accounts redis store: append audit: %w", err)
	}
	data, err := json.Marshal(r.prepare(time.Now()))
	if err != nil {
		return fmt.Errorf("accounts redis store: append audit: %w", err)
	}
	err = s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.auditStream(), Values: []any{"r", data}}).Err()
	if err != nil {
		return fmt.Errorf("accounts redis store: append audit: %w", err)
	}
	return nil
}

// validCursor tells whether c is a stream entry id (ms-seq) that Redis
// takes as the exclusive end of a range: not 0-0.
func validCursor(c string) bool {
	ms, seq, ok := strings.Cut(c, "-")
	if !ok {
		return false
	}
	m, err1 := strconv.ParseUint(ms, 10, 64)
	n, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil && m|n != 0
}

// QueryAudit returns a page of the records q selects, newest first. The
// cursor is the stream id of the previous page's last record.
func (s *RedisStore) QueryAudit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	page, err := s.queryAudit(ctx, q)
	if err != nil {
		return AuditPage{}, fmt.Errorf("accounts redis store: query audit: %w", err)
	}
	return page, nil
}

func (s *RedisStore) queryAudit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	if err := s.check(ctx); err != nil {
		return AuditPage{}, err
	}
	end := "+"
	if q.Cursor != "" {
		if !validCursor(q.Cursor) {
			return AuditPage{}, ErrBadCursor
		}
		end = "(" + q.Cursor
	}
	limit := q.limit()
	batch := int64(limit)
	if q.filtered() {
		batch = MaxAuditLimit
	}
	var page AuditPage
	for {
		msgs, err := s.rdb.XRevRangeN(ctx, s.auditStream(), end, "-", batch).Result()
		if err != nil {
			return AuditPage{}, err
		}
		for _, m := range msgs {
			data, _ := m.Values["r"].(string)
			var r AuditRecord
			if json.Unmarshal([]byte(data), &r) != nil || r.Time.IsZero() {
				continue // not written by AppendAudit
			}
			if !q.match(&r) {
				continue
			}
			page.Records = append(page.Records, r)
			if len(page.Records) == limit {
				page.Next = m.ID
				return page, nil
			}
		}
		if int64(len(msgs)) < batch {
			return page, nil
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
}

// Prefs returns a user's preferences, or nil when there are none.
func (s *RedisStore) Prefs(ctx context.Context, username string) (json.RawMessage, error) {
	key, err := prefsKey(username)
	if err == nil {
		err = s.check(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("accounts redis store: prefs of %q: %w", username, err)
	}
	data, err := s.rdb.HGet(ctx, s.prefsHash(), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accounts redis store: prefs of %q: %w", username, err)
	}
	return data, nil
}

// SetPrefs stores a user's preferences, a JSON object of at most
// MaxPrefsSize bytes.
func (s *RedisStore) SetPrefs(ctx context.Context, username string, prefs json.RawMessage) error {
	key, err := prefsKey(username)
	if err == nil {
		err = s.check(ctx)
	}
	if err == nil {
		prefs, err = checkPrefs(prefs)
	}
	if err == nil {
		err = s.rdb.HSet(ctx, s.prefsHash(), key, []byte(prefs)).Err()
	}
	if err != nil {
		return fmt.Errorf("accounts redis store: set prefs of %q: %w", username, err)
	}
	return nil
}
