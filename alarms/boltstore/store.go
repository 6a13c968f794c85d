// Package boltstore keeps alarm events in one embedded bbolt file: the
// alarms.Store used when no Redis is configured, for one Skywatch node.
//
// Durability: a write returns only after the transaction that holds it has
// been written and fsynced. Concurrent AppendEvent calls share one
// transaction and one fsync (bbolt's Batch), so a burst from many devices
// costs few fsyncs; each call still waits for its own data to be on disk.
// Only one process can open the file: a second one fails with ErrLocked
// after the lock timeout instead of waiting for ever.
//
// Layout (buckets):
//
//	events            seq (8 bytes, big endian) -> event JSON
//	dedup             device "/" id -> expiry (unix ns, 8 bytes) + event seq (8 bytes)
//	index/all         received (unix ns, 8 bytes) + seq -> device 0 area 0 class
//	index/device/{d}  the same, for device d; likewise index/area/{a}, index/class/{c}
//	rejected          seq -> rejected JSON
//	rejected_device/{d} seq -> nothing
//	rejected_meta     "count" -> number of rejected messages (8 bytes)
//	devices           device id -> state JSON
//	meta              "format" -> FormatVersion in decimal (see format.go)
//
// An event's Offset is its seq in 16 hex digits; so is a rejected message's
// (from its own sequence). Dedup keys of device event ids expire after the
// retention (30 days by default), synthetic ones after their window;
// expired keys are removed when the file is opened.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/internal/storeformat"
)

var _ alarms.Store = (*Store)(nil)

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("store file is locked by another process")

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("store is closed")

var (
	bucketEvents         = []byte("events")
	bucketDedup          = []byte("dedup")
	bucketIndex          = []byte("index")
	bucketRejected       = []byte("rejected")
	bucketRejectedDevice = []byte("rejected_device")
	bucketRejectedMeta   = []byte("rejected_meta")
	// keyRejectedCount in bucketRejectedMeta holds the number of rejected
	// messages (8 bytes), so that bounding them needs no count.
	keyRejectedCount = []byte("count")
	bucketDevices    = []byte("devices")

	indexAll    = []byte("all")
	indexDevice = []byte("device")
	indexArea   = []byte("area")
	indexClass  = []byte("class")
)

const (
	defaultLimit = 100
	maxLimit     = 1000
	// scanBound is how many index entries one Events call reads at most
	// when a filter is not served by the index it walks.
	scanBound = 10000
)

// Option changes how Open opens the store.
type Option func(*options)

type options struct {
	lockTimeout time.Duration
	batchDelay  time.Duration
	retention   time.Duration
	now         func() time.Time
}

// WithLockTimeout sets how long Open waits for another process to release
// the file. It defaults to 1 second.
func WithLockTimeout(d time.Duration) Option { return func(o *options) { o.lockTimeout = d } }

// WithBatchDelay sets how long a write waits for others to join its
// transaction. A longer delay means fewer fsyncs under load but more
// latency for a lone writer. It defaults to 1 millisecond.
func WithBatchDelay(d time.Duration) Option { return func(o *options) { o.batchDelay = d } }

// WithDedupRetention sets how long a device's event id is remembered for
// deduplication. It defaults to 30 days.
func WithDedupRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithClock replaces the clock that expires dedup keys (for tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Store is an alarms.Store in a bbolt file.
type Store struct {
	db   *bolt.DB
	opts options
	// migration is what Open migrated, nil if nothing; set before Open
	// returns, read only after.
	migration *Migration

	mu     sync.Mutex
	closed bool
}

// Open opens or creates the store file at path.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{lockTimeout: time.Second, batchDelay: time.Millisecond, retention: 30 * 24 * time.Hour, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt store: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt store: open %s: %w", path, err)
	}
	db.MaxBatchDelay = o.batchDelay
	s := &Store{db: db, opts: o}
	if err := s.upgrade(path); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt store: open %s: %w", path, err)
	}
	return s, nil
}

