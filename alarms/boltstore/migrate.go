package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skywatch/skywatch/alarms"
)

// migrate1 brings a format-1 file to format 2 inside tx (after prepare):
// the layouts are the same, so it counts the records, checks every
// derived bucket against the records it indexes, rebuilds those that
// disagree, and stamps the version. A crash between the writes of an
// event, or a bug of an older version, would have left such a bucket
// wrong; format 2 starts from indexes known to be right.
func migrate1(tx *bolt.Tx, m *Migration) error {
	for _, step := range []func(*bolt.Tx, *Migration) error{checkEventIndex, checkRejected, checkIncidentIndexes} {
		if err := step(tx, m); err != nil {
			return err
		}
	}
	m.DedupKeys = countKeys(tx.Bucket(bucketDedup))
	m.Devices = countKeys(tx.Bucket(bucketDevices))
	m.Units = countKeys(tx.Bucket(bucketUnits))
	return stampFormat(tx)
}

// indexEntry is one entry a derived bucket must hold.
type indexEntry struct {
	bucket []string // path below the top bucket
	key    []byte
	value  []byte
}

// checkBucket tells whether the bucket at path below top holds exactly
// the entries that each visits (each entry once, keys unique per bucket),
// counting each bucket's keys once at the end.
func checkBucket(top *bolt.Bucket, each func(yield func(indexEntry) bool)) bool {
	want := map[string]int{} // bucket path -> entries
	ok := true
	each(func(e indexEntry) bool {
		b := top
		for _, p := range e.bucket {
			if b = b.Bucket([]byte(p)); b == nil {
				ok = false
				return false
			}
		}
		if v := b.Get(e.key); v == nil || !bytes.Equal(v, e.value) {
			ok = false
			return false
		}
		want[pathKey(e.bucket)]++
		return true
	})
	if !ok {
		return false
	}
	// Every entry is there: the bucket holds no more than these.
	seen := map[string]int{}
	var walk func(b *bolt.Bucket, path []string) bool
	walk = func(b *bolt.Bucket, path []string) bool {
		n := 0
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil && b.Bucket(k) != nil {
				if !walk(b.Bucket(k), append(slices.Clone(path), string(k))) {
					return false
				}
				continue
			}
			n++
		}
		if n > 0 {
			seen[pathKey(path)] = n
		}
		return true
	}
	if !walk(top, nil) {
		return false
	}
	if len(seen) != len(want) {
		return false
	}
	for p, n := range want {
		if seen[p] != n {
			return false
		}
	}
	return true
}

func pathKey(path []string) string {
	var b bytes.Buffer
	for _, p := range path {
		b.WriteString(p)
		b.WriteByte(0)
	}
	return b.String()
}

// rebuildBucket replaces the top-level bucket name with the entries each
// visits, and returns it.
func rebuildBucket(tx *bolt.Tx, name []byte, each func(yield func(indexEntry) bool)) error {
	if err := tx.DeleteBucket(name); err != nil {
		return err
	}
	top, err := tx.CreateBucket(name)
	if err != nil {
		return err
	}
	var werr error
	each(func(e indexEntry) bool {
		b := top
		for _, p := range e.bucket {
			if b, werr = b.CreateBucketIfNotExists([]byte(p)); werr != nil {
				return false
			}
		}
		werr = b.Put(e.key, e.value)
		return werr == nil
	})
	return werr
}

// eventIndexEntries visits the index entries of every decodable event,
// as AppendEvent writes them.
func eventIndexEntries(tx *bolt.Tx) func(yield func(indexEntry) bool) {
	return func(yield func(indexEntry) bool) {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e struct {
				Device     string       `json:"device"`
				Area       string       `json:"area"`
				Class      alarms.Class `json:"class"`
				ReceivedAt time.Time    `json:"received_at"`
			}
			if json.Unmarshal(v, &e) != nil {
				continue
			}
			ik := append(timeKey(e.ReceivedAt), k...)
			meta := []byte(e.Device + "\x00" + e.Area + "\x00" + string(e.Class))
			if !yield(indexEntry{bucket: []string{string(indexAll)}, key: ik, value: meta}) {
				return
			}
			for _, sub := range []struct{ kind, value string }{
				{string(indexDevice), e.Device}, {string(indexArea), e.Area}, {string(indexClass), string(e.Class)},
			} {
				if sub.value == "" {
					continue
				}
				if !yield(indexEntry{bucket: []string{sub.kind, sub.value}, key: ik, value: meta}) {
					return
				}
			}
		}
	}
}

