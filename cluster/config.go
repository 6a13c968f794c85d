package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"time"
)

// Config is one node's cluster settings, the `cluster:` section of the
// config file.
type Config struct {
	// Node is this node's id, unique in the cluster: [a-z0-9][a-z0-9-]{0,31}.
	Node string `yaml:"node"`
	// HTTPURL is where the other nodes reach this node's HTTP server
	// (http://10.0.0.11:8080), for proxying WHEP to a camera's owner.
	HTTPURL string `yaml:"http_url"`
	// WebRTCIPs are the addresses browsers reach this node's WebRTC ports
	// at. When empty the caller uses webrtc.public_ips, else the node's own
	// candidates.
	WebRTCIPs []string `yaml:"webrtc_ips"`
	// Failover is the lease and heartbeat TTL: a dead node's leases and
	// cameras are taken over within it. It defaults to 10 seconds; at
	// least 2 seconds.
	Failover time.Duration `yaml:"failover"`
}

// Defaults and bounds.
const (
	DefaultFailover = 10 * time.Second
	MinFailover     = 2 * time.Second
	// MaxFailover bounds how long a dead node's work may stay stuck.
	MaxFailover = 5 * time.Minute
	// MaxWebRTCIPs bounds cluster.webrtc_ips.
	MaxWebRTCIPs = 16
)

var nodeIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// SetDefaults fills the fields left empty.
func (c *Config) SetDefaults() {
	if c.Failover == 0 {
		c.Failover = DefaultFailover
	}
}

// RenewInterval is how often the heartbeat runs and leases are renewed:
// a quarter of the failover time.
func (c *Config) RenewInterval() time.Duration {
	f := c.Failover
	if f == 0 {
		f = DefaultFailover
	}
	return f / 4
}

// Validate checks the config as New would use it (a zero Failover means
// the default). Its messages name the key ("cluster.node: ...").
func (c *Config) Validate() error {
	var errs []error
	if err := ValidateNodeID(c.Node); err != nil {
		errs = append(errs, fmt.Errorf("cluster.node: %w", err))
	}
	if c.HTTPURL == "" {
		errs = append(errs, errors.New("cluster.http_url: required (where the other nodes reach this node's HTTP, e.g. http://10.0.0.11:8080)"))
	} else if u, err := url.Parse(c.HTTPURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("cluster.http_url: %q is not an http:// or https:// URL with a host", c.HTTPURL))
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		errs = append(errs, fmt.Errorf("cluster.http_url: %q must be scheme://host:port only", c.HTTPURL))
	}
	if len(c.WebRTCIPs) > MaxWebRTCIPs {
		errs = append(errs, fmt.Errorf("cluster.webrtc_ips: %d addresses, at most %d", len(c.WebRTCIPs), MaxWebRTCIPs))
	}
	for i, ip := range c.WebRTCIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("cluster.webrtc_ips[%d]: %q is not an IP address", i, ip))
		}
	}
	switch f := c.Failover; {
	case f == 0:
	case f < MinFailover:
		errs = append(errs, fmt.Errorf("cluster.failover: %s is less than the minimum %s", f, MinFailover))
	case f > MaxFailover:
		errs = append(errs, fmt.Errorf("cluster.failover: %s is more than the maximum %s", f, MaxFailover))
	}
	return errors.Join(errs...)
}

// ValidateNodeID checks a node id: [a-z0-9][a-z0-9-]{0,31}.
func ValidateNodeID(id string) error {
	if id == "" {
		return errors.New("required (this node's id, unique in the cluster, e.g. sky-a)")
	}
	if !nodeIDPattern.MatchString(id) {
		return fmt.Errorf("%q must be 1 to 32 lower-case letters, digits and '-', starting with a letter or digit", id)
	}
	return nil
}

var leaseNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// validateLeaseName checks a lease name, which becomes part of a key.
func validateLeaseName(name string) error {
	if !leaseNamePattern.MatchString(name) {
		return fmt.Errorf("cluster: lease name %q must be 1 to 64 of [a-z0-9_.-]", name)
	}
	return nil
}

// maxCameraID bounds a camera id, which becomes part of a key.
const maxCameraID = 256

// validateCameraID checks a camera id (a config id): not empty, bounded,
// no spaces, control or glob characters.
func validateCameraID(id string) error {
	if id == "" || len(id) > maxCameraID {
		return fmt.Errorf("cluster: camera id must be 1 to %d bytes", maxCameraID)
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f || r == '*' || r == '?' || r == '[' || r == ']' || r == '\\' {
			return fmt.Errorf("cluster: camera id %q has a space, control or glob character", id)
		}
	}
	return nil
}
