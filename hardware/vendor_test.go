package hardware

import (
	"errors"
	"strings"
	"testing"
)

func TestCameraProfileEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile CameraProfile
		want    string
	}{
		{"hikvision defaults", CameraProfile{Vendor: VendorHikvision, Host: "10.0.0.5"},
			"rtsp://10.0.0.5:554/Streaming/Channels/101"},
		{"hikvision ch2 sub", CameraProfile{Vendor: VendorHikvision, Host: "10.0.0.5", Port: 8554, Channel: 2, Stream: StreamSub},
			"rtsp://10.0.0.5:8554/Streaming/Channels/202"},
		{"hikvision ch12 main", CameraProfile{Vendor: "Hikvision", Host: "nvr.local", Channel: 12, Stream: StreamMain},
			"rtsp://nvr.local:554/Streaming/Channels/1201"},
		{"dahua main", CameraProfile{Vendor: VendorDahua, Host: "10.0.0.6", Channel: 1},
			"rtsp://10.0.0.6:554/cam/realmonitor?channel=1&subtype=0"},
		{"dahua ch3 sub", CameraProfile{Vendor: VendorDahua, Host: "10.0.0.6", Channel: 3, Stream: StreamSub},
			"rtsp://10.0.0.6:554/cam/realmonitor?channel=3&subtype=1"},
		{"uniview main", CameraProfile{Vendor: VendorUniview, Host: "10.0.0.7"},
			"rtsp://10.0.0.7:554/unicast/c1/s0/live"},
		{"uniview ch4 sub", CameraProfile{Vendor: VendorUniview, Host: "10.0.0.7", Channel: 4, Stream: StreamSub},
			"rtsp://10.0.0.7:554/unicast/c4/s1/live"},
		{"generic with query", CameraProfile{Vendor: VendorGeneric, Host: "cam9", Port: 10554, Path: "/media?stream=0"},
			"rtsp://cam9:10554/media?stream=0"},
		{"generic ipv6", CameraProfile{Vendor: VendorGeneric, Host: "fd00::5", Path: "/live/ch0"},
			"rtsp://[fd00::5]:554/live/ch0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.profile.Username = "admin"
			tc.profile.Password = "s3cret"
			e, err := tc.profile.Endpoint()
			if err != nil {
				t.Fatal(err)
			}
			if got := e.URL.String(); got != tc.want {
				t.Fatalf("URL = %s, want %s", got, tc.want)
			}
			if e.String() != tc.want {
				t.Fatalf("String() = %s, want %s", e.String(), tc.want)
			}
			if e.URL.User != nil || strings.Contains(e.String(), "s3cret") {
				t.Fatal("URL carries credentials")
			}
			if e.Username != "admin" || e.Password != "s3cret" {
				t.Fatalf("credentials = %q/%q", e.Username, e.Password)
			}
		})
	}
}

func TestCameraProfileEndpointErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile CameraProfile
		wantErr error
		wantMsg string
	}{
		{"unknown vendor", CameraProfile{Vendor: "axis", Host: "h"}, ErrUnknownVendor, `vendor "axis"`},
		{"empty vendor", CameraProfile{Host: "h"}, ErrUnknownVendor, `vendor ""`},
		{"no host", CameraProfile{Vendor: VendorDahua}, ErrInvalidProfile, "host"},
		{"host with credentials", CameraProfile{Vendor: VendorDahua, Host: "u:p@h"}, ErrInvalidProfile, "host"},
		{"bad port", CameraProfile{Vendor: VendorDahua, Host: "h", Port: 70000}, ErrInvalidProfile, "port"},
		{"bad channel", CameraProfile{Vendor: VendorDahua, Host: "h", Channel: -1}, ErrInvalidProfile, "channel"},
		{"bad stream", CameraProfile{Vendor: VendorDahua, Host: "h", Stream: "third"}, ErrInvalidProfile, "stream"},
		{"password only", CameraProfile{Vendor: VendorDahua, Host: "h"}, ErrInvalidProfile, "username"},
		{"generic without path", CameraProfile{Vendor: VendorGeneric, Host: "h"}, ErrInvalidProfile, "path"},
		{"path on a vendor", CameraProfile{Vendor: VendorUniview, Host: "h", Path: "/x"}, ErrInvalidProfile, "path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "password only" {
				tc.profile.Username = "admin"
			}
			tc.profile.Password = "topsecret"
			_, err := tc.profile.Endpoint()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not mention %q", err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Fatalf("error %q leaks the password", err)
			}
		})
	}
}

