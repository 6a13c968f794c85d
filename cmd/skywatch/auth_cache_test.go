package main

import (
	"path/filepath"
	"testing"
)

// The verified-credential cache lives beside the bbolt store by default,
// nowhere by default with Redis (no directory of ours: not the working
// directory), and where mqtt.auth.cache_file says otherwise.
func TestAuthCacheFileDefault(t *testing.T) {
	for _, tt := range []struct {
		file, path, redis, want string
	}{
		{"", "", "", defaultAuthCacheFile},
		{"", "/var/lib/skywatch/alarms.db", "", filepath.Join("/var/lib/skywatch", defaultAuthCacheFile)},
		{"", "", "redis://127.0.0.1:6379/0", ""},
		{"/x/auth.json", "", "redis://127.0.0.1:6379/0", "/x/auth.json"},
		{"off", "/var/lib/skywatch/alarms.db", "", ""},
	} {
		fc := &fileConfig{}
		fc.MQTT.Auth.CacheFile, fc.Store.Path, fc.Store.RedisURL = tt.file, tt.path, tt.redis
		if got := authCacheFile(fc); got != tt.want {
			t.Errorf("cache_file %q, path %q, redis %q: %q, want %q", tt.file, tt.path, tt.redis, got, tt.want)
		}
	}
}
