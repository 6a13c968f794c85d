package redisstore

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/redisconn"
)

// Config says where the store is.
type Config struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS.
	URL string
	// KeyPrefix is put before every key. It defaults to "skywatch:".
	KeyPrefix string
	// Timeout bounds each dial, read and write. It defaults to 2 seconds.
	Timeout time.Duration
	// DedupRetention is how long a device's event id is remembered for
	// deduplication. It defaults to 30 days.
	DedupRetention time.Duration
	// Durability is "normal" (the default: warn about what Redis's
	// settings can lose) or "strict" (acknowledge an event only once it is
	// on Redis's disk; see DurabilityStrict).
	Durability string
	// EngineCommandsMax bounds the engine's command stream in cluster mode
	// (about; requests to the leader, trimmed oldest first). It defaults to
	// 10,000.
	EngineCommandsMax int64
	// EngineFeedMax bounds the engine's feed in cluster mode (about; the
	// changes and unit messages every node reads). It defaults to 10,000.
	EngineFeedMax int64
}

// Defaults.
const (
	DefaultKeyPrefix         = "skywatch:"
	DefaultTimeout           = 2 * time.Second
	DefaultDedupRetention    = 30 * 24 * time.Hour
	DefaultEngineCommandsMax = 10000
	DefaultEngineFeedMax     = 2000
)

func (c *Config) setDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.DedupRetention == 0 {
		c.DedupRetention = DefaultDedupRetention
	}
	if c.Durability == "" {
		c.Durability = DurabilityNormal
	}
	if c.EngineCommandsMax <= 0 {
		c.EngineCommandsMax = DefaultEngineCommandsMax
	}
	if c.EngineFeedMax <= 0 {
		c.EngineFeedMax = DefaultEngineFeedMax
	}
}

// Validate checks the config as Open would use it (after defaults). Its
// messages name the config key and never contain the URL's password.
func (c Config) Validate() error {
	c.setDefaults()
	_, err := c.options()
	return err
}

// options turns the config into go-redis options.
func (c Config) options() (*redis.Options, error) {
	opts, err := redisconn.Options(c.URL, c.KeyPrefix, c.Timeout)
	if err != nil {
		return nil, err
	}
	if c.DedupRetention < time.Second {
		return nil, errors.New("store.dedup_retention: must be at least 1s")
	}
	if c.Durability != DurabilityNormal && c.Durability != DurabilityStrict {
		return nil, errors.New("store.redis_durability: must be normal or strict")
	}
	return opts, nil
}
