package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms/boltstore"
)

const backupUsage = `usage: skywatch backup -config FILE -out FILE

Writes a consistent copy of the embedded alarm store (store.path) and the
records directory (store.records_dir: audit log, sessions, preferences,
API tokens) to one archive: a tar, gzipped when FILE ends in .gz, with a
manifest.json of formats and SHA-256s. While Skywatch runs, the server
takes the copy (through store.control_socket) without stopping; when it
is stopped, backup reads the files itself. FILE appears only whole and
checked; an older file of that name is replaced.

Recordings and evidence clips (recordings.path) are not in the archive:
copy that directory with rsync. The verified-credential cache
(mqtt.auth.cache_file) is not either: it refills as devices log in.
With Redis (store.redis_url), back up Redis itself: backup says how.
`

// redisBackupAdvice is what backup and restore say with a Redis store.
const redisBackupAdvice = `the store is Redis (store.redis_url): back up Redis itself, not through Skywatch.
Skywatch keeps alarms, incidents, audit records, sessions and tokens in Redis under the keys that
start with store.redis_key_prefix (default "skywatch:").
  - Run Redis with appendonly yes and appendfsync everysec (or always, as store.redis_durability:
    strict requires), so that Redis itself keeps what it acknowledged.
  - A snapshot: redis-cli BGSAVE, wait until LASTSAVE changes, then copy dump.rdb from Redis's
    dir (CONFIG GET dir); or from another machine: redis-cli -u URL --rdb FILE.
  - Or the append-only files: redis-cli BGREWRITEAOF, wait until aof_rewrite_in_progress is 0
    (INFO persistence), then copy the whole AOF directory (Redis 7: appenddirname in dir).
To restore, stop Skywatch and Redis, put the AOF directory back in Redis's dir (or dump.rdb, started
once with appendonly no, then CONFIG SET appendonly yes), start Redis, then start Skywatch.`

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, backupUsage); fs.PrintDefaults() }
	path := fs.String("config", "skywatch.yaml", "config file")
	out := fs.String("out", "", "archive to write (.tar, or .tar.gz to gzip it)")
	dir := fs.String("dir", "", "directory that relative store paths of the config start from, as Skywatch's working directory (the unit's: /var/lib/skywatch); default the current one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	s, code := loadSettingsFor("backup", *path, *dir, stderr)
	if s == nil {
		return code
	}
	if s.store.redis.URL != "" {
		fmt.Fprintln(stderr, "skywatch backup:", redisBackupAdvice)
		return 1
	}
	start := time.Now()
	m, size, err := writeBackupFile(ctx, s.store, *out)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch backup:", err)
		return 1
	}
	by := "the running server"
	if m.TakenBy == "files" {
		by = "the files (no server answered on the control socket)"
	}
	fmt.Fprintf(stdout, "wrote %s: %s, taken from %s in %s\n", *out, byteSize(size), by, time.Since(start).Round(time.Millisecond))
	for _, f := range m.Files {
		extra := ""
		if f.Name == archiveStore {
			extra = fmt.Sprintf(" (%d events)", m.Events)
		}
		fmt.Fprintf(stdout, "  %-24s %10s%s\n", f.Name, byteSize(f.Size), extra)
	}
	fmt.Fprintln(stdout, "not in it: recordings and evidence (copy recordings.path with rsync), the device credential cache (refills)")
	return 0
}

// loadSettingsFor reads and checks the config for a command, making the
// store's relative paths start from dir (or the current directory); on
// failure it returns nil and the exit code.
func loadSettingsFor(cmd, path, dir string, stderr io.Writer) (*settings, int) {
	fc, err := loadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "skywatch %s: %v\n", cmd, err)
		return nil, 1
	}
	s, err := buildSettings(fc)
	if err != nil {
		fmt.Fprintf(stderr, "skywatch %s: %s is not valid:\n%s\n", cmd, path, indent(err.Error()))
		return nil, 1
	}
	if dir == "" {
		if dir, err = os.Getwd(); err != nil {
			fmt.Fprintf(stderr, "skywatch %s: %v\n", cmd, err)
			return nil, 1
		}
	}
	for _, p := range []*string{&s.store.path, &s.store.records, &s.store.control} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return s, 0
}