// upgrade prepares the file for use at FormatVersion: a new file is
// stamped, an older one copied beside itself and migrated in one
// transaction, a newer one refused before anything is written to it.
func (s *Store) upgrade(path string) error {
	var from int
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		from, err = readFormat(tx)
		return err
	})
	switch {
	case err != nil:
		return err
	case from > FormatVersion:
		return &storeformat.NewerError{Found: from, Reads: FormatVersion}
	case from == FormatVersion:
		return s.db.Update(s.prepare)
	case from == 0:
		return s.db.Update(func(tx *bolt.Tx) error {
			if err := s.prepare(tx); err != nil {
				return err
			}
			return stampFormat(tx)
		})
	}
	start := time.Now()
	m := &Migration{From: from, To: FormatVersion, Backup: BackupPath(path, from)}
	// The copy lets the previous Skywatch be put back with the file as it
	// left it.
	err = s.db.View(func(tx *bolt.Tx) error {
		var err error
		m.BackupBytes, err = writeBackup(tx, m.Backup)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate format %d to %d: copy to %s: %w", from, FormatVersion, m.Backup, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := s.prepare(tx); err != nil {
			return err
		}
		return migrate1(tx, m)
	})
	if err != nil {
		return fmt.Errorf("migrate format %d to %d: %w", from, FormatVersion, err)
	}
	m.Took = time.Since(start)
	s.migration = m
	return nil
}

// Migration returns what Open did to migrate an older file, or nil when
// the file was new or already at FormatVersion.
func (s *Store) Migration() *Migration { return s.migration }

