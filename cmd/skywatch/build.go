package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/viewer"
)

// settings are the package configs built from a config file.
type settings struct {
	log    logConfig
	ingest ingest.Config
	viewer viewer.Config
}

// buildSettings maps the file onto each package's config and validates them
// all, so that `check` can print every problem at once, each with its key.
func buildSettings(fc *fileConfig) (*settings, error) {
	var errs []error
	if _, err := newLogger(fc.Log, nil); err != nil {
		errs = append(errs, err)
	}

	ic := ingest.Config{
		ReadTimeout:  fc.Ingest.ReadTimeout,
		Linger:       fc.Ingest.Linger,
		ReadyTimeout: fc.Ingest.ReadyTimeout,
		QueueSize:    fc.Ingest.QueueSize,
	}
	for i, cam := range fc.Cameras {
		cc, err := cameraSettings(cam)
		if err != nil {
			errs = append(errs, fmt.Errorf("cameras[%d].%w", i, err))
		}
		ic.Cameras = append(ic.Cameras, cc)
	}
	if err := ic.Validate(); err != nil {
		errs = append(errs, prefixErrors("", err)...)
	}

	vc := viewer.DefaultConfig()
	if fc.HTTP.Address != "" {
		vc.HTTPAddress = fc.HTTP.Address
	}
	if fc.WebRTC.UDPAddress != "" {
		vc.UDPAddress = fc.WebRTC.UDPAddress
	}
	switch fc.WebRTC.TCPAddress {
	case "":
	case "off":
		vc.TCPAddress = ""
	default:
		vc.TCPAddress = fc.WebRTC.TCPAddress
	}
	vc.PublicIPs = fc.WebRTC.PublicIPs
	if err := vc.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &settings{log: fc.Log, ingest: ic, viewer: vc}, nil
}

// cameraSettings turns one camera entry into ingest's form, building the
// RTSP URL from the vendor profile when no URL is given. Errors start with
// the key inside the entry ("vendor: ...").
func cameraSettings(cam cameraConfig) (ingest.CameraConfig, error) {
	cc := ingest.CameraConfig{
		ID:        cam.ID,
		Name:      cam.Name,
		URL:       cam.URL,
		Username:  cam.Username,
		Password:  cam.Password,
		Transport: cam.Transport,
		Mode:      cam.Mode,
	}
	if cam.Vendor == "" {
		if cam.Host != "" || cam.Channel != 0 || cam.Stream != "" || cam.Path != "" || cam.Port != 0 {
			return cc, errors.New("vendor: host, port, channel, stream and path need a vendor (or give url instead)")
		}
		return cc, nil
	}
	if cam.URL != "" {
		return cc, errors.New("url: give either url or vendor with host, not both")
	}
	vendor, err := hardware.ParseVendor(cam.Vendor)
	if err != nil {
		return cc, fmt.Errorf("vendor: %w", err)
	}
	ep, err := hardware.CameraProfile{
		Vendor:   vendor,
		Host:     cam.Host,
		Port:     cam.Port,
		Username: cam.Username,
		Password: cam.Password,
		Channel:  cam.Channel,
		Stream:   hardware.StreamKind(strings.ToLower(cam.Stream)),
		Path:     cam.Path,
	}.Endpoint()
	if err != nil {
		return cc, err
	}
	cc.URL = ep.URL.String()
	return cc, nil
}

// prefixErrors flattens a joined error into its parts.
func prefixErrors(prefix string, err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefixErrors(prefix, e)...)
		}
		return out
	}
	if prefix == "" {
		return []error{err}
	}
	return []error{fmt.Errorf("%s%w", prefix, err)}
}
