package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// LoginBucket is a token bucket of login attempts that several nodes
// share: Burst attempts at once, then one more every Every. Name says
// whose attempts it counts (the caller's encoding; at most a few hundred
// bytes).
type LoginBucket struct {
	Name  string
	Burst float64
	Every time.Duration
}

// LoginLock is a bucket that refuses attempts until Until.
type LoginLock struct {
	Name  string
	Until time.Time
}

// MaxLoginLocks bounds the list of locked buckets that the Redis store
// keeps for LoginLocks; past it the locks that end first are forgotten by
// the list (the buckets themselves still refuse until they refill).
const MaxLoginLocks = 10000

// knownAddrTTL is how long an account's known addresses are kept after
// its last login from any of them.
const knownAddrTTL = 90 * 24 * time.Hour

// Keys of the shared login limits, under the prefix P:
//
//	P login:bucket:{name}    hash t (tokens, float), l (last refill, Unix ms); expires when full
//	P login:locked           sorted set; bucket name, score = Unix ms when it holds a token again
//	P login:known:{account}  sorted set; address, score = Unix ms of its last login
func (s *RedisStore) loginBucketKey(name string) string {
	return s.cfg.KeyPrefix + "login:bucket:" + name
}
func (s *RedisStore) loginLockedKey() string { return s.cfg.KeyPrefix + "login:locked" }
func (s *RedisStore) loginKnownKey(account string) string {
	return s.cfg.KeyPrefix + "login:known:" + account
}

// takeScript takes one token from every bucket when each holds one, else
// none; it answers {0, 0} or {index of the first empty bucket (1-based),
// ms until it holds a token}. KEYS: the buckets, then the locked set.
// ARGV: now (ms), the locked set's bound, then each bucket's burst, refill
// interval (ms) and name. A bucket left below one token is entered in the
// locked set; a full one expires.
var takeScript = redis.NewScript(`
local n = #KEYS - 1
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local toks = {}
for i = 1, n do
  local burst = tonumber(ARGV[3*i])
  local every = tonumber(ARGV[3*i+1])
  local h = redis.call('HMGET', KEYS[i], 't', 'l')
  local t = burst
  if h[1] then
    t = tonumber(h[1])
    local l = tonumber(h[2])
    if now > l then t = math.min(burst, t + (now - l) / every) end
  end
  toks[i] = t
  if t < 1 then return {i, math.ceil((1 - t) * every)} end
end
for i = 1, n do
  local burst = tonumber(ARGV[3*i])
  local every = tonumber(ARGV[3*i+1])
  local t = toks[i] - 1
  redis.call('HSET', KEYS[i], 't', string.format('%.6f', t), 'l', now)
  redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil((burst - t) * every)))
  if t < 1 then
    redis.call('ZADD', KEYS[n+1], now + math.ceil((1 - t) * every), ARGV[3*i+2])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[n+1], '-inf', now)
local over = redis.call('ZCARD', KEYS[n+1]) - cap
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[n+1], 0, over - 1) end
return {0, 0}
`)

// TakeLogin counts a login attempt against buckets, atomically for every
// node: when each bucket holds a token it takes one of each and returns
// -1; else it takes none and returns the index of the first empty bucket
// and how long until it holds a token again. now is the caller's clock
// (the nodes' clocks are expected to agree within a second or so).
func (s *RedisStore) TakeLogin(ctx context.Context, buckets []LoginBucket, now time.Time) (refused int, wait time.Duration, err error) {
	if err := s.check(ctx); err != nil {
		return -1, 0, fmt.Errorf("accounts redis store: take login: %w", err)
	}
	if len(buckets) == 0 {
		return -1, 0, nil
	}
	keys := make([]string, 0, len(buckets)+1)
	args := []any{now.UnixMilli(), MaxLoginLocks}
	for _, b := range buckets {
		if b.Burst < 1 || b.Every <= 0 || b.Name == "" {
			return -1, 0, fmt.Errorf("accounts redis store: take login: bucket %q: burst below 1 or no interval", b.Name)
		}
		keys = append(keys, s.loginBucketKey(b.Name))
		args = append(args, b.Burst, b.Every.Milliseconds(), b.Name)
	}
	keys = append(keys, s.loginLockedKey())
	res, err := takeScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return -1, 0, fmt.Errorf("accounts redis store: take login: %w", err)
	}
	if len(res) != 2 {
		return -1, 0, errors.New("accounts redis store: take login: unexpected answer")
	}
	if res[0] == 0 {
		return -1, 0, nil
	}
	return int(res[0]) - 1, time.Duration(res[1]) * time.Millisecond, nil
}