// prepare creates the buckets and removes expired dedup keys.
func (s *Store) prepare(tx *bolt.Tx) error {
	for _, name := range append([][]byte{bucketEvents, bucketDedup, bucketRejected, bucketRejectedDevice, bucketDevices}, incidentBuckets()...) {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	idx, err := tx.CreateBucketIfNotExists(bucketIndex)
	if err != nil {
		return err
	}
	for _, name := range [][]byte{indexAll, indexDevice, indexArea, indexClass} {
		if _, err := idx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta, err := tx.CreateBucketIfNotExists(bucketRejectedMeta)
	if err != nil {
		return err
	}
	if meta.Get(keyRejectedCount) == nil {
		// A file from before the count was kept: count once.
		n := uint64(tx.Bucket(bucketRejected).Stats().KeyN)
		if err := meta.Put(keyRejectedCount, binary.BigEndian.AppendUint64(nil, n)); err != nil {
			return err
		}
	}
	now := s.opts.now().UnixNano()
	dedup := tx.Bucket(bucketDedup)
	var expired [][]byte
	err = dedup.ForEach(func(k, v []byte) error {
		if len(v) == 16 && int64(binary.BigEndian.Uint64(v)) <= now {
			expired = append(expired, slices.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range expired {
		if err := dedup.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Durability says what the file keeps: every write is fsynced before it
// returns, so before the device or broker gets its acknowledgement.
func (s *Store) Durability() alarms.StoreDurability {
	return alarms.StoreDurability{Summary: "embedded file: each write is fsynced before it is acknowledged"}
}

// Close closes the file. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt store: close: %w", err)
	}
	return nil
}

// check reports a cancelled context or a closed store before any work.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Ping reports whether the file can be read.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("bolt store: ping: %w", err)
	}
	if err := s.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("bolt store: ping: %w", err)
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func offset(seq []byte) string { return hex.EncodeToString(seq) }

// parseOffset reads an offset or cursor of n bytes in hex.
func parseOffset(s string, n int) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("malformed cursor %q", s)
	}
	return b, nil
}

// timeKey is t in unix nanoseconds, clamped to what 8 unsigned bytes hold.
func timeKey(t time.Time) []byte {
	var ns uint64
	if t.After(time.Unix(0, 0)) {
		ns = uint64(t.UnixNano()) // past 2262, UnixNano saturates
	}
	return binary.BigEndian.AppendUint64(nil, ns)
}

// AppendEvent stores e unless its key is already stored; see alarms.Store.
func (s *Store) AppendEvent(ctx context.Context, e *alarms.Event, window time.Duration) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, fmt.Errorf("bolt store: append event: %w", err)
	}
	rec := *e
	rec.Offset = ""
	data, err := json.Marshal(&rec)
	if err != nil {
		return false, fmt.Errorf("bolt store: append event: %w", err)
	}
	ttl := s.opts.retention
	if e.SyntheticID {
		ttl = window
	}
	dedupKey := []byte(e.Key())
	meta := []byte(e.Device + "\x00" + e.Area + "\x00" + string(e.Class))
	now := s.opts.now()

	// Batch may run fn twice (alone after a failed batch), so fn sets
	// every result afresh.
	var (
		stored bool
		seq    []byte
	)
	err = s.db.Batch(func(tx *bolt.Tx) error {
		stored, seq = false, nil
		dedup := tx.Bucket(bucketDedup)
		if ttl > 0 {
			if v := dedup.Get(dedupKey); len(v) == 16 && int64(binary.BigEndian.Uint64(v)) > now.UnixNano() {
				seq = slices.Clone(v[8:])
				return nil
			}
		}
		events := tx.Bucket(bucketEvents)
		n, err := events.NextSequence()
		if err != nil {
			return err
		}
		seq = seqKey(n)
		if err := events.Put(seq, data); err != nil {
			return err
		}
		ik := append(timeKey(e.ReceivedAt), seq...)
		idx := tx.Bucket(bucketIndex)
		if err := idx.Bucket(indexAll).Put(ik, meta); err != nil {
			return err
		}
		for _, sub := range []struct{ kind, value []byte }{
			{indexDevice, []byte(e.Device)},
			{indexArea, []byte(e.Area)},
			{indexClass, []byte(e.Class)},
		} {
			if len(sub.value) == 0 {
				continue
			}
			b, err := idx.Bucket(sub.kind).CreateBucketIfNotExists(sub.value)
			if err != nil {
				return err
			}
			if err := b.Put(ik, meta); err != nil {
				return err
			}
		}
		if ttl > 0 {
			v := binary.BigEndian.AppendUint64(nil, uint64(now.Add(ttl).UnixNano()))
			if err := dedup.Put(dedupKey, append(v, seq...)); err != nil {
				return err
			}
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("bolt store: append event: %w", err)
	}
	e.Offset = offset(seq)
	return stored, nil
}

func normLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// Events lists events newest first. It walks the index of the device, or
// else of the area, or else of the class, and checks the other filters on
// the index entries; at most scanBound entries per call.
func (s *Store) Events(ctx context.Context, q alarms.EventQuery) (alarms.EventPage, error) {
	if err := s.check(ctx); err != nil {
		return alarms.EventPage{}, fmt.Errorf("bolt store: events: %w", err)
	}
	limit := normLimit(q.Limit)
	var hi, lo []byte // hi exclusive, lo inclusive
	if q.Cursor != "" {
		c, err := parseOffset(q.Cursor, 16)
		if err != nil {
			return alarms.EventPage{}, fmt.Errorf("bolt store: events: %w", err)
		}
		hi = c
	}
	if !q.Until.IsZero() {
		if u := append(timeKey(q.Until), make([]byte, 8)...); hi == nil || bytes.Compare(u, hi) < 0 {
			hi = u
		}
	}
	if !q.Since.IsZero() {
		lo = append(timeKey(q.Since), make([]byte, 8)...)
	}

	var page alarms.EventPage
	areas := q.AreaFilter()
	q.Areas = areas // for metaMatches
	err := s.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketIndex)
		var b *bolt.Bucket
		switch {
		case q.Device != "":
			b = idx.Bucket(indexDevice).Bucket([]byte(q.Device))
		case len(areas) == 1:
			b = idx.Bucket(indexArea).Bucket([]byte(areas[0]))
		case q.Class != "":
			b = idx.Bucket(indexClass).Bucket([]byte(q.Class))
		default:
			b = idx.Bucket(indexAll)
		}
		if b == nil {
			return nil
		}
		events := tx.Bucket(bucketEvents)
		c := b.Cursor()
		var k, v []byte
		if hi == nil {
			k, v = c.Last()
		} else if k, _ = c.Seek(hi); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		var scannedKey, pageKey []byte // index keys of the last entry scanned and paged
		for scanned := 0; k != nil && (lo == nil || bytes.Compare(k, lo) >= 0); k, v = c.Prev() {
			if scanned++; scanned > scanBound {
				// The next page goes on after the entries scanned.
				page.Next = hex.EncodeToString(scannedKey)
				return nil
			}
			scannedKey = k
			if !metaMatches(v, q) {
				continue
			}
			if len(page.Events) == limit {
				// One more match exists: the page has a next one.
				page.Next = hex.EncodeToString(pageKey)
				return nil
			}
			pageKey = k
			ev, err := decodeEvent(events.Get(k[8:]), k[8:])
			if err != nil {
				return err
			}
			page.Events = append(page.Events, ev)
		}
		return nil
	})
	if err != nil {
		return alarms.EventPage{}, fmt.Errorf("bolt store: events: %w", err)
	}
	return page, nil
}