func TestParseVendor(t *testing.T) {
	for _, v := range Vendors() {
		got, err := ParseVendor(strings.ToUpper(string(v)))
		if err != nil || got != v {
			t.Fatalf("ParseVendor(%q) = %q, %v", v, got, err)
		}
	}
	_, err := ParseVendor("Axis")
	if !errors.Is(err, ErrUnknownVendor) || !strings.Contains(err.Error(), `"Axis"`) ||
		!strings.Contains(err.Error(), "hikvision") {
		t.Fatalf("ParseVendor(Axis) error = %v", err)
	}
}

func TestCameraProfileEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name      string
		profile   CameraProfile
		main, sub string // sub "": no sub stream
	}{
		{"hikvision ch2", CameraProfile{Vendor: VendorHikvision, Host: "10.0.0.5", Channel: 2},
			"/Streaming/Channels/201", "/Streaming/Channels/202"},
		{"hikvision upper case", CameraProfile{Vendor: "HIKVISION", Host: "10.0.0.5"},
			"/Streaming/Channels/101", "/Streaming/Channels/102"},
		{"dahua ch3", CameraProfile{Vendor: VendorDahua, Host: "10.0.0.6", Channel: 3, Stream: StreamMain},
			"/cam/realmonitor?channel=3&subtype=0", "/cam/realmonitor?channel=3&subtype=1"},
		{"uniview", CameraProfile{Vendor: VendorUniview, Host: "10.0.0.7"},
			"/unicast/c1/s0/live", "/unicast/c1/s1/live"},
		{"a profile of the sub stream has no other", CameraProfile{Vendor: VendorDahua, Host: "10.0.0.6", Stream: StreamSub},
			"/cam/realmonitor?channel=1&subtype=1", ""},
		{"generic", CameraProfile{Vendor: VendorGeneric, Host: "cam9", Path: "/live/ch0"},
			"/live/ch0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.profile.Username, tc.profile.Password = "admin", "s3cret"
			main, sub, err := tc.profile.Endpoints()
			if err != nil {
				t.Fatal(err)
			}
			if got := main.PathQuery(); got != tc.main {
				t.Errorf("main path %q, want %q", got, tc.main)
			}
			switch {
			case tc.sub == "" && sub != nil:
				t.Errorf("sub stream %s, want none", sub)
			case tc.sub != "" && sub == nil:
				t.Errorf("no sub stream, want %s", tc.sub)
			case sub != nil:
				if got := sub.PathQuery(); got != tc.sub {
					t.Errorf("sub path %q, want %q", got, tc.sub)
				}
				if sub.URL.Host != main.URL.Host || sub.Username != "admin" || sub.Password != "s3cret" ||
					sub.URL.User != nil {
					t.Errorf("sub endpoint %s (%q/%q) differs from main %s in host or credentials",
						sub, sub.Username, sub.Password, main)
				}
			}
		})
	}
	if _, _, err := (CameraProfile{Vendor: VendorDahua, Host: "h", Channel: -1}).Endpoints(); !errors.Is(err, ErrInvalidProfile) {
		t.Errorf("Endpoints of a bad profile: %v, want ErrInvalidProfile", err)
	}
	for _, v := range Vendors() {
		if got, want := v.HasSubStream(), v != VendorGeneric; got != want {
			t.Errorf("%s.HasSubStream() = %v, want %v", v, got, want)
		}
	}
}
