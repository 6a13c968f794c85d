package redisstore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
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
}

// Defaults.
const (
	DefaultKeyPrefix      = "skywatch:"
	DefaultTimeout        = 2 * time.Second
	DefaultDedupRetention = 30 * 24 * time.Hour
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
	if c.DedupRetention < time.Second {
		return nil, errors.New("store.dedup_retention: must be at least 1s")
	}
	// Fail fast while Redis is away: the intake must stop acknowledging
	// promptly, and retry itself.
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
