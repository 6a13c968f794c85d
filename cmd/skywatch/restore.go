package main

import (
	"archive/tar"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const restoreUsage = `usage: skywatch restore -config FILE -in FILE

Puts an archive of skywatch backup back: the alarm store at store.path and
the records into store.records_dir, as the config names them. It first
reads the whole archive and checks every file's SHA-256 and the formats
(an archive of a newer Skywatch is refused), and it refuses to overwrite
anything: store.path must not exist, store.records_dir must be empty or
missing, and no server may answer on store.control_socket. Nothing is
written unless every check passes; files appear only whole and fsynced.
`

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, restoreUsage); fs.PrintDefaults() }
	path := fs.String("config", "skywatch.yaml", "config file")
	in := fs.String("in", "", "archive written by skywatch backup")
	dir := fs.String("dir", "", "directory that relative store paths of the config start from, as Skywatch's working directory (the unit's: /var/lib/skywatch); default the current one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *in == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	s, code := loadSettingsFor("restore", *path, *dir, stderr)
	if s == nil {
		return code
	}
	if s.store.redis.URL != "" {
		fmt.Fprintln(stderr, "skywatch restore:", redisBackupAdvice)
		return 1
	}
	start := time.Now()
	m, err := restoreArchive(ctx, s.store, *in)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s (taken %s on %s by Skywatch %s) in %s:\n", *in,
		m.Created.Format(time.RFC3339), m.Node, buildName(m.Skywatch), time.Since(start).Round(time.Millisecond))
	for _, f := range m.Files {
		fmt.Fprintf(stdout, "  %-24s %10s -> %s\n", f.Name, byteSize(f.Size), restoreTarget(s.store, f.Name))
	}
	fmt.Fprintf(stdout, "the store holds %d events.\nnext:\n", m.Events)
	if os.Geteuid() == 0 {
		fmt.Fprintf(stdout, "  - the files belong to root: give them to the service's user, e.g.\n      chown -R skywatch:skywatch %s %s\n",
			s.store.path, s.store.records)
	}
	fmt.Fprintln(stdout, "  - put recordings and evidence back into recordings.path if you copied them (rsync)")
	fmt.Fprintln(stdout, "  - start Skywatch: systemctl start skywatch (or skywatch serve -config ...)")
	fmt.Fprintln(stdout, "  - devices log in again; each costs one password check as the credential cache refills")
	return 0
}

// restoreTarget is where an archive's file goes.
func restoreTarget(s storeSettings, name string) string {
	if name == archiveStore {
		return s.path
	}
	return filepath.Join(s.records, strings.TrimPrefix(name, archiveRecords))
}

// restoreArchive checks the targets and the archive, then writes the
// archive's files to their places.
func restoreArchive(ctx context.Context, s storeSettings, in string) (*manifest, error) {
	if err := checkRestoreTargets(s, nil); err != nil {
		return nil, err
	}
	// First pass: check everything, write nothing.
	if _, err := readArchive(in, nil); err != nil {
		return nil, err
	}
	// Second pass: write each file under a temporary name; the archive is
	// checked again on the way (it might have changed), and the files
	// take their names only when all of it holds.
	type written struct{ tmp, final string }
	var files []written
	defer func() {
		for _, f := range files {
			if f.tmp != "" {
				os.Remove(f.tmp)
			}
		}
	}()
	m, err := readArchive(in, func(hdr *tar.Header, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		final := restoreTarget(s, hdr.Name)
		dir := filepath.Dir(final)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		f, err := os.CreateTemp(dir, "."+filepath.Base(final)+".*.restore")
		if err != nil {
			return err
		}
		files = append(files, written{f.Name(), final})
		_, err = io.Copy(f, r)
		if err == nil {
			err = f.Chmod(0o600)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	// Nothing but these files may have appeared meanwhile.
	ours := map[string]bool{}
	for _, f := range files {
		ours[f.tmp] = true
	}
	if err := checkRestoreTargets(s, ours); err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	for i, f := range files {
		if err := os.Rename(f.tmp, f.final); err != nil {
			return nil, err
		}
		files[i].tmp = "" // nothing to remove
		dirs[filepath.Dir(f.final)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// checkRestoreTargets refuses a target that holds data, or a running
// server. Files in ours (restore's temporary files) do not count.
func checkRestoreTargets(s storeSettings, ours map[string]bool) error {
	if s.control != "" {
		if id, err := pingControl(s.control); err == nil {
			return fmt.Errorf("a Skywatch server (pid %d on %s) answers on %s: stop it first (systemctl stop skywatch)", id.PID, id.Node, s.control)
		} else if !errors.Is(err, errNoServer) {
			return fmt.Errorf("store.control_socket: %w", err)
		}
	}
	if _, err := os.Lstat(s.path); err == nil {
		return fmt.Errorf("store.path %s exists: restore writes only into an empty place; move it away (keep it until the restored Skywatch runs) or restore with a config naming another path", s.path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store.path: %w", err)
	}
	entries, err := os.ReadDir(s.records)
	entries = slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return ours[filepath.Join(s.records, e.Name())] })
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("store.records_dir: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("store.records_dir %s is not empty (%s ...): restore writes only into an empty place; move it away or restore with a config naming another directory", s.records, entries[0].Name())
	}
	return nil
}
