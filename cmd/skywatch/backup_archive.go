package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms/boltstore"
)

// A backup archive is a tar (gzipped when its name ends in .gz) of
//
//	store.db            a snapshot of the embedded alarm store (store.path)
//	records/{name}      each file of the records directory (store.records_dir)
//	manifest.json       what the archive holds: formats, sizes, SHA-256s
//
// manifest.json comes last because it holds the checksums of the files
// before it, which are computed while they are streamed.
const (
	archiveKind    = "skywatch-backup"
	archiveVersion = 1
	archiveStore   = "store.db"
	archiveRecords = "records/"
	archiveMeta    = "manifest.json"
	// maxManifest bounds the manifest restore reads.
	maxManifest = 1 << 20
)

// manifest is manifest.json.
type manifest struct {
	Kind    string `json:"kind"`
	Version int    `json:"archive_version"`
	// Skywatch is the build that wrote the archive.
	Skywatch buildInfo `json:"skywatch"`
	Created  time.Time `json:"created"`
	// Node is the host name of the machine the backup was taken on.
	Node string `json:"node"`
	// TakenBy is "server" when the running server wrote the archive
	// through its control socket, "files" when the backup read the files
	// of a stopped server.
	TakenBy string `json:"taken_by"`
	// Formats are the format versions of the store and the records.
	Formats archiveFormats `json:"formats"`
	// Events is the number of alarm events in the store.
	Events int            `json:"events"`
	Files  []archiveEntry `json:"files"`
}

type archiveFormats struct {
	Store   int `json:"store"`
	Records int `json:"records"`
}

type archiveEntry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type buildInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Go       string `json:"go"`
}

// currentBuild is this binary's version, from the build information Go
// records.
func currentBuild() buildInfo {
	b := buildInfo{Version: "(unknown)"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Go = info.GoVersion
	b.Version = info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			b.Revision = s.Value
		}
	}
	return b
}

// backupSource is what an archive is made of: the running server's store
// and records, or the files of a stopped server.
type backupSource struct {
	takenBy string
	store   func(fn func(boltstore.Snapshot) error) error
	records func(fn func(accounts.RecordsFile) error) error
	// recordsFormat is the records' format version.
	recordsFormat int
}

