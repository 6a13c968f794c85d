package alarms

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// verifiedCache remembers the passwords that passed a bcrypt check, as
// HMAC-SHA256 under a secret key of user name, password and the configured
// hash: a changed hash in the config no longer matches, and the cache
// holds no password. Kept in a file, it spares a restart the bcrypt checks
// of every device (tens of milliseconds of CPU each). It is a small locked
// API.
type verifiedCache struct {
	mu      sync.Mutex
	key     []byte
	entries map[string][sha256.Size]byte // by user name
	dirty   bool
	path    string // the file, once opened
}

func newVerifiedCache() *verifiedCache {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &verifiedCache{key: key, entries: map[string][sha256.Size]byte{}}
}

// sum is the keyed hash of a user name, password and configured hash.
func (v *verifiedCache) sum(user string, password, hash []byte) [sha256.Size]byte {
	v.mu.Lock()
	m := hmac.New(sha256.New, v.key)
	v.mu.Unlock()
	for _, part := range [][]byte{[]byte(user), password, hash} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		m.Write(n[:])
		m.Write(part)
	}
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

func (v *verifiedCache) has(user string, sum [sha256.Size]byte) bool {
	v.mu.Lock()
	e, ok := v.entries[user]
	v.mu.Unlock()
	return ok && hmac.Equal(e[:], sum[:])
}

func (v *verifiedCache) put(user string, sum [sha256.Size]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.entries[user] = sum
	v.dirty = true
}

// forget drops the entries of users.
func (v *verifiedCache) forget(users []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, u := range users {
		if _, ok := v.entries[u]; ok {
			delete(v.entries, u)
			v.dirty = true
		}
	}
}

// cacheFile is the file's content.
type cacheFile struct {
	Version int               `json:"version"`
	Entries map[string]string `json:"entries"` // user name -> hex HMAC
}

// open takes the key (from the environment's hex key, or the key file,
// created when missing) and loads the entries of the users in known from
// the cache file, if any. Entries kept under another key never match.
func (v *verifiedCache) open(cfg AuthConfig, known func(string) bool) error {
	key, err := cacheKey(cfg)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(cfg.CacheFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mqtt.auth.cache_file: %w", err)
	}
	var f cacheFile
	if len(data) > 0 {
		if err := json.Unmarshal(data, &f); err != nil {
			// A damaged cache costs bcrypt checks, nothing else.
			f = cacheFile{}
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.key = key
	v.path = cfg.CacheFile
	v.entries = map[string][sha256.Size]byte{}
	for user, h := range f.Entries {
		var sum [sha256.Size]byte
		if b, err := hex.DecodeString(h); err == nil && len(b) == len(sum) && known(user) {
			copy(sum[:], b)
			v.entries[user] = sum
		}
	}
	return nil
}

// save writes the entries to the opened file (through a temporary file and
// a rename, mode 0600) if they changed since the last save.
func (v *verifiedCache) save() error {
	v.mu.Lock()
	path := v.path
	if !v.dirty || path == "" {
		v.mu.Unlock()
		return nil
	}
	f := cacheFile{Version: 1, Entries: make(map[string]string, len(v.entries))}
	for user, sum := range v.entries {
		f.Entries[user] = hex.EncodeToString(sum[:])
	}
	v.dirty = false
	v.mu.Unlock()
	data, err := json.Marshal(f)
	if err == nil {
		err = writeFileAtomic(path, data)
	}
	if err != nil {
		v.mu.Lock()
		v.dirty = true
		v.mu.Unlock()
		return fmt.Errorf("mqtt.auth.cache_file: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// cacheKey returns the key from cfg.CacheKey (hex), or from the key file,
// which it creates with a random key (mode 0600) when missing.
func cacheKey(cfg AuthConfig) ([]byte, error) {
	if cfg.CacheKey != "" {
		return hex.DecodeString(cfg.CacheKey)
	}
	data, err := os.ReadFile(cfg.CacheKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		f, err := os.OpenFile(cfg.CacheKeyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("mqtt.auth.cache_key_file: %w", err)
		}
		_, err = f.WriteString(hex.EncodeToString(key) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("mqtt.auth.cache_key_file: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mqtt.auth.cache_key_file: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if !validKeyHex(s) {
		return nil, errors.New("mqtt.auth.cache_key_file: must hold 64 hex digits")
	}
	return hex.DecodeString(s)
}

func validKeyHex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}
