package ingest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrCameraRemoved ends the readers of a camera that a configuration
// change removed (Manager.Apply): Reader.Read returns an error wrapping it
// (and ErrReaderClosed). AddReader of such a camera fails with an error
// wrapping it and ErrUnknownCamera.
var ErrCameraRemoved = errors.New("camera removed from the configuration")

// ErrCameraChanged ends the readers of a camera whose pulling settings a
// configuration change modified (URL, sub URL, credentials, transport or
// mode): Reader.Read returns an error wrapping it (and ErrReaderClosed).
// The camera is pulled again with the new settings; a reader added again
// reads it.
var ErrCameraChanged = errors.New("camera settings changed")

// CameraChanges says what Manager.Apply changed: camera IDs, sorted.
type CameraChanges struct {
	// Added are new cameras; Changed those whose pulling settings changed
	// (the sessions of the streams concerned were restarted and their
	// readers ended); Removed those no longer configured (stopped, readers
	// ended).
	Added, Changed, Removed []string
	// Renamed are cameras whose name only changed: their sessions and
	// readers go on.
	Renamed []string
	// RestartOnly names the manager-wide settings that differ from the
	// running ones and take effect only after a restart, as
	// "ingest.read_timeout". They are not an error: the cameras are
	// applied all the same.
	RestartOnly []string
}

// Apply changes the cameras to those of cfg, a validated configuration
// (Config.Validate), in place:
//   - a camera whose pulling settings are the same keeps its RTSP sessions,
//     readers, holds and statistics; a new name is shown at once;
//   - a camera whose main stream's settings (URL, username, password,
//     transport, mode) changed has its main source closed, its readers
//     ended with ErrCameraChanged, and a new source that starts per its
//     mode once the old session is closed; the same goes for the sub
//     stream (sub URL and the shared settings). A stream whose settings
//     did not change goes on;
//   - a removed camera is closed: its readers end with ErrCameraRemoved,
//     its sessions close, its lease (with a Gate) is released, its metrics
//     series go;
//   - an added camera starts when its mode is "always" (with a Gate, it is
//     claimed at once).
//
// Apply returns once the sessions of the removed and changed streams are
// closed. Manager-wide settings are not changed (see
// CameraChanges.RestartOnly). It fails only after Close.
func (m *Manager) Apply(cfg Config) (CameraChanges, error) {
	cfg.Cameras = slices.Clone(cfg.Cameras)
	cfg.setDefaults()

	m.mu.Lock()
	defer m.mu.Unlock()
	var ch CameraChanges
	if m.closed {
		return ch, ErrManagerClosed
	}
	ch.RestartOnly = m.restartOnly(cfg)

	old := m.set.Load()
	next := &cameraSet{byID: make(map[string]*camera, len(cfg.Cameras)), removed: maps.Clone(old.removed)}
	if next.removed == nil {
		next.removed = map[string]bool{}
	}
	var stopped []<-chan struct{} // runs of the closed sources
	var started []*source         // new sources
	for _, cc := range cfg.Cameras {
		delete(next.removed, cc.ID)
		prev := old.byID[cc.ID]
		if prev == nil {
			c := m.newCamera(cc, nil)
			next.add(c)
			started = append(started, c.sources()...)
			ch.Added = append(ch.Added, cc.ID)
			continue
		}
		why := fmt.Errorf("camera %s: %w", cc.ID, ErrCameraChanged)
		c := &camera{id: cc.ID, name: cc.Name, cfg: cc, lease: prev.lease}
		changed := false
		if samePull(prev.cfg, cc, streamMain) {
			c.main = prev.main
		} else {
			done := prev.main.close(why)
			stopped = append(stopped, done)
			c.main = m.newSource(cc, streamMain, c.lease, done)
			started = append(started, c.main)
			changed = true
		}
		switch {
		case prev.sub == nil && cc.SubURL == "":
		case prev.sub != nil && cc.SubURL != "" && samePull(prev.cfg, cc, streamSub):
			c.sub = prev.sub
		default:
			var done <-chan struct{}
			if prev.sub != nil {
				done = prev.sub.close(why)
				stopped = append(stopped, done)
			}
			if cc.SubURL != "" {
				c.sub = m.newSource(cc, streamSub, c.lease, done)
				started = append(started, c.sub)
			}
			changed = true
		}
		next.add(c)
		switch {
		case changed:
			ch.Changed = append(ch.Changed, cc.ID)
		case prev.name != cc.Name:
			ch.Renamed = append(ch.Renamed, cc.ID)
		}
	}
	for _, id := range old.ids {
		if next.byID[id] != nil {
			continue
		}
		why := fmt.Errorf("camera %s: %w", id, ErrCameraRemoved)
		for _, s := range old.byID[id].sources() {
			stopped = append(stopped, s.close(why))
		}
		if len(next.removed) < maxRemoved {
			next.removed[id] = true
		}
		ch.Removed = append(ch.Removed, id)
	}
	slices.Sort(next.ids)
	m.set.Store(next)

	if m.started {
		if m.gate != nil {
			m.Rebalance()
		} else {
			for _, s := range started {
				if !s.onDemand() {
					s.start()
				}
			}
		}
	}
	for _, ids := range [][]string{ch.Added, ch.Changed, ch.Removed, ch.Renamed} {
		slices.Sort(ids)
	}
	if len(ch.Added)+len(ch.Changed)+len(ch.Removed)+len(ch.Renamed) > 0 {
		m.logger.Info("cameras applied", "added", ch.Added, "changed", ch.Changed,
			"removed", ch.Removed, "renamed", ch.Renamed)
	}
	for _, done := range stopped {
		<-done
	}
	return ch, nil
}

// samePull tells whether one stream of a camera is pulled the same way
// under a and b: its URL, the credentials, the transport and the mode.
func samePull(a, b CameraConfig, stream string) bool {
	if stream == streamMain && a.URL != b.URL || stream == streamSub && a.SubURL != b.SubURL {
		return false
	}
	return a.Username == b.Username && a.Password == b.Password &&
		a.Transport == b.Transport && a.Mode == b.Mode
}

// restartOnly names the manager-wide settings of cfg (defaults set) that
// differ from the running ones.
func (m *Manager) restartOnly(cfg Config) []string {
	var keys []string
	if cfg.ReadTimeout != m.cfg.ReadTimeout {
		keys = append(keys, "ingest.read_timeout")
	}
	if cfg.Linger != m.cfg.Linger {
		keys = append(keys, "ingest.linger")
	}
	if cfg.QueueSize != m.cfg.QueueSize {
		keys = append(keys, "ingest.queue_size")
	}
	if cfg.ReadyTimeout != m.cfg.ReadyTimeout {
		keys = append(keys, "ingest.ready_timeout")
	}
	slices.Sort(keys)
	return keys
}
