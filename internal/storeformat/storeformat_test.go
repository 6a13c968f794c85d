package storeformat

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/testredis"
)

func TestNewerError(t *testing.T) {
	err := error(&NewerError{Found: 5, Reads: 2})
	if !errors.Is(err, ErrNewer) {
		t.Error("NewerError does not wrap ErrNewer")
	}
	if want := "format 5 is newer than this Skywatch reads (2): run the newer Skywatch, or restore a backup taken by this version"; err.Error() != want {
		t.Errorf("message %q", err)
	}
}

func TestCheckRedis(t *testing.T) {
	url := testredis.URL(t)
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	key := prefix + "format"

	tests := []struct {
		field, held string // held "" leaves the field unset
		stamped     bool
		err         string // substring; "" for none
	}{
		{field: "a", stamped: true},
		{field: "b", held: "2"},
		{field: "c", held: "3", err: "format 3 is newer than this Skywatch reads (2)"},
		{field: "d", held: "1", err: "format 1 has no migration to 2"},
		{field: "e", held: "two", err: `"two" is not a format version`},
	}
	for _, tc := range tests {
		if tc.held != "" {
			if err := rdb.HSet(ctx, key, tc.field, tc.held).Err(); err != nil {
				t.Fatal(err)
			}
		}
		stamped, err := CheckRedis(ctx, rdb, key, tc.field, 2)
		if stamped != tc.stamped || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("field %s holding %q: stamped %v, %v; want %v, %q", tc.field, tc.held, stamped, err, tc.stamped, tc.err)
		}
		if tc.err == "" {
			if v, _ := rdb.HGet(ctx, key, tc.field).Result(); v != "2" {
				t.Errorf("field %s holds %q after the check", tc.field, v)
			}
		}
	}
}
