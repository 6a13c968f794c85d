package ingest

import "errors"

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
	// (their sessions were restarted and their readers ended); Removed
	// those no longer configured (stopped, readers ended).
	Added, Changed, Removed []string
	// Renamed are cameras whose name only changed: their sessions and
	// readers go on.
	Renamed []string
	// RestartOnly names the manager-wide settings that differ from the
	// running ones and take effect only after a restart, as
	// "ingest.read_timeout". They are not an error: the rest is applied.
	RestartOnly []string
}

// Apply changes the cameras to those of cfg, a validated configuration
// (Config.Validate), in place. Cameras that did not change keep their RTSP
// sessions and readers. See CameraChanges.
func (m *Manager) Apply(cfg Config) (CameraChanges, error) {
	return CameraChanges{}, errors.New("ingest: Apply not implemented yet")
}
