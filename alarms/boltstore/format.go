package boltstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skywatch/skywatch/internal/storeformat"
)

// FormatVersion is the layout of the store file that this code writes and
// reads, kept as "format" (decimal) in the meta bucket. Format 1 is the
// layout from before the file carried a version (no "format" key); Open
// migrates it.
//
// Format 2 has the layout of format 1: the version marker is what it adds.
// Its migration checks the derived buckets (the event, incident and
// rejected-message indexes, the open-incident sets, the rejected count)
// against the records they index, rebuilds any that disagree, and stamps
// the file.
const FormatVersion = 2

// ErrNewerFormat is wrapped by Open's error for a file written by a newer
// Skywatch, whose layout this code would misread.
var ErrNewerFormat = storeformat.ErrNewer

// keyFormat in bucketMeta holds the file's format version in decimal.
var keyFormat = []byte("format")

// Migration says what Open did to bring an older file to FormatVersion.
type Migration struct {
	From, To int
	// Records found, by kind.
	Events, DedupKeys, Rejected, Devices, Incidents, OpenIncidents, Units int
	// Undecodable counts records whose JSON does not decode: they are
	// left as they are and not indexed.
	Undecodable int
	// Rebuilt names the derived buckets that disagreed with their records
	// and were rebuilt (empty for a consistent file).
	Rebuilt []string
	// Backup is the copy of the file as it was before, beside it, and
	// BackupBytes its size (the file's size).
	Backup      string
	BackupBytes int64
	// Took is how long the backup copy and the migration took.
	Took time.Duration
}

// BackupPath is where Open keeps the copy of a format-from file at path
// before migrating it: path.format{from}.bak.
func BackupPath(path string, from int) string {
	return path + ".format" + strconv.Itoa(from) + ".bak"
}

// readFormat returns the file's format: FormatVersion's predecessors as
// their number, 0 for a file that holds nothing yet.
func readFormat(tx *bolt.Tx) (int, error) {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if v := meta.Get(keyFormat); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 1 {
				return 0, fmt.Errorf("meta format %q is not a format version", v)
			}
			return n, nil
		}
	}
	// No marker: format 1 if any bucket of records holds one, else a new
	// file (or a format-1 file that never stored anything).
	for _, name := range [][]byte{bucketEvents, bucketDedup, bucketRejected, bucketDevices, bucketIncidents, bucketUnits, bucketMeta} {
		if b := tx.Bucket(name); b != nil {
			if k, _ := b.Cursor().First(); k != nil {
				return 1, nil
			}
		}
	}
	return 0, nil
}

func stampFormat(tx *bolt.Tx) error {
	return tx.Bucket(bucketMeta).Put(keyFormat, []byte(strconv.Itoa(FormatVersion)))
}

// writeBackup copies the file as tx sees it to path, whole or not at all.
func writeBackup(tx *bolt.Tx, path string) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, err
	}
	n, err := tx.WriteTo(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return 0, err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return 0, err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return n, err
}
