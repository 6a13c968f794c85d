package alarms

import "time"

// authCacheFlush is how often new verified credentials are written to the
// cache file: a restart loses at most this much of them.
const authCacheFlush = 2 * time.Second

// openAuthCache loads the verified-credential cache, when it has a file,
// and starts its writer.
func (in *Intake) openAuthCache() error {
	cfg := in.cfg.MQTT.Auth
	if cfg.CacheFile == "" {
		return nil
	}
	if err := in.creds.verified.open(cfg, func(user string) bool { return in.creds.user(user) != nil }); err != nil {
		return err
	}
	in.spawn(func() {
		t := time.NewTicker(authCacheFlush)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-in.life.Done():
				return
			case <-t.C:
			}
			err := in.creds.verified.save()
			if err != nil && !failing {
				in.logger.Warn("alarms: cannot save the verified-credential cache", "error", err)
			}
			failing = err != nil
		}
	})
	return nil
}

// saveAuthCache writes what the writer has not written yet, at Close.
func (in *Intake) saveAuthCache() {
	if err := in.creds.verified.save(); err != nil {
		in.logger.Warn("alarms: cannot save the verified-credential cache", "error", err)
	}
}