// writeBackupFile writes the archive to a temporary file beside out,
// checks it, and only then renames it to out.
func writeBackupFile(ctx context.Context, s storeSettings, out string) (*manifest, int64, error) {
	dir, base := filepath.Split(out)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp") // mode 0600: it holds the audit log
	if err != nil {
		return nil, 0, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	var zw *gzip.Writer
	if strings.HasSuffix(out, ".gz") {
		zw = gzip.NewWriter(tmp)
		w = zw
	}
	m, err := takeBackup(ctx, s, w)
	if err != nil {
		return nil, 0, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", tmp.Name(), err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	st, err := tmp.Stat()
	if err != nil {
		return nil, 0, err
	}
	if err := tmp.Close(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", tmp.Name(), err)
	}
	// Read back what is on disk before it takes the name.
	if _, err := readArchive(tmp.Name(), nil); err != nil {
		return nil, 0, fmt.Errorf("the archive written does not read back: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, 0, err
	}
	done = true
	if err := syncDir(dir); err != nil {
		return nil, 0, err
	}
	return m, st.Size(), nil
}

// takeBackup writes an archive to w: made by the running server when one
// answers on the control socket, else from the files.
func takeBackup(ctx context.Context, s storeSettings, w io.Writer) (*manifest, error) {
	if s.control != "" {
		p, err := askControl(ctx, s.control, "backup", w)
		if err == nil {
			var m manifest
			if err := json.Unmarshal(p, &m); err != nil {
				return nil, fmt.Errorf("control socket %s: manifest: %w", s.control, err)
			}
			return &m, nil
		}
		if !errors.Is(err, errNoServer) {
			return nil, err
		}
	}
	if _, err := os.Stat(s.path); err != nil {
		return nil, fmt.Errorf("store.path: %w: nothing to back up (relative paths in the config start from -dir, by default the current directory; the unit runs Skywatch in /var/lib/skywatch)", err)
	}
	recordsFormat, err := accounts.RecordsDirFormat(s.records)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("store.records_dir: %w", err)
	}
	m, err := writeArchive(w, backupSource{
		takenBy:       "files",
		recordsFormat: recordsFormat,
		store: func(fn func(boltstore.Snapshot) error) error {
			err := boltstore.BackupFile(s.path, time.Second, fn)
			if errors.Is(err, boltstore.ErrLocked) {
				return fmt.Errorf("%w: a running Skywatch holds it but does not answer on its control socket (store.control_socket is %s): set store.control_socket and restart it, or stop it for the backup", err, controlName(s.control))
			}
			return err
		},
		records: func(fn func(accounts.RecordsFile) error) error {
			err := accounts.BackupRecordsDir(s.records, fn)
			if errors.Is(err, os.ErrNotExist) {
				return nil // no operator has logged in yet
			}
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func controlName(path string) string {
	if path == "" {
		return "off"
	}
	return path
}

// liveBackup writes an archive of the running server's store and records:
// what the control socket serves.
func (a *app) liveBackup(ctx context.Context, w io.Writer) (*manifest, error) {
	st, ok := a.store.(*boltstore.Store)
	if !ok {
		return nil, errors.New("the store is not the embedded file")
	}
	rec, ok := a.records.(*accounts.FileStore)
	if !ok {
		return nil, errors.New("the records are not files")
	}
	return writeArchive(w, backupSource{
		takenBy:       "server",
		recordsFormat: accounts.RecordsFormatVersion, // stamped when the store opened
		store:         func(fn func(boltstore.Snapshot) error) error { return st.Backup(ctx, fn) },
		records:       func(fn func(accounts.RecordsFile) error) error { return rec.Backup(ctx, fn) },
	})
}

// startControl serves the control socket at path ("" for none) until
// closeAll.
func (a *app) startControl(path string) error {
	if path == "" {
		return nil
	}
	c, err := listenControl(path, a.liveBackup, a.logger.With("component", "control"))
	if err != nil {
		return err
	}
	a.control = c
	return nil
}

// syncDir makes a directory's entries (a renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// byteSize writes n bytes for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
