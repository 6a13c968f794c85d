package hardware

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Vendor names a camera maker whose RTSP URL layout Skywatch knows.
type Vendor string

// Supported vendors.
const (
	VendorHikvision Vendor = "hikvision"
	VendorDahua     Vendor = "dahua"
	VendorUniview   Vendor = "uniview"
	// VendorGeneric is any other camera; its profile needs an explicit Path.
	VendorGeneric Vendor = "generic"
)

// StreamKind selects a camera's main (full resolution) or sub (low
// resolution) stream.
type StreamKind string

// Stream kinds.
const (
	StreamMain StreamKind = "main"
	StreamSub  StreamKind = "sub"
)

// DefaultRTSPPort is the port cameras serve RTSP on unless configured otherwise.
const DefaultRTSPPort = 554

// Errors returned by CameraProfile.Endpoint; match them with errors.Is.
var (
	ErrUnknownVendor  = errors.New("unknown vendor")
	ErrInvalidProfile = errors.New("invalid camera profile")
)

// Vendors lists the supported vendors, for config validation and help texts.
func Vendors() []Vendor {
	return []Vendor{VendorHikvision, VendorDahua, VendorUniview, VendorGeneric}
}

// ParseVendor returns the vendor named name (case-insensitive). An unknown
// name gives an error that wraps ErrUnknownVendor and names the vendor.
func ParseVendor(name string) (Vendor, error) {
	v := Vendor(strings.ToLower(strings.TrimSpace(name)))
	for _, known := range Vendors() {
		if v == known {
			return v, nil
		}
	}
	names := make([]string, 0, len(Vendors()))
	for _, known := range Vendors() {
		names = append(names, string(known))
	}
	return "", fmt.Errorf("vendor %q: %w (supported: %s)", name, ErrUnknownVendor, strings.Join(names, ", "))
}

// HasSubStream tells whether Skywatch knows where the vendor's cameras
// serve their sub stream. A generic camera's paths are its own.
func (v Vendor) HasSubStream() bool {
	switch Vendor(strings.ToLower(string(v))) {
	case VendorHikvision, VendorDahua, VendorUniview:
		return true
	}
	return false
}

// CameraProfile describes how to reach one camera stream. Field errors from
// Endpoint name the field in lower case ("channel: ..."), so a config loader
// can prefix its own key ("cameras[3].").
type CameraProfile struct {
	// Vendor is one of Vendors().
	Vendor Vendor
	// Host is the camera's IP address or host name, without port.
	Host string
	// Port defaults to 554.
	Port int
	// Username and Password are the camera's RTSP credentials (optional).
	Username string
	Password string
	// Channel is the 1-based channel of an NVR or multi-sensor camera.
	// It defaults to 1.
	Channel int
	// Stream defaults to StreamMain.
	Stream StreamKind
	// Path is the RTSP path, with an optional query, of a generic camera
	// ("/live/ch0" or "/media?stream=0"). Only for VendorGeneric.
	Path string
}

// RTSPEndpoint is where to pull a camera from. URL never holds credentials:
// they are attached only when dialling, so the URL is safe to log.
type RTSPEndpoint struct {
	URL      *url.URL
	Username string
	Password string
}

// String returns the URL without credentials.
func (e RTSPEndpoint) String() string {
	if e.URL == nil {
		return ""
	}
	return e.URL.String()
}

// PathQuery returns the URL's path with its query, if any, as
// CameraPath.Path takes it: "/cam/realmonitor?channel=1&subtype=0".
func (e RTSPEndpoint) PathQuery() string {
	if e.URL == nil {
		return ""
	}
	p := e.URL.EscapedPath()
	if e.URL.RawQuery != "" {
		p += "?" + e.URL.RawQuery
	}
	return p
}

