package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The stores keep the tokens that admins make in the console (never the
// configured ones, which the config file holds), hashed, so that they
// survive a restart and, with Redis, are seen by every node.

const tokensFile = "tokens.json"

// fileTokens keeps the console's tokens in one JSON file beside the audit
// log, rewritten atomically on each change; their number is bounded by
// the server (http.max_tokens).
type fileTokens struct {
	dir string

	mu  sync.Mutex
	all map[string]Token // by tokenKey
}

func openFileTokens(dir string) (*fileTokens, error) {
	ft := &fileTokens{dir: dir, all: map[string]Token{}}
	data, err := os.ReadFile(filepath.Join(dir, tokensFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ft, nil
	case err != nil:
		return nil, err
	}
	// Unlike sessions, a token file that cannot be read stops the start:
	// starting afresh would silently drop the video walls' tokens.
	if err := json.Unmarshal(data, &ft.all); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, tokensFile), err)
	}
	return ft, nil
}

func (ft *fileTokens) write(all map[string]Token) error {
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(all); err != nil {
		return err
	}
	return writeFileAtomic(ft.dir, tokensFile, data.Bytes())
}

// SaveToken stores a new token; a name already stored (regardless of case)
// is ErrTokenExists.
func (s *FileStore) SaveToken(ctx context.Context, t Token) error {
	if err := s.saveToken(ctx, t); err != nil {
		return fmt.Errorf("accounts file store: save token %q: %w", t.Name, err)
	}
	return nil
}

func (s *FileStore) saveToken(ctx context.Context, t Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckToken(t); err != nil {
		return err
	}
	ft := s.tokens
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	key := tokenKey(t.Name)
	if _, ok := ft.all[key]; ok {
		return ErrTokenExists
	}
	all := maps.Clone(ft.all)
	all[key] = t
	if err := ft.write(all); err != nil {
		return err
	}
	ft.all = all
	return nil
}

// DeleteToken removes a token and says whether there was one.
func (s *FileStore) DeleteToken(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ft := s.tokens
	ft.mu.Lock()
	defer ft.mu.Unlock()
	key := tokenKey(name)
	if _, ok := ft.all[key]; !ok {
		return false, nil
	}
	if s.isClosed() {
		return false, fmt.Errorf("accounts file store: delete token: %w", ErrClosed)
	}
	all := maps.Clone(ft.all)
	delete(all, key)
	if err := ft.write(all); err != nil {
		return false, fmt.Errorf("accounts file store: delete token: %w", err)
	}
	ft.all = all
	return true, nil
}

// Tokens lists the stored tokens, by name.
func (s *FileStore) Tokens(ctx context.Context) ([]Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ft := s.tokens
	ft.mu.Lock()
	defer ft.mu.Unlock()
	out := slices.Collect(maps.Values(ft.all))
	sortTokens(out)
	return out, nil
}

// TouchToken adds uses to a stored token's count and moves its last use to
// at when later. A token no longer stored is left alone (no error): a use
// must not bring back a revoked token.
func (s *FileStore) TouchToken(ctx context.Context, name string, at time.Time, uses uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ft := s.tokens
	ft.mu.Lock()
	defer ft.mu.Unlock()
	key := tokenKey(name)
	t, ok := ft.all[key]
	if !ok {
		return nil
	}
	if s.isClosed() {
		return fmt.Errorf("accounts file store: touch token: %w", ErrClosed)
	}
	t.Uses += uses
	if at.After(t.LastUsed) {
		t.LastUsed = at.UTC().Round(0)
	}
	all := maps.Clone(ft.all)
	all[key] = t
	if err := ft.write(all); err != nil {
		return fmt.Errorf("accounts file store: touch token: %w", err)
	}
	ft.all = all
	return nil
}

func sortTokens(ts []Token) {
	slices.SortFunc(ts, func(a, b Token) int { return strings.Compare(tokenKey(a.Name), tokenKey(b.Name)) })
}

// Redis keys of the tokens: the tokens themselves, and their use (the
// count and the last use in Unix ms) in hashes of their own, so that a
// use written by one node never brings back a token another revoked.
func (s *RedisStore) tokensHash() string    { return s.cfg.KeyPrefix + "tokens" }
func (s *RedisStore) tokenUsesHash() string { return s.cfg.KeyPrefix + "token_uses" }
func (s *RedisStore) tokenLastHash() string { return s.cfg.KeyPrefix + "token_last" }

