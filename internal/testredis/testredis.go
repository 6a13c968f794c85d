// Package testredis gives tests that use a real Redis keys of their own and
// removes them afterwards.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// URL returns $SKYWATCH_TEST_REDIS. Without it the test is skipped, or
// fails under CI=true: in CI a missing service must never pass silently.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("SKYWATCH_TEST_REDIS")
	if url == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("SKYWATCH_TEST_REDIS is required in CI")
		}
		tb.Skip("SKYWATCH_TEST_REDIS is not set")
	}
	return url
}

// Prefix returns name followed by a random part and ":", a key prefix no
// other test uses, and deletes the keys under it when tb ends.
func Prefix(tb testing.TB, url, name string) string {
	tb.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := name + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() { DeleteKeys(tb, url, prefix) })
	return prefix
}

// DeleteKeys removes every key under prefix at the Redis at url, found
// with SCAN and deleted in batches.
func DeleteKeys(tb testing.TB, url, prefix string) {
	tb.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Error(err)
		return
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Errorf("scan %s*: %v", prefix, err)
		return
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
			tb.Errorf("delete %s*: %v", prefix, err)
			return
		}
		keys = keys[n:]
	}
}
