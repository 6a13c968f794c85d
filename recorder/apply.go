package recorder

import "errors"

// Apply changes the cameras' record settings to those of cfg (validated:
// SetDefaults, Validate). Cameras whose record mode or stream changed, that
// were added or removed start or stop recording; what is on disk stays.
// Recorder-wide settings are not changed: RestartOnly names those that
// differ.
func (r *Recorder) Apply(cfg Config) error {
	return errors.New("recorder: Apply not implemented yet")
}

// RestartOnly names the recorder-wide settings of cfg that differ from the
// running ones and take effect only after a restart, keyed as in the
// config file ("recordings.path", "evidence.keep"), sorted.
func (r *Recorder) RestartOnly(cfg Config) []string {
	return nil
}
