package nodestats

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/skywatch/skywatch/internal/testredis"
)

func TestPutAllPrune(t *testing.T) {
	url := os.Getenv("SKYWATCH_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	ctx := context.Background()
	st, err := Open(ctx, url, testredis.Prefix(t, url, "skywatch-test:"), time.Second)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	for _, r := range []Record{
		{Node: "a", At: now, Data: json.RawMessage(`{"viewers":3}`)},
		{Node: "old", At: now.Add(-MaxAge - time.Minute), Data: json.RawMessage(`{}`)},
	} {
		if err := st.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Put(ctx, Record{}); err == nil {
		t.Error("a record without a node was stored")
	}
	all, err := st.All(ctx, now)
	if err != nil || len(all) != 1 || string(all["a"].Data) != `{"viewers":3}` {
		t.Fatalf("all = %+v, %v", all, err)
	}
	if n, err := st.rdb.HLen(ctx, st.key).Result(); err != nil || n != 1 {
		t.Fatalf("the old record was not pruned: %d entries, %v", n, err)
	}
}
