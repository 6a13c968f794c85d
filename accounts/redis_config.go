package accounts

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/redisconn"
)

// RedisConfig says where a RedisStore is.
type RedisConfig struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS.
	URL string
	// KeyPrefix is put before every key. It defaults to "skywatch:", the
	// alarm store's default, so that one Redis holds both.
	KeyPrefix string
	// Timeout bounds each dial, read and write. It defaults to 2 seconds.
	Timeout time.Duration
}

// Defaults of RedisConfig.
const (
	DefaultKeyPrefix    = "skywatch:"
	DefaultRedisTimeout = 2 * time.Second
)

func (c *RedisConfig) setDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultRedisTimeout
	}
}

// Validate checks the config as OpenRedisStore would use it. Its messages
// name the config key (store.redis_url, as the alarm store's) and never
// contain the URL's password.
func (c RedisConfig) Validate() error {
	c.setDefaults()
	_, err := c.options()
	return err
}

// options turns the config into go-redis options that fail fast while
// Redis is away, as the alarm store's do: a login or a page waits at most
// about the timeout.
func (c RedisConfig) options() (*redis.Options, error) {
	return redisconn.Options(c.URL, c.KeyPrefix, c.Timeout)
}
