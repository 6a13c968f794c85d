package accounts

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
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

// options turns the config into go-redis options.
func (c RedisConfig) options() (*redis.Options, error) {
	if c.URL == "" {
		return nil, errors.New("store.redis_url: required")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		// url.Parse quotes the whole URL, password included.
		return nil, errors.New("store.redis_url: not a valid URL")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, errors.New("store.redis_url: scheme must be redis or rediss")
	}
	opts, err := redis.ParseURL(c.URL)
	if err != nil {
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return nil, fmt.Errorf("store.redis_url: %s", msg)
	}
	if strings.ContainsAny(c.KeyPrefix, "*?[]\\ \t\r\n") {
		return nil, errors.New("store.redis_key_prefix: must not contain glob characters or spaces")
	}
	if c.Timeout < 0 {
		return nil, errors.New("store.redis_timeout: must not be negative")
	}
	// Fail fast while Redis is away, as the alarm store does: a login or
	// a page waits at most about the timeout.
	opts.DialTimeout = c.Timeout
	opts.ReadTimeout = c.Timeout
	opts.WriteTimeout = c.Timeout
	opts.PoolTimeout = c.Timeout + time.Second
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = 1
	opts.DialerRetries = 1
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opts, nil
}