// metaMatches checks q's filters against an index entry's value; q.Areas
// must be q.AreaFilter().
func metaMatches(meta []byte, q alarms.EventQuery) bool {
	f := strings.SplitN(string(meta), "\x00", 3)
	if len(f) != 3 {
		return false
	}
	return (q.Device == "" || f[0] == q.Device) &&
		(len(q.Areas) == 0 || slices.Contains(q.Areas, f[1])) &&
		(q.Class == "" || f[2] == string(q.Class))
}

func decodeEvent(data, seq []byte) (alarms.Event, error) {
	if data == nil {
		return alarms.Event{}, fmt.Errorf("event %s is indexed but missing", offset(seq))
	}
	var e alarms.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return alarms.Event{}, fmt.Errorf("event %s: %w", offset(seq), err)
	}
	e.Offset = offset(seq)
	return e, nil
}

// AddRejected keeps a message that did not decode and sets r.Offset,
// dropping the oldest messages past lim; see alarms.Store.
func (s *Store) AddRejected(ctx context.Context, r *alarms.Rejected, lim alarms.RejectedLimits) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("bolt store: add rejected: %w", err)
	}
	rec := *r
	rec.Offset = ""
	data, err := json.Marshal(&rec)
	if err != nil {
		return 0, fmt.Errorf("bolt store: add rejected: %w", err)
	}
	var (
		seq     []byte
		dropped int
	)
	err = s.db.Batch(func(tx *bolt.Tx) error {
		// Batch may run this again: start afresh.
		dropped = 0
		b := tx.Bucket(bucketRejected)
		n, err := b.NextSequence()
		if err != nil {
			return err
		}
		seq = seqKey(n)
		if err := b.Put(seq, data); err != nil {
			return err
		}
		devs := tx.Bucket(bucketRejectedDevice)
		d, err := devs.CreateBucketIfNotExists([]byte(r.Device))
		if err != nil {
			return err
		}
		if err := d.Put(seq, nil); err != nil {
			return err
		}
		meta := tx.Bucket(bucketRejectedMeta)
		total := binary.BigEndian.Uint64(meta.Get(keyRejectedCount)) + 1
		if lim.PerDevice > 0 {
			// Stats would not see this transaction's writes: count.
			for n := countKeys(d); n > lim.PerDevice; n-- {
				k, _ := d.Cursor().First()
				if err := dropRejected(b, d, k); err != nil {
					return err
				}
				total--
				dropped++
			}
		}
		for lim.Total > 0 && total > uint64(lim.Total) {
			k, v := b.Cursor().First()
			var old struct {
				Device string `json:"device"`
			}
			if err := json.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("rejected %s: %w", offset(k), err)
			}
			dev := devs.Bucket([]byte(old.Device))
			if err := dropRejected(b, dev, k); err != nil {
				return err
			}
			// Many device names (unknown devices at an external broker)
			// must leave no empty buckets behind.
			if dev != nil && old.Device != r.Device {
				if first, _ := dev.Cursor().First(); first == nil {
					if err := devs.DeleteBucket([]byte(old.Device)); err != nil {
						return err
					}
				}
			}
			total--
			dropped++
		}
		return meta.Put(keyRejectedCount, binary.BigEndian.AppendUint64(nil, total))
	})
	if err != nil {
		return 0, fmt.Errorf("bolt store: add rejected: %w", err)
	}
	r.Offset = offset(seq)
	return dropped, nil
}

