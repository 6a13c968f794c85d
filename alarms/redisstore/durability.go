package redisstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/alarms"
)

// Durability modes of Config.Durability.
const (
	// DurabilityNormal takes Redis as it is configured and says, in the
	// log and the intake's status, what its settings can lose.
	DurabilityNormal = "normal"
	// DurabilityStrict acknowledges an event only once it is on Redis's
	// disk: with WAITAOF after each event where Redis has it (7.2 and
	// later), else Open requires appendonly yes and appendfsync always.
	DurabilityStrict = "strict"
)

// ErrDurability is returned by Open when strict durability cannot be had
// from this Redis: retrying does not help, its settings must change.
var ErrDurability = errors.New("store.redis_durability: strict")

// persistence is Redis's persistence settings, read at Open.
type persistence struct {
	readable    bool   // CONFIG GET answered
	refused     string // why not
	appendonly  string // "yes" or "no"
	appendfsync string // "always", "everysec" or "no"
	save        string // snapshot rules, "" for none
	version     string
}

// readPersistence reads the settings; a Redis where CONFIG is disabled or
// renamed (managed services) is noted, not an error.
func readPersistence(ctx context.Context, rdb redis.Cmdable) persistence {
	var p persistence
	if info, err := rdb.Info(ctx, "server").Result(); err == nil {
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				p.version = v
			}
		}
	}
	// One name per CONFIG GET: Redis before 7 takes no more.
	vals := map[string]string{}
	for _, name := range []string{"appendonly", "appendfsync", "save"} {
		got, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			p.refused = err.Error()
			return p
		}
		maps.Copy(vals, got)
	}
	var ok1, ok2 bool
	p.appendonly, ok1 = vals["appendonly"]
	p.appendfsync, ok2 = vals["appendfsync"]
	p.save = vals["save"]
	if !ok1 || !ok2 {
		p.refused = "CONFIG GET did not return appendonly and appendfsync"
		return p
	}
	p.readable = true
	return p
}

// atLeast reports whether the version is major.minor or later.
func (p persistence) atLeast(major, minor int) bool {
	f := strings.SplitN(p.version, ".", 3)
	if len(f) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(f[0])
	mi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// describe says in plain words what these settings keep, and warns when
// they can lose acknowledged alarms.
func (p persistence) describe() alarms.StoreDurability {
	if !p.readable {
		return alarms.StoreDurability{
			Summary: "Redis's persistence settings are unknown (CONFIG GET refused)",
			Warning: "cannot read Redis's persistence settings (" + p.refused + "): make sure it runs with " +
				"appendonly yes and appendfsync always (or everysec, which can lose about the last 2 s of alarms in a crash)",
		}
	}
	switch {
	case p.appendonly != "yes" && p.save == "":
		return alarms.StoreDurability{
			Summary: "appendonly no, no snapshots",
			Warning: "Redis keeps no append-only file and no snapshot: a restart of Redis loses every stored alarm; run it with appendonly yes",
		}
	case p.appendonly != "yes":
		return alarms.StoreDurability{
			Summary: fmt.Sprintf("appendonly no, snapshots (save %q)", p.save),
			Warning: "Redis keeps no append-only file: a restart of Redis loses the alarms stored since its last snapshot; run it with appendonly yes",
		}
	case p.appendfsync == "always":
		return alarms.StoreDurability{Summary: "appendonly yes, appendfsync always: every acknowledged alarm is on Redis's disk"}
	case p.appendfsync == "everysec":
		return alarms.StoreDurability{
			Summary: "appendonly yes, appendfsync everysec",
			Warning: "appendfsync everysec: a crash of Redis or of its machine can lose the alarms of about the last 2 s, already acknowledged; " +
				"set appendfsync always or store.redis_durability: strict",
		}
	default:
		return alarms.StoreDurability{
			Summary: "appendonly yes, appendfsync " + p.appendfsync,
			Warning: "appendfsync " + p.appendfsync + ": the operating system writes the append-only file when it likes (about every 30 s): " +
				"a crash of Redis's machine can lose that much of acknowledged alarms; set appendfsync always or everysec",
		}
	}
}

// setDurability reads Redis's persistence and, in strict mode, makes sure
// that each event will be on disk before AppendEvent returns, or fails with
// ErrDurability.
func (s *Store) setDurability(ctx context.Context) error {
	p := readPersistence(ctx, s.rdb)
	s.durability = p.describe()
	if s.cfg.Durability != DurabilityStrict {
		return nil
	}
	if p.atLeast(7, 2) {
		// WAITAOF checks by itself that the append-only file is on.
		if err := s.rdb.Do(ctx, "WAITAOF", 1, 0, s.cfg.Timeout.Milliseconds()).Err(); err != nil {
			return fmt.Errorf("%w: WAITAOF: %v", ErrDurability, err)
		}
		s.waitAOF = true
		s.durability = alarms.StoreDurability{Summary: "strict: each event waits for WAITAOF (on Redis's disk) before it is acknowledged"}
		return nil
	}
	switch {
	case !p.readable:
		return fmt.Errorf("%w: Redis %s has no WAITAOF (7.2 and later) and its settings cannot be read (%s) to check appendfsync always",
			ErrDurability, p.version, p.refused)
	case p.appendonly != "yes" || p.appendfsync != "always":
		return fmt.Errorf("%w: Redis %s has no WAITAOF (7.2 and later): it needs appendonly yes and appendfsync always (it has appendonly %s, appendfsync %s)",
			ErrDurability, p.version, p.appendonly, p.appendfsync)
	}
	s.durability = alarms.StoreDurability{Summary: "strict: appendonly yes, appendfsync always: every acknowledged alarm is on Redis's disk"}
	return nil
}

// Durability says what Redis's settings, read at Open, keep of acknowledged
// alarms; see alarms.StoreDurability.
func (s *Store) Durability() alarms.StoreDurability { return s.durability }
