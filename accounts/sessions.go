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
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Session is a console login kept across restarts, so that a restart does
// not log out a duty console in the middle of the night. Key identifies
// it: a hash of the cookie's token, never the token itself, so that the
// store holds nothing a browser could present.
//
// Fingerprint is the user's User.Fingerprint when the session started: a
// session whose user's password, role or area has changed since is ended.
type Session struct {
	Key         string    `json:"key"`
	Username    string    `json:"username"`
	Addr        string    `json:"addr"`
	Created     time.Time `json:"created"`
	LastSeen    time.Time `json:"last_seen"`
	Fingerprint string    `json:"fingerprint,omitempty"`
}

const sessionsFile = "sessions.json"

// fileSessions keeps sessions in one JSON file beside the audit log,
// rewritten atomically on each change; a county has at most a few hundred
// operators.
type fileSessions struct {
	dir string

	mu  sync.Mutex
	all map[string]Session
}

func openFileSessions(dir string) (*fileSessions, error) {
	fs := &fileSessions{dir: dir, all: map[string]Session{}}
	data, err := os.ReadFile(filepath.Join(dir, sessionsFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fs, nil
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal(data, &fs.all); err != nil {
		// A session file that cannot be read costs a login, not the
		// server: start afresh.
		fs.all = map[string]Session{}
	}
	return fs, nil
}

func (fs *fileSessions) write(all map[string]Session) error {
	var data bytes.Buffer
	if err := json.NewEncoder(&data).Encode(all); err != nil {
		return err
	}
	return writeFileAtomic(fs.dir, sessionsFile, data.Bytes())
}

// SaveSession stores or replaces a session.
func (s *FileStore) SaveSession(ctx context.Context, sess Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sess.Key == "" {
		return errors.New("accounts file store: save session: empty key")
	}
	fs := s.sessions
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if s.isClosed() {
		return fmt.Errorf("accounts file store: save session: %w", ErrClosed)
	}
	all := maps.Clone(fs.all)
	all[sess.Key] = sess
	if err := fs.write(all); err != nil {
		return fmt.Errorf("accounts file store: save session: %w", err)
	}
	fs.all = all
	return nil
}

// DeleteSession removes a session; an unknown key is no error.
func (s *FileStore) DeleteSession(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fs := s.sessions
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, ok := fs.all[key]; !ok {
		return nil
	}
	if s.isClosed() {
		return fmt.Errorf("accounts file store: delete session: %w", ErrClosed)
	}
	all := maps.Clone(fs.all)
	delete(all, key)
	if err := fs.write(all); err != nil {
		return fmt.Errorf("accounts file store: delete session: %w", err)
	}
	fs.all = all
	return nil
}

// Sessions lists the stored sessions, by key.
func (s *FileStore) Sessions(ctx context.Context) ([]Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fs := s.sessions
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := slices.Collect(maps.Values(fs.all))
	slices.SortFunc(out, func(a, b Session) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (s *RedisStore) sessionsHash() string { return s.cfg.KeyPrefix + "sessions" }

// SaveSession stores or replaces a session.
func (s *RedisStore) SaveSession(ctx context.Context, sess Session) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("accounts redis store: save session: %w", err)
	}
	if sess.Key == "" {
		return errors.New("accounts redis store: save session: empty key")
	}
	data, err := json.Marshal(sess)
	if err == nil {
		err = s.rdb.HSet(ctx, s.sessionsHash(), sess.Key, data).Err()
	}
	if err != nil {
		return fmt.Errorf("accounts redis store: save session: %w", err)
	}
	return nil
}

// DeleteSession removes a session; an unknown key is no error.
func (s *RedisStore) DeleteSession(ctx context.Context, key string) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("accounts redis store: delete session: %w", err)
	}
	if err := s.rdb.HDel(ctx, s.sessionsHash(), key).Err(); err != nil {
		return fmt.Errorf("accounts redis store: delete session: %w", err)
	}
	return nil
}

// Sessions lists the stored sessions, by key. An entry that does not
// decode is skipped.
func (s *RedisStore) Sessions(ctx context.Context) ([]Session, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("accounts redis store: sessions: %w", err)
	}
	m, err := s.rdb.HGetAll(ctx, s.sessionsHash()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("accounts redis store: sessions: %w", err)
	}
	out := make([]Session, 0, len(m))
	for _, v := range m {
		var sess Session
		if json.Unmarshal([]byte(v), &sess) == nil && sess.Key != "" {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b Session) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
