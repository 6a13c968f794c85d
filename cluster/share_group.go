package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// ShareGroup returns the name of the broker's shared subscription group
// that the alarm intake of every node joins. The first node to ask makes
// it at random and keeps it in Redis; the others read it. A device knows
// the config's names but not Redis: it cannot join the group, in which the
// broker would give it a share of every device's alarms (and a broker
// whose ACL checks read access only on delivery, as Mosquitto's acl_file
// does, would then drop them).
func (c *Cluster) ShareGroup(ctx context.Context) (string, error) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	key := c.prefix + "share_group"
	if err := c.rdb.SetNX(ctx, key, "skywatch-"+hex.EncodeToString(b), 0).Err(); err != nil {
		return "", fmt.Errorf("cluster: share group: %w", err)
	}
	name, err := c.rdb.Get(ctx, key).Result()
	if err != nil {
		return "", fmt.Errorf("cluster: share group: %w", err)
	}
	return name, nil
}
