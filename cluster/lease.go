package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fence is one term of a lease. A write fenced by it must check, in the
// same Lua script or MULTI as the write, that GET Key still returns Value;
// tokens of one lease strictly increase from term to term.
type Fence struct {
	// Key is the full Redis key of the lease.
	Key string
	// Value is "{node}/{token}".
	Value string
	// Token is the term's fencing token.
	Token int64
}

// acquireLua takes a free lease: a new token from the counter, and the
// value "{node}/{token}" with the TTL. 0 when the lease is held.
// KEYS: lease, token counter. ARGV: node, TTL in ms.
const acquireLua = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '/' .. t, 'PX', ARGV[2])
return t`

// renewLua extends a lease still held with the value. KEYS: lease.
// ARGV: value, TTL in ms.
const renewLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

// releaseLua deletes a key still holding the value. KEYS: key. ARGV: value.
const releaseLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

var (
	acquireScript = redis.NewScript(acquireLua)
	renewScript   = redis.NewScript(renewLua)
	releaseScript = redis.NewScript(releaseLua)
)

// LeaseKey returns the full Redis key of the lease name (the Key of its
// fences).
func (c *Cluster) LeaseKey(name string) string { return c.prefix + "lease:" + name }

// Lead blocks until ctx ends or the cluster closes. Whenever the lease name
// is free it takes it (trying every Failover/4) and runs fn with the term's
// fence and a ctx that is cancelled as soon as the lease is lost: renewal
// found it held by another, or could not renew it for Failover minus one
// renew interval, which is before it can expire in Redis. The lease is
// renewed every Failover/4 and released when fn returns. fn may be called
// many times over a node's life, never twice at once by one Lead call; it
// must return soon after its ctx is cancelled.
func (c *Cluster) Lead(ctx context.Context, name string, fn func(ctx context.Context, f Fence)) {
	if err := validateLeaseName(name); err != nil {
		c.logger.Error("cluster: lead", "error", err)
		return
	}
	if !c.enter() {
		return
	}
	defer c.wg.Done()
	c.metrics.lead(name)
	ctx, cancel := c.bind(ctx)
	defer cancel()
	key := c.LeaseKey(name)
	first := true
	for {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.interval):
			}
		}
		first = false
		if ctx.Err() != nil {
			return
		}
		sent := time.Now()
		actx, acancel := context.WithTimeout(ctx, min(c.timeout, c.interval))
		token, err := acquireScript.Run(actx, c.rdb, []string{key, key + ":token"}, c.cfg.Node, c.cfg.Failover.Milliseconds()).Int64()
		acancel()
		if err != nil {
			if ctx.Err() == nil {
				c.redisFailed("lease "+name, err)
			}
			continue
		}
		c.redisOK()
		if token == 0 {
			continue
		}
		c.term(ctx, name, Fence{Key: key, Value: c.cfg.Node + "/" + strconv.FormatInt(token, 10), Token: token}, sent, fn)
	}
}

// term runs fn for one term of the lease taken at acquired (when the
// command was sent) and renews it until fn returns, ctx ends or the lease is
// lost.
func (c *Cluster) term(ctx context.Context, name string, f Fence, acquired time.Time, fn func(context.Context, Fence)) {
	c.mu.Lock()
	c.leases[name] = f.Token
	c.mu.Unlock()
	c.metrics.acquired(name)
	c.logger.Info("cluster: lease taken", "lease", name, "token", f.Token)

	termCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(termCtx, f)
	}()

	// The lease expires in Redis no sooner than Failover after a renewal
	// was sent; giving up one interval earlier leaves fn that long to stop.
	deadline := acquired.Add(c.cfg.Failover - c.interval)
	lostTimer := time.NewTimer(time.Until(deadline))
	defer lostTimer.Stop()
	renew := time.NewTicker(c.interval)
	defer renew.Stop()
	var lost string // why the lease was lost, "" while held
	takenByOther := false
loop:
	for {
		select {
		case <-done:
			break loop
		case <-termCtx.Done():
			break loop
		case <-lostTimer.C:
			lost = "not renewed in time"
			break loop
		case <-renew.C:
			sent := time.Now()
			rctx, rcancel := context.WithDeadline(termCtx, deadline)
			ok, err := renewScript.Run(rctx, c.rdb, []string{f.Key}, f.Value, c.cfg.Failover.Milliseconds()).Int64()
			rcancel()
			if err != nil {
				if termCtx.Err() == nil {
					c.redisFailed("lease "+name, err)
				}
				continue
			}
			c.redisOK()
			if ok != 1 {
				lost, takenByOther = "held by another node or expired", true
				break loop
			}
			deadline = sent.Add(c.cfg.Failover - c.interval)
			lostTimer.Reset(time.Until(deadline))
		}
	}
	cancel()
	<-done

	c.mu.Lock()
	delete(c.leases, name)
	c.mu.Unlock()
	if lost != "" {
		c.metrics.lost(name)
		c.logger.Warn("cluster: lease lost", "lease", name, "token", f.Token, "why", lost)
	}
	if takenByOther {
		return
	}
	// Release so that another node takes over at once. After a timed-out
	// renewal the lease may still be ours in Redis: releasing it is safe,
	// as fn has returned.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer rcancel()
	if err := releaseScript.Run(rctx, c.rdb, []string{f.Key}, f.Value).Err(); err != nil {
		c.logger.Debug("cluster: release lease", "lease", name, "error", err)
		return
	}
	if lost == "" {
		c.logger.Info("cluster: lease released", "lease", name, "token", f.Token)
	}
}

// LeaseHolder says who holds the lease name, with its token and when it
// expires; node is "" when the lease is free.
func (c *Cluster) LeaseHolder(ctx context.Context, name string) (node string, token int64, expires time.Time, err error) {
	if err := validateLeaseName(name); err != nil {
		return "", 0, time.Time{}, err
	}
	key := c.LeaseKey(name)
	pipe := c.rdb.Pipeline()
	get := pipe.Get(ctx, key)
	ttl := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", 0, time.Time{}, fmt.Errorf("cluster: read lease %s: %w", name, err)
	}
	v, err := get.Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, time.Time{}, nil
	}
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("cluster: read lease %s: %w", name, err)
	}
	node, token, err = parseLeaseValue(v)
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("cluster: lease %s: %w", name, err)
	}
	if d := ttl.Val(); d > 0 {
		expires = time.Now().Add(d)
	}
	return node, token, expires, nil
}

// parseLeaseValue splits "{node}/{token}".
func parseLeaseValue(v string) (string, int64, error) {
	i := strings.LastIndexByte(v, '/')
	if i < 0 {
		return "", 0, fmt.Errorf("value %q is not node/token", v)
	}
	t, err := strconv.ParseInt(v[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("value %q is not node/token", v)
	}
	return v[:i], t, nil
}