func checkEventIndex(tx *bolt.Tx, m *Migration) error {
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		m.Events++
		if !json.Valid(v) {
			m.Undecodable++
		}
	}
	each := eventIndexEntries(tx)
	if checkBucket(tx.Bucket(bucketIndex), each) {
		return nil
	}
	m.Rebuilt = append(m.Rebuilt, string(bucketIndex))
	if err := rebuildBucket(tx, bucketIndex, each); err != nil {
		return err
	}
	// Empty index buckets that the store expects.
	idx := tx.Bucket(bucketIndex)
	for _, name := range [][]byte{indexAll, indexDevice, indexArea, indexClass} {
		if _, err := idx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// checkRejected checks the rejected messages' per-device lists and count.
func checkRejected(tx *bolt.Tx, m *Migration) error {
	all := tx.Bucket(bucketRejected)
	m.Rejected = countKeys(all)
	each := func(yield func(indexEntry) bool) {
		c := all.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r struct {
				Device string `json:"device"`
			}
			if json.Unmarshal(v, &r) != nil || r.Device == "" {
				continue
			}
			if !yield(indexEntry{bucket: []string{r.Device}, key: k, value: []byte{}}) {
				return
			}
		}
	}
	if !checkBucket(tx.Bucket(bucketRejectedDevice), each) {
		m.Rebuilt = append(m.Rebuilt, string(bucketRejectedDevice))
		if err := rebuildBucket(tx, bucketRejectedDevice, each); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketRejectedMeta)
	n := uint64(m.Rejected)
	if v := meta.Get(keyRejectedCount); len(v) != 8 || binary.BigEndian.Uint64(v) != n {
		m.Rebuilt = append(m.Rebuilt, string(bucketRejectedMeta))
		return meta.Put(keyRejectedCount, binary.BigEndian.AppendUint64(nil, n))
	}
	return nil
}

// checkIncidentIndexes checks the incidents' time index, their open set
// and the open incident of each device and kind.
func checkIncidentIndexes(tx *bolt.Tx, m *Migration) error {
	// Decoded once: what the indexes need of each incident (an incident's
	// JSON with its timeline is large; a few hundred bytes are kept).
	type incInfo struct {
		key, meta, id []byte
		open          bool
		device        string
		kind          alarms.IncidentKind
	}
	var infos []incInfo
	c := tx.Bucket(bucketIncidents).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		m.Incidents++
		var inc alarms.Incident
		if json.Unmarshal(v, &inc) != nil || inc.ID != string(k) {
			m.Undecodable++
			continue
		}
		infos = append(infos, incInfo{key: incKey(&inc), meta: incMeta(&inc), id: []byte(inc.ID), open: inc.State.Open(), device: inc.Device, kind: inc.Kind})
		if inc.State.Open() {
			m.OpenIncidents++
		}
	}
	decoded := func(yield func(*incInfo) bool) {
		for i := range infos {
			if !yield(&infos[i]) {
				return
			}
		}
	}
	index := func(yield func(indexEntry) bool) {
		for inc := range decoded {
			if !yield(indexEntry{key: inc.key, value: inc.meta}) {
				return
			}
		}
	}
	openSet := func(yield func(indexEntry) bool) {
		for inc := range decoded {
			if inc.open && !yield(indexEntry{key: inc.key, value: []byte{}}) {
				return
			}
		}
	}
	// Two open incidents of one device and kind should not exist. If they
	// do, the one the file names stays the device's; if it names none of
	// them, the newest (by creation) becomes it.
	// Chosen before any rebuild, which deletes the bucket read here.
	stored := tx.Bucket(bucketIncOpenDevice)
	best := map[string]*incInfo{}
	var order []string
	for inc := range decoded {
		if !inc.open {
			continue
		}
		k := string(openDeviceKey(inc.device, inc.kind))
		b, ok := best[k]
		if !ok {
			order = append(order, k)
		}
		named := bytes.Equal(stored.Get([]byte(k)), inc.id)
		if !ok || named || (!bytes.Equal(stored.Get([]byte(k)), b.id) && bytes.Compare(inc.key, b.key) > 0) {
			best[k] = inc
		}
	}
	openDev := func(yield func(indexEntry) bool) {
		for _, k := range order {
			if !yield(indexEntry{key: []byte(k), value: best[k].id}) {
				return
			}
		}
	}
	for _, d := range []struct {
		name []byte
		each func(func(indexEntry) bool)
	}{{bucketIncIndex, index}, {bucketIncOpen, openSet}, {bucketIncOpenDevice, openDev}} {
		if checkBucket(tx.Bucket(d.name), d.each) {
			continue
		}
		m.Rebuilt = append(m.Rebuilt, string(d.name))
		if err := rebuildBucket(tx, d.name, d.each); err != nil {
			return err
		}
	}
	return nil
}