// LoginLocks lists the buckets that refuse attempts at now, at most max,
// those whose lock ends first first.
func (s *RedisStore) LoginLocks(ctx context.Context, now time.Time, max int) ([]LoginLock, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("accounts redis store: login locks: %w", err)
	}
	zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: s.loginLockedKey(), ByScore: true,
		Start: "(" + strconv.FormatInt(now.UnixMilli(), 10), Stop: "+inf", Count: int64(max)}).Result()
	if err != nil {
		return nil, fmt.Errorf("accounts redis store: login locks: %w", err)
	}
	out := make([]LoginLock, 0, len(zs))
	for _, z := range zs {
		name, _ := z.Member.(string)
		out = append(out, LoginLock{Name: name, Until: time.UnixMilli(int64(z.Score))})
	}
	return out, nil
}

// ResetLogin deletes buckets (a full bucket again) by name: those named,
// and those of the locked list for which match says so (match may be nil).
// It returns how many buckets it deleted.
func (s *RedisStore) ResetLogin(ctx context.Context, names []string, match func(name string) bool) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("accounts redis store: reset login: %w", err)
	}
	all := append([]string(nil), names...)
	if match != nil {
		locked, err := s.rdb.ZRange(ctx, s.loginLockedKey(), 0, -1).Result()
		if err != nil {
			return 0, fmt.Errorf("accounts redis store: reset login: %w", err)
		}
		for _, n := range locked {
			if match(n) {
				all = append(all, n)
			}
		}
	}
	if len(all) == 0 {
		return 0, nil
	}
	seen := map[string]bool{}
	pipe := s.rdb.TxPipeline()
	var dels []*redis.IntCmd
	members := make([]any, 0, len(all))
	for _, n := range all {
		if seen[n] {
			continue
		}
		seen[n] = true
		dels = append(dels, pipe.Del(ctx, s.loginBucketKey(n)))
		members = append(members, n)
	}
	pipe.ZRem(ctx, s.loginLockedKey(), members...)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("accounts redis store: reset login: %w", err)
	}
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, nil
}

// KnowLoginAddr remembers addr as one that account logged in from,
// keeping the newest max.
func (s *RedisStore) KnowLoginAddr(ctx context.Context, account, addr string, max int, now time.Time) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("accounts redis store: know login address: %w", err)
	}
	key := s.loginKnownKey(account)
	pipe := s.rdb.TxPipeline()
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(now.UnixMilli()), Member: addr})
	pipe.ZRemRangeByRank(ctx, key, 0, int64(-max-1))
	pipe.Expire(ctx, key, knownAddrTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("accounts redis store: know login address: %w", err)
	}
	return nil
}

// KnownLoginAddr says whether account logged in from addr lately.
func (s *RedisStore) KnownLoginAddr(ctx context.Context, account, addr string) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, fmt.Errorf("accounts redis store: known login address: %w", err)
	}
	err := s.rdb.ZScore(ctx, s.loginKnownKey(account), addr).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("accounts redis store: known login address: %w", err)
	}
	return true, nil
}

// Session returns the stored session under key; false when there is none
// (or it does not decode).
func (s *RedisStore) Session(ctx context.Context, key string) (Session, bool, error) {
	if err := s.check(ctx); err != nil {
		return Session{}, false, fmt.Errorf("accounts redis store: session: %w", err)
	}
	data, err := s.rdb.HGet(ctx, s.sessionsHash(), key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return Session{}, false, nil
	case err != nil:
		return Session{}, false, fmt.Errorf("accounts redis store: session: %w", err)
	}
	var sess Session
	if json.Unmarshal(data, &sess) != nil || sess.Key != key {
		return Session{}, false, nil
	}
	return sess, true, nil
}

// The patrol page's sessions, for every node: P patrol:session:{key} =
// the caller's JSON, expiring with the session.
func (s *RedisStore) patrolSessionKey(key string) string {
	return s.cfg.KeyPrefix + "patrol:session:" + key
}

// SavePatrolSession stores a patrol page session under key (a hash of its
// cookie's token) until ttl has passed.
func (s *RedisStore) SavePatrolSession(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("accounts redis store: save patrol session: %w", err)
	}
	if err := s.rdb.Set(ctx, s.patrolSessionKey(key), data, ttl).Err(); err != nil {
		return fmt.Errorf("accounts redis store: save patrol session: %w", err)
	}
	return nil
}

// PatrolSession returns the patrol page session under key; false when
// there is none (or it has expired).
func (s *RedisStore) PatrolSession(ctx context.Context, key string) ([]byte, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, false, fmt.Errorf("accounts redis store: patrol session: %w", err)
	}
	data, err := s.rdb.Get(ctx, s.patrolSessionKey(key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("accounts redis store: patrol session: %w", err)
	}
	return data, true, nil
}

// DeletePatrolSession removes a patrol page session; an unknown key is no
// error.
func (s *RedisStore) DeletePatrolSession(ctx context.Context, key string) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("accounts redis store: delete patrol session: %w", err)
	}
	if err := s.rdb.Del(ctx, s.patrolSessionKey(key)).Err(); err != nil {
		return fmt.Errorf("accounts redis store: delete patrol session: %w", err)
	}
	return nil
}
