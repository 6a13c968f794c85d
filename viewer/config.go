package viewer

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Config is the viewer's configuration. The zero value of a field means its
// default, except TCPAddress (see there).
type Config struct {
	// HTTPAddress is where the page, the API, WHEP, /metrics, /healthz and
	// /readyz listen. It defaults to 127.0.0.1:8080.
	HTTPAddress string

	// UDPAddress is the one UDP address that carries the media of every
	// viewer (ICE UDP mux). With no host (":8189") every interface's
	// address is announced. It defaults to :8189.
	UDPAddress string

	// TCPAddress is the ICE-TCP listener for viewers whose network blocks
	// UDP. Empty turns ICE-TCP off; DefaultConfig sets :8189.
	TCPAddress string

	// PublicIPs are the addresses viewers reach this server at when it sits
	// behind a 1:1 NAT. They are announced in addition to the local ones, so
	// that viewers on the local network still connect directly.
	PublicIPs []string
}

// Defaults of Config.
const (
	DefaultHTTPAddress = "127.0.0.1:8080"
	DefaultUDPAddress  = ":8189"
	DefaultTCPAddress  = ":8189"
)

// DefaultConfig returns the configuration used when the file says nothing.
func DefaultConfig() Config {
	return Config{
		HTTPAddress: DefaultHTTPAddress,
		UDPAddress:  DefaultUDPAddress,
		TCPAddress:  DefaultTCPAddress,
	}
}

// withDefaults fills empty fields that have a default. TCPAddress is left
// alone: empty means off.
func (c Config) withDefaults() Config {
	if c.HTTPAddress == "" {
		c.HTTPAddress = DefaultHTTPAddress
	}
	if c.UDPAddress == "" {
		c.UDPAddress = DefaultUDPAddress
	}
	return c
}

// Validate checks the configuration; its messages name the config key.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := validateHostPort(c.HTTPAddress, true); err != nil {
		errs = append(errs, fmt.Errorf("http.address: %w", err))
	}
	if err := validateHostPort(c.UDPAddress, false); err != nil {
		errs = append(errs, fmt.Errorf("webrtc.udp_address: %w", err))
	}
	if c.TCPAddress != "" {
		if err := validateHostPort(c.TCPAddress, false); err != nil {
			errs = append(errs, fmt.Errorf("webrtc.tcp_address: %w", err))
		}
	}
	for i, ip := range c.PublicIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("webrtc.public_ips[%d]: %q is not an IP address", i, ip))
		}
	}
	return errors.Join(errs...)
}

// validateHostPort checks host:port. ICE addresses must have an IP (or no
// host) because the host is what gets announced in candidates.
func validateHostPort(addr string, nameAllowed bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", addr, err)
	}
	if !nameAllowed && host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: host must be an IP address or empty", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}
