package ingest

import "time"

// SetMinBackoff shortens the first reconnect delay, for the external tests.
func SetMinBackoff(cfg *Config, d time.Duration) { cfg.minBackoff = d }