// countKeys counts a (small) bucket's keys.
func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// dropRejected deletes the rejected message k from the list of all and
// from its device's (dev may be nil).
func dropRejected(all, dev *bolt.Bucket, k []byte) error {
	k = slices.Clone(k)
	if err := all.Delete(k); err != nil {
		return err
	}
	if dev == nil {
		return nil
	}
	return dev.Delete(k)
}

// Rejected lists rejected messages, newest first.
func (s *Store) Rejected(ctx context.Context, q alarms.RejectedQuery) ([]alarms.Rejected, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("bolt store: rejected: %w", err)
	}
	limit := normLimit(q.Limit)
	var before []byte
	if q.Before != "" {
		b, err := parseOffset(q.Before, 8)
		if err != nil {
			return nil, fmt.Errorf("bolt store: rejected: %w", err)
		}
		before = b
	}
	var out []alarms.Rejected
	err := s.db.View(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketRejected)
		b := all
		if q.Device != "" {
			if b = tx.Bucket(bucketRejectedDevice).Bucket([]byte(q.Device)); b == nil {
				return nil
			}
		}
		c := b.Cursor()
		var k []byte
		if before == nil {
			k, _ = c.Last()
		} else if k, _ = c.Seek(before); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, _ = c.Prev() {
			data := all.Get(k)
			if data == nil {
				return fmt.Errorf("rejected %s is indexed but missing", offset(k))
			}
			var r alarms.Rejected
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("rejected %s: %w", offset(k), err)
			}
			r.Offset = offset(k)
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt store: rejected: %w", err)
	}
	return out, nil
}

// PutDevice saves a device's state.
func (s *Store) PutDevice(ctx context.Context, d alarms.DeviceState) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("bolt store: put device %s: %w", d.ID, err)
	}
	data, err := json.Marshal(&d)
	if err != nil {
		return fmt.Errorf("bolt store: put device %s: %w", d.ID, err)
	}
	err = s.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).Put([]byte(d.ID), data)
	})
	if err != nil {
		return fmt.Errorf("bolt store: put device %s: %w", d.ID, err)
	}
	return nil
}

// Device returns a device's state or alarms.ErrNotFound.
func (s *Store) Device(ctx context.Context, id string) (alarms.DeviceState, error) {
	if err := s.check(ctx); err != nil {
		return alarms.DeviceState{}, fmt.Errorf("bolt store: device %s: %w", id, err)
	}
	var d alarms.DeviceState
	err := s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketDevices).Get([]byte(id))
		if data == nil {
			return alarms.ErrNotFound
		}
		return json.Unmarshal(data, &d)
	})
	if err != nil {
		return alarms.DeviceState{}, fmt.Errorf("bolt store: device %s: %w", id, err)
	}
	return d, nil
}

// Devices returns every device's state, by ID.
func (s *Store) Devices(ctx context.Context) ([]alarms.DeviceState, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("bolt store: devices: %w", err)
	}
	var out []alarms.DeviceState
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			var d alarms.DeviceState
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("device %s: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt store: devices: %w", err)
	}
	return out, nil
}