// SaveToken stores a new token; a name already stored (regardless of case)
// is ErrTokenExists.
func (s *RedisStore) SaveToken(ctx context.Context, t Token) error {
	err := s.check(ctx)
	if err == nil {
		err = CheckToken(t)
	}
	if err != nil {
		return fmt.Errorf("accounts redis store: save token %q: %w", t.Name, err)
	}
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("accounts redis store: save token %q: %w", t.Name, err)
	}
	key := tokenKey(t.Name)
	ok, err := s.rdb.HSetNX(ctx, s.tokensHash(), key, data).Result()
	if err != nil {
		return fmt.Errorf("accounts redis store: save token %q: %w", t.Name, err)
	}
	if !ok {
		return fmt.Errorf("accounts redis store: save token %q: %w", t.Name, ErrTokenExists)
	}
	// A new token starts its count afresh, whatever an old one of the same
	// name left (nobody holds the new token yet).
	if err := s.rdb.HDel(ctx, s.tokenUsesHash(), key).Err(); err != nil {
		return fmt.Errorf("accounts redis store: save token %q: %w", t.Name, err)
	}
	if err := s.rdb.HDel(ctx, s.tokenLastHash(), key).Err(); err != nil {
		return fmt.Errorf("accounts redis store: save token %q: %w", t.Name, err)
	}
	return nil
}

// DeleteToken removes a token and says whether there was one.
func (s *RedisStore) DeleteToken(ctx context.Context, name string) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, fmt.Errorf("accounts redis store: delete token: %w", err)
	}
	key := tokenKey(name)
	n, err := s.rdb.HDel(ctx, s.tokensHash(), key).Result()
	if err == nil {
		err = s.rdb.HDel(ctx, s.tokenUsesHash(), key).Err()
	}
	if err == nil {
		err = s.rdb.HDel(ctx, s.tokenLastHash(), key).Err()
	}
	if err != nil {
		return false, fmt.Errorf("accounts redis store: delete token: %w", err)
	}
	return n > 0, nil
}

// Tokens lists the stored tokens with their use, by name. An entry that
// does not decode is skipped.
func (s *RedisStore) Tokens(ctx context.Context) ([]Token, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("accounts redis store: tokens: %w", err)
	}
	var all, uses, last map[string]string
	var err error
	for _, h := range []struct {
		key string
		m   *map[string]string
	}{{s.tokensHash(), &all}, {s.tokenUsesHash(), &uses}, {s.tokenLastHash(), &last}} {
		if err == nil {
			*h.m, err = s.rdb.HGetAll(ctx, h.key).Result()
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("accounts redis store: tokens: %w", err)
	}
	out := make([]Token, 0, len(all))
	for k, v := range all {
		var t Token
		if json.Unmarshal([]byte(v), &t) != nil || t.Name == "" {
			continue
		}
		if n, err := strconv.ParseUint(uses[k], 10, 64); err == nil {
			t.Uses = n
		}
		if ms, err := strconv.ParseInt(last[k], 10, 64); err == nil && ms > 0 {
			t.LastUsed = time.UnixMilli(ms).UTC()
		}
		out = append(out, t)
	}
	sortTokens(out)
	return out, nil
}

// lastUseScript moves a token's last use forward only: several nodes write
// it, in any order.
var lastUseScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0`)

// TouchToken adds uses to a stored token's count and moves its last use to
// at when later. A token no longer stored is left alone (no error).
func (s *RedisStore) TouchToken(ctx context.Context, name string, at time.Time, uses uint64) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("accounts redis store: touch token: %w", err)
	}
	key := tokenKey(name)
	ok, err := s.rdb.HExists(ctx, s.tokensHash(), key).Result()
	if err != nil || !ok {
		if err != nil {
			return fmt.Errorf("accounts redis store: touch token: %w", err)
		}
		return nil
	}
	if uses > 0 {
		err = s.rdb.HIncrBy(ctx, s.tokenUsesHash(), key, int64(uses)).Err()
	}
	if err == nil {
		err = lastUseScript.Run(ctx, s.rdb, []string{s.tokenLastHash()}, key, at.UnixMilli()).Err()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("accounts redis store: touch token: %w", err)
	}
	return nil
}