// Endpoints returns the endpoint of the profile's stream and, when the
// profile selects the main stream of a vendor whose sub stream Skywatch
// knows (Vendor.HasSubStream), the endpoint of the same camera's sub
// stream. sub is nil for a generic camera and for a profile that selects
// the sub stream itself.
func (p CameraProfile) Endpoints() (main RTSPEndpoint, sub *RTSPEndpoint, err error) {
	main, err = p.Endpoint()
	if err != nil {
		return RTSPEndpoint{}, nil, err
	}
	if !p.Vendor.HasSubStream() || p.Stream == StreamSub {
		return main, nil, nil
	}
	p.Stream = StreamSub
	ep, err := p.Endpoint()
	if err != nil {
		return RTSPEndpoint{}, nil, err
	}
	return main, &ep, nil
}

// Endpoint builds the RTSP URL that the profile's camera serves:
//   - hikvision: /Streaming/Channels/{channel}01 (main) or {channel}02 (sub)
//   - dahua: /cam/realmonitor?channel={channel}&subtype=0 (main) or 1 (sub)
//   - uniview: /unicast/c{channel}/s0/live (main) or s1 (sub)
//   - generic: Path as given
func (p CameraProfile) Endpoint() (RTSPEndpoint, error) {
	vendor, err := ParseVendor(string(p.Vendor))
	if err != nil {
		return RTSPEndpoint{}, err
	}
	if p.Host == "" || strings.ContainsAny(p.Host, "/@?#[] ") {
		return RTSPEndpoint{}, fmt.Errorf("host %q: must be an IP address or host name: %w", p.Host, ErrInvalidProfile)
	}
	port := p.Port
	if port == 0 {
		port = DefaultRTSPPort
	}
	if port < 1 || port > 65535 {
		return RTSPEndpoint{}, fmt.Errorf("port %d: must be 1-65535: %w", p.Port, ErrInvalidProfile)
	}
	channel := p.Channel
	if channel == 0 {
		channel = 1
	}
	if channel < 1 {
		return RTSPEndpoint{}, fmt.Errorf("channel %d: must be 1 or more: %w", p.Channel, ErrInvalidProfile)
	}
	sub := false
	switch p.Stream {
	case "", StreamMain:
	case StreamSub:
		sub = true
	default:
		return RTSPEndpoint{}, fmt.Errorf("stream %q: must be main or sub: %w", p.Stream, ErrInvalidProfile)
	}
	if p.Username == "" && p.Password != "" {
		return RTSPEndpoint{}, fmt.Errorf("username: required when a password is set: %w", ErrInvalidProfile)
	}
	if vendor != VendorGeneric && p.Path != "" {
		return RTSPEndpoint{}, fmt.Errorf("path: only for vendor generic, %s builds its own: %w", vendor, ErrInvalidProfile)
	}

	u := &url.URL{
		Scheme: "rtsp",
		Host:   net.JoinHostPort(p.Host, strconv.Itoa(port)),
	}
	ch := strconv.Itoa(channel)
	switch vendor {
	case VendorHikvision:
		u.Path = "/Streaming/Channels/" + ch + pick(sub, "02", "01")
	case VendorDahua:
		u.Path = "/cam/realmonitor"
		u.RawQuery = "channel=" + ch + "&subtype=" + pick(sub, "1", "0")
	case VendorUniview:
		u.Path = "/unicast/c" + ch + "/" + pick(sub, "s1", "s0") + "/live"
	case VendorGeneric:
		if !strings.HasPrefix(p.Path, "/") {
			return RTSPEndpoint{}, fmt.Errorf("path %q: generic cameras need a path starting with /: %w", p.Path, ErrInvalidProfile)
		}
		path, query, _ := strings.Cut(p.Path, "?")
		u.Path = path
		u.RawQuery = query
	}
	return RTSPEndpoint{URL: u, Username: p.Username, Password: p.Password}, nil
}

func pick(cond bool, ifTrue, ifFalse string) string {
	if cond {
		return ifTrue
	}
	return ifFalse
}