// writeArchive writes the archive of src to w and returns its manifest.
func writeArchive(w io.Writer, src backupSource) (*manifest, error) {
	host, _ := os.Hostname()
	m := &manifest{
		Kind:     archiveKind,
		Version:  archiveVersion,
		Skywatch: currentBuild(),
		Created:  time.Now().UTC(),
		Node:     host,
		TakenBy:  src.takenBy,
		Formats:  archiveFormats{Records: src.recordsFormat},
	}
	tw := tar.NewWriter(w)
	add := func(name string, size int64, write func(io.Writer) (int64, error)) error {
		hdr := &tar.Header{Name: name, Size: size, Mode: 0o600, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		h := sha256.New()
		n, err := write(io.MultiWriter(tw, h))
		if err == nil && n != size {
			err = fmt.Errorf("wrote %d bytes, expected %d", n, size)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		m.Files = append(m.Files, archiveEntry{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	}
	err := src.store(func(snap boltstore.Snapshot) error {
		var err error
		if m.Formats.Store, err = snap.Format(); err != nil {
			return err
		}
		// A stopped store of a newer Skywatch is copied all the same (the
		// copy is bbolt's, whatever the layout): its archive says its
		// format, so only a Skywatch that reads it will restore it.
		m.Events = snap.Events()
		return add(archiveStore, snap.Size(), snap.WriteTo)
	})
	if err != nil {
		return nil, err
	}
	err = src.records(func(f accounts.RecordsFile) error {
		return add(archiveRecords+f.Name, f.Size, func(w io.Writer) (int64, error) { return io.Copy(w, f.Body) })
	})
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	if err := add(archiveMeta, int64(len(data)), func(w io.Writer) (int64, error) {
		n, err := w.Write(data)
		return int64(n), err
	}); err != nil {
		return nil, err
	}
	m.Files = m.Files[:len(m.Files)-1] // the manifest does not list itself
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return m, nil
}

// Errors of reading an archive.
var (
	errArchiveChecksum = errors.New("checksum mismatch")
	errArchiveFormat   = errors.New("written by a newer Skywatch")
)

// openArchive opens an archive file for reading, gunzipping it when it is
// gzipped (by its content, whatever its name).
func openArchive(name string) (io.Reader, func() error, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	magic, _ := br.Peek(2)
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return zr, f.Close, nil
	}
	return br, f.Close, nil
}

// readArchive reads an archive through, calling fn (when not nil) with
// each file but the manifest, and checks it: every file is one the
// manifest lists, with its size and SHA-256, none is missing, and its
// formats are ones this Skywatch reads. fn's writes count only when
// readArchive returns no error.
func readArchive(name string, fn func(hdr *tar.Header, r io.Reader) error) (*manifest, error) {
	r, closeFile, err := openArchive(name)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	tr := tar.NewReader(r)
	sums := map[string]archiveEntry{}
	var m *manifest
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: not a readable archive: %w", name, err)
		}
		if m != nil {
			return nil, fmt.Errorf("%s: %s after the manifest: not an archive skywatch backup wrote", name, hdr.Name)
		}
		if hdr.Name == archiveMeta {
			if m, err = readManifest(tr); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		if err := checkEntryName(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if _, dup := sums[hdr.Name]; dup {
			return nil, fmt.Errorf("%s: %s appears twice", name, hdr.Name)
		}
		h := sha256.New()
		body := &readErr{r: io.TeeReader(tr, h)}
		if fn != nil {
			err = fn(hdr, body)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, body)
		}
		if body.err != nil {
			return nil, fmt.Errorf("%s: %s: %w (the archive is cut short or damaged)", name, hdr.Name, body.err)
		}
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
		sums[hdr.Name] = archiveEntry{Name: hdr.Name, Size: hdr.Size, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
	if m == nil {
		return nil, fmt.Errorf("%s: no %s: not a whole archive of skywatch backup", name, archiveMeta)
	}
	listed := map[string]bool{}
	for _, want := range m.Files {
		listed[want.Name] = true
		got, ok := sums[want.Name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: %s is in the manifest but not in the archive", name, want.Name)
		case got.Size != want.Size || got.SHA256 != want.SHA256:
			return nil, fmt.Errorf("%s: %s: %w (the archive is damaged: use another backup)", name, want.Name, errArchiveChecksum)
		}
	}
	for n := range sums {
		if !listed[n] {
			return nil, fmt.Errorf("%s: %s is not in the manifest", name, n)
		}
	}
	if !listed[archiveStore] {
		return nil, fmt.Errorf("%s: the manifest lists no %s", name, archiveStore)
	}
	return m, nil
}

// readManifest reads and checks manifest.json: its kind, and versions
// this Skywatch reads.
func readManifest(r io.Reader) (*manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archiveMeta, err)
	}
	if len(data) > maxManifest {
		return nil, fmt.Errorf("%s: larger than %d bytes", archiveMeta, maxManifest)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", archiveMeta, err)
	}
	if m.Kind != archiveKind {
		return nil, fmt.Errorf("%s: kind %q: not an archive of skywatch backup", archiveMeta, m.Kind)
	}
	newer := func(what string, found, reads int) error {
		return fmt.Errorf("%s: %w: %s format %d, this Skywatch reads up to %d: restore it with the Skywatch that took it (%s) or a newer one, and run that version",
			archiveMeta, errArchiveFormat, what, found, reads, buildName(m.Skywatch))
	}
	switch {
	case m.Version > archiveVersion:
		return nil, newer("archive", m.Version, archiveVersion)
	case m.Formats.Store > boltstore.FormatVersion:
		return nil, newer("store", m.Formats.Store, boltstore.FormatVersion)
	case m.Formats.Records > accounts.RecordsFormatVersion:
		return nil, newer("records", m.Formats.Records, accounts.RecordsFormatVersion)
	}
	return &m, nil
}

func buildName(b buildInfo) string {
	if b.Revision != "" && (b.Version == "" || b.Version == "(devel)") {
		return b.Version + " " + b.Revision
	}
	return b.Version
}

// checkEntryName accepts only the files an archive holds: the store and
// plain file names under records/, so that a crafted archive cannot write
// outside the data directory.
func checkEntryName(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("%s: not a regular file", hdr.Name)
	}
	if hdr.Name == archiveStore {
		return nil
	}
	base, ok := strings.CutPrefix(hdr.Name, archiveRecords)
	if !ok || base == "" || base != path.Base(base) || strings.HasPrefix(base, ".") || strings.ContainsAny(base, `/\`) {
		return fmt.Errorf("%s: not a file skywatch backup writes", hdr.Name)
	}
	return nil
}

// readErr remembers the error of reading the archive, to tell it from an
// error of writing what was read.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}
