// Package redisconn turns the store's Redis settings into a go-redis client
// that fails fast, for the packages that keep state in Redis (the alarm
// store and the operators' records). Error messages name the config keys
// (store.redis_url, ...) and never contain the URL's password.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultPoolSize is the connections a client may open when
// store.redis_url does not say (its pool_size parameter).
const DefaultPoolSize = 128

// Options checks a Redis URL, key prefix and timeout and returns client
// options in which every dial, read and write gives up after timeout: while
// Redis is away, callers must learn it promptly and retry by themselves.
func Options(rawURL, keyPrefix string, timeout time.Duration) (*redis.Options, error) {
	if rawURL == "" {
		return nil, errors.New("store.redis_url: required")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse quotes the whole URL, password included.
		return nil, errors.New("store.redis_url: not a valid URL")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, errors.New("store.redis_url: scheme must be redis or rediss")
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return nil, fmt.Errorf("store.redis_url: %s", msg)
	}
	if strings.ContainsAny(keyPrefix, "*?[]\\ \t\r\n") {
		return nil, errors.New("store.redis_key_prefix: must not contain glob characters or spaces")
	}
	if timeout < 0 {
		return nil, errors.New("store.redis_timeout: must not be negative")
	}
	if u.Query().Get("pool_size") == "" {
		// go-redis's default (10 per CPU) is below what one node asks of
		// Redis at once: up to 64 alarm messages stored concurrently,
		// the engine, the cluster's heartbeat and the API. Waiting for a
		// connection stalls them all (offer timeouts fired seconds late).
		opts.PoolSize = DefaultPoolSize
	}
	opts.DialTimeout = timeout
	opts.ReadTimeout = timeout
	opts.WriteTimeout = timeout
	opts.PoolTimeout = timeout + time.Second
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = 1
	opts.DialerRetries = 1
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opts, nil
}

// Client is a go-redis client whose Close is idempotent and which says
// whether it was closed, so that a store can refuse work after its Close
// with an error of its own.
type Client struct {
	*redis.Client
	closed atomic.Bool
}

// Close closes the connections the first time; later calls do nothing.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.Client.Close()
}

// Closed reports whether Close was called.
func (c *Client) Closed() bool { return c.closed.Load() }

// Dial makes a client and checks that Redis answers; on failure the client
// is closed.
func Dial(ctx context.Context, opts *redis.Options) (*Client, error) {
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("open %s: %w", opts.Addr, err)
	}
	return &Client{Client: rdb}, nil
}
