package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
	"github.com/skywatch/skywatch/alarms/redisstore"
)

// alarmStore is what both alarm stores provide: the intake's storage and
// the incident engine's.
type alarmStore interface {
	alarms.Store
	alarms.IncidentStore
}

// openStore opens the alarm store. Redis that cannot be reached at start is
// retried with backoff (1 s doubling to 30 s) until ctx ends, saying why
// each time, so that Skywatch started before Redis comes up by itself.
func openStore(ctx context.Context, s storeSettings, logger *slog.Logger) (alarmStore, error) {
	if s.redis.URL == "" {
		st, err := boltstore.Open(s.path)
		if err != nil {
			return nil, fmt.Errorf("store.path: %w", err)
		}
		if m := st.Migration(); m != nil {
			logger.Warn("alarm store: migrated the file to a new format",
				"path", s.path, "from", m.From, "to", m.To, "took", m.Took,
				"events", m.Events, "dedup_keys", m.DedupKeys, "rejected", m.Rejected, "devices", m.Devices,
				"incidents", m.Incidents, "open_incidents", m.OpenIncidents, "units", m.Units,
				"undecodable", m.Undecodable, "rebuilt", m.Rebuilt,
				"backup", m.Backup, "backup_bytes", m.BackupBytes)
		}
		logger.Info("alarm store: embedded file", "path", s.path, "format", boltstore.FormatVersion)
		return st, nil
	}
	backoff := time.Second
	for {
		st, err := redisstore.Open(ctx, s.redis)
		if err == nil {
			if m := st.Migration(); m != nil {
				logger.Warn("alarm store: stamped the keys with a new format", "key_prefix", s.redis.KeyPrefix, "from", m.From, "to", m.To)
			}
			logger.Info("alarm store: redis", "key_prefix", s.redis.KeyPrefix, "format", redisstore.FormatVersion, "durability", st.Durability().Summary)
			return st, nil
		}
		if errors.Is(err, redisstore.ErrDurability) {
			// Redis answers, but its settings must change first.
			return nil, err
		}
		if errors.Is(err, redisstore.ErrNewerFormat) {
			// Waiting would not help: this binary is too old.
			return nil, fmt.Errorf("store.redis_url: %w", err)
		}
		logger.Warn("alarm store: redis unavailable, retrying", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("store.redis_url: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// openRecords opens the audit log and preference store: in Redis beside
// the alarm store when it is Redis, else files in their own directory.
func openRecords(ctx context.Context, s storeSettings, logger *slog.Logger) (records, error) {
	if s.redis.URL == "" {
		r, err := accounts.OpenFileStore(s.records)
		if err != nil {
			return nil, fmt.Errorf("store.records_dir: %w", err)
		}
		if m := r.Migration(); m != nil {
			logger.Warn("records: migrated the directory to a new format", "dir", s.records, "from", m.From, "to", m.To, "took", m.Took,
				"audit_bytes", m.AuditBytes, "audit_lines", m.AuditLines, "prefs", m.Prefs, "sessions", m.Sessions, "tokens", m.Tokens)
		}
		return r, nil
	}
	r, err := accounts.OpenRedisStore(ctx, accounts.RedisConfig{URL: s.redis.URL, KeyPrefix: s.redis.KeyPrefix, Timeout: s.redis.Timeout})
	if err != nil {
		return nil, fmt.Errorf("store.redis_url: audit records: %w", err)
	}
	if m := r.Migration(); m != nil {
		logger.Warn("records: stamped the keys with a new format", "key_prefix", s.redis.KeyPrefix, "from", m.From, "to", m.To)
	}
	return r, nil
}
