package ingest

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Transport values of CameraConfig.Transport.
const (
	// TransportAuto tries UDP and falls back to TCP when no UDP packet
	// arrives (or the camera refuses UDP).
	TransportAuto = "auto"
	TransportUDP  = "udp"
	TransportTCP  = "tcp"
)

// Mode values of CameraConfig.Mode.
const (
	// ModeOnDemand pulls a camera while it has readers, and for Linger after
	// the last one leaves.
	ModeOnDemand = "on_demand"
	// ModeAlways pulls a camera from Manager.Start to Manager.Close.
	ModeAlways = "always"
)

// Defaults of Config.
const (
	DefaultReadTimeout  = 10 * time.Second
	DefaultLinger       = 10 * time.Second
	DefaultReadyTimeout = 8 * time.Second
	DefaultQueueSize    = 512
)

// Config is the ingest section of the configuration. Zero values take the
// defaults.
type Config struct {
	// ReadTimeout closes and reconnects a camera that sent no RTP packet for
	// this long. It defaults to 10 s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// Linger keeps an on-demand camera pulled this long after its last reader
	// left, so that a page reload does not reconnect. It defaults to 10 s.
	Linger time.Duration `yaml:"linger"`
	// ReadyTimeout bounds how long AddReader waits for a starting camera. It
	// defaults to 8 s.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	// QueueSize is the length of each reader's queue, in units. It defaults
	// to 512. A reader that starts on a cached keyframe group longer than
	// that gets room for the group plus half the queue size.
	QueueSize int `yaml:"queue_size"`
	// Cameras lists the cameras; IDs are unique.
	Cameras []CameraConfig `yaml:"cameras"`

	// minBackoff is the first reconnect delay (1 s); tests shorten it.
	minBackoff time.Duration
}

// CameraConfig configures one camera.
type CameraConfig struct {
	// ID names the camera in the API and in URLs: letters, digits, '-', '_'
	// and '.'.
	ID string `yaml:"id"`
	// Name is shown to operators. It defaults to ID.
	Name string `yaml:"name"`
	// URL is the rtsp:// or rtsps:// URL of the main (full resolution)
	// stream, without credentials.
	URL string `yaml:"url"`
	// SubURL is the URL of the camera's sub (low resolution) stream, if it
	// has one; "" if not. It is pulled as a stream of its own, with the same
	// credentials, transport and mode as URL.
	SubURL string `yaml:"sub_url"`
	// Username and Password authenticate at the camera (digest or basic).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Transport is "auto" (default), "udp" or "tcp".
	Transport string `yaml:"transport"`
	// Mode is "on_demand" (default) or "always".
	Mode string `yaml:"mode"`
}

const maxQueueSize = 1 << 16

func (c *Config) setDefaults() {
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.minBackoff == 0 {
		c.minBackoff = time.Second
	}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		if cam.Name == "" {
			cam.Name = cam.ID
		}
		if cam.Transport == "" {
			cam.Transport = TransportAuto
		}
		if cam.Mode == "" {
			cam.Mode = ModeOnDemand
		}
	}
}

// Validate checks the configuration. Zero values are valid (they take the
// defaults). Every message names its key, as in
// "cameras[3].url: scheme must be rtsp or rtsps".
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.ReadTimeout < 0 {
		add("read_timeout", "must not be negative")
	}
	if c.Linger < 0 {
		add("linger", "must not be negative")
	}
	if c.ReadyTimeout < 0 {
		add("ready_timeout", "must not be negative")
	}
	if c.QueueSize < 0 || c.QueueSize > maxQueueSize {
		add("queue_size", "must be between 1 and %d", maxQueueSize)
	}
	seen := make(map[string]int, len(c.Cameras))
	for i, cam := range c.Cameras {
		key := fmt.Sprintf("cameras[%d]", i)
		switch {
		case cam.ID == "":
			add(key+".id", "must not be empty")
		case !validID(cam.ID):
			add(key+".id", "%q must contain only letters, digits, '-', '_' and '.'", cam.ID)
		default:
			if j, dup := seen[cam.ID]; dup {
				add(key+".id", "duplicate %q (also cameras[%d])", cam.ID, j)
			} else {
				seen[cam.ID] = i
			}
		}
		if msg := checkURL(cam.URL); msg != "" {
			add(key+".url", "%s", msg)
		}
		if cam.SubURL != "" {
			if msg := checkURL(cam.SubURL); msg != "" {
				add(key+".sub_url", "%s", msg)
			} else if cam.SubURL == cam.URL {
				add(key+".sub_url", "same as url: leave it out when the camera has no sub stream")
			}
		}
		if cam.Password != "" && cam.Username == "" {
			add(key+".password", "set without username")
		}
		switch cam.Transport {
		case "", TransportAuto, TransportUDP, TransportTCP:
		default:
			add(key+".transport", "must be auto, udp or tcp, not %q", cam.Transport)
		}
		switch cam.Mode {
		case "", ModeOnDemand, ModeAlways:
		default:
			add(key+".mode", "must be on_demand or always, not %q", cam.Mode)
		}
	}
	return errors.Join(errs...)
}

func validID(id string) bool {
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// checkURL returns what is wrong with a camera URL, or "". The message never
// repeats the URL, which might carry a password by mistake.
func checkURL(s string) string {
	if s == "" {
		return "must not be empty"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid URL"
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return "scheme must be rtsp or rtsps"
	}
	if u.User != nil {
		return "must not contain credentials: use username and password"
	}
	if u.Host == "" {
		return "must have a host"
	}
	return ""
}
