package recorder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Check looks at the disk for a validated config (what `skywatch check`
// adds to Validate): recordings.path exists and is writable, or can be
// created; max_bytes and min_free fit the disk's size. It returns
// warnings for what works but is likely a mistake. Nothing is checked when
// no camera records.
func (c *Config) Check() (warnings []string, err error) {
	if !c.Recording() || c.Path == "" {
		return nil, nil
	}
	dir, exists, err := existingAncestor(c.Path)
	if err != nil {
		return nil, fmt.Errorf("recordings.path: %w", err)
	}
	if exists {
		f, err := os.CreateTemp(dir, ".skywatch-check-*")
		if err != nil {
			return nil, fmt.Errorf("recordings.path: not writable: %w", err)
		}
		f.Close()
		_ = os.Remove(f.Name())
	} else if err := syscall.Access(dir, 2|1); err != nil { // W_OK|X_OK
		return nil, fmt.Errorf("recordings.path: cannot be created in %s: %w", dir, err)
	}
	free, total, err := statfs(dir)
	if err != nil {
		return nil, fmt.Errorf("recordings.path: %w", err)
	}
	var errs []error
	if c.MaxBytes > 0 && uint64(c.MaxBytes) > total {
		errs = append(errs, fmt.Errorf("recordings.max_bytes: %s is more than the disk's size (%s)", c.MaxBytes, Size(total)))
	}
	if uint64(c.MinFree) >= total {
		errs = append(errs, fmt.Errorf("recordings.min_free: %s is not less than the disk's size (%s)", c.MinFree, Size(total)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.MaxBytes > 0 && uint64(c.MaxBytes)+uint64(c.MinFree) > total {
		warnings = append(warnings, fmt.Sprintf("recordings.max_bytes: %s and min_free %s are more than the disk (%s): min_free decides",
			c.MaxBytes, c.MinFree, Size(total)))
	}
	if uint64(c.MinFree) > free {
		warnings = append(warnings, fmt.Sprintf("recordings.min_free: the disk has %s free, less than %s: recording deletes old segments at once, or stops",
			Size(free), c.MinFree))
	}
	return warnings, nil
}

// existingAncestor returns path if it exists (it must be a directory), or
// its nearest ancestor that does.
func existingAncestor(path string) (string, bool, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", false, err
	}
	exists := true
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return "", false, fmt.Errorf("%s is not a directory", p)
			}
			return p, exists, nil
		}
		if !os.IsNotExist(err) {
			return "", false, err
		}
		exists = false
		parent := filepath.Dir(p)
		if parent == p {
			return "", false, err
		}
		p = parent
	}
}
