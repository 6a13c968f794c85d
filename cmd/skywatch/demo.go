package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/skywatch/skywatch/hardware"
)

// The demo camera's credentials. They exist only inside this process, to
// show that digest authentication works end to end.
const (
	demoCameraUser     = "admin"
	demoCameraPassword = "demo-only-Pa55"
)

// demoCamera is one simulated camera: which vendor's URL scheme it answers
// on, and its clip.
type demoCamera struct {
	id, name string
	vendor   hardware.Vendor
	channel  int
	clip     hardware.Clip
	audio    bool
}

func demoCameras(n int) []demoCamera {
	base := []demoCamera{
		{"north-gate", "North gate", hardware.VendorHikvision, 1, hardware.ClipGOP4s, true},
		{"market-square", "Market square", hardware.VendorDahua, 1, hardware.ClipGOP1s, false},
		{"school-road", "School road", hardware.VendorUniview, 1, hardware.ClipGOP4s, false},
		{"river-bridge", "River bridge", hardware.VendorHikvision, 2, hardware.ClipGOP1s, false},
		{"bus-station", "Bus station", hardware.VendorDahua, 2, hardware.ClipGOP4s, false},
		{"town-hall", "Town hall", hardware.VendorUniview, 2, hardware.ClipGOP1s, false},
	}
	var out []demoCamera
	for i := 0; i < n; i++ {
		c := base[i%len(base)]
		if i >= len(base) {
			c.id += "-" + strconv.Itoa(i/len(base)+1)
			c.name += " " + strconv.Itoa(i/len(base)+1)
			c.channel += 2 * (i / len(base))
		}
		out = append(out, c)
	}
	return out
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "127.0.0.1:8080", "console address (a free port is used if this one is taken)")
	udpAddr := fs.String("webrtc-udp", "127.0.0.1:8189", "WebRTC UDP address (a free port is used if this one is taken)")
	tcpAddr := fs.String("webrtc-tcp", "127.0.0.1:8189", "WebRTC ICE-TCP address (a free port is used if this one is taken)")
	count := fs.Int("cameras", 6, "number of simulated cameras")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *count < 1 || *count > 64 {
		fmt.Fprintln(stderr, "skywatch demo: -cameras must be between 1 and 64")
		return 2
	}
	logger, _ := newLogger(logConfig{}, stderr)

	// 1. Simulated cameras: one RTSP server answering on each vendor's paths.
	cams := demoCameras(*count)
	var fc fileConfig
	simCfg := hardware.CameraConfig{
		Address:  "127.0.0.1:0",
		Username: demoCameraUser,
		Password: demoCameraPassword,
		UDP:      true,
		Logger:   logger.With("component", "simulated-camera"),
	}
	for _, c := range cams {
		profile := hardware.CameraProfile{Vendor: c.vendor, Host: "127.0.0.1", Channel: c.channel}
		ep, err := profile.Endpoint()
		if err != nil {
			fmt.Fprintln(stderr, "skywatch demo:", err)
			return 1
		}
		path := ep.URL.EscapedPath()
		if ep.URL.RawQuery != "" {
			path += "?" + ep.URL.RawQuery
		}
		simCfg.Paths = append(simCfg.Paths, hardware.CameraPath{Path: path, Clip: c.clip, Audio: c.audio})
	}
	sim := hardware.NewCamera(simCfg)
	if err := sim.Start(); err != nil {
		fmt.Fprintln(stderr, "skywatch demo: simulated cameras:", err)
		return 1
	}
	defer sim.Close()
	_, simPort, _ := net.SplitHostPort(sim.Addr())
	port, _ := strconv.Atoi(simPort)

	// 2. Skywatch, configured as an operator would: by vendor, host and channel.
	fc.HTTP.Address = freeIfTaken("tcp", *httpAddr)
	fc.WebRTC.UDPAddress = freeIfTaken("udp", *udpAddr)
	fc.WebRTC.TCPAddress = freeIfTaken("tcp", *tcpAddr)
	for i, c := range cams {
		mode := "on_demand"
		if i == 0 {
			mode = "always"
		}
		fc.Cameras = append(fc.Cameras, cameraConfig{
			ID: c.id, Name: c.name, Vendor: string(c.vendor), Host: "127.0.0.1", Port: port,
			Channel: c.channel, Username: demoCameraUser, Password: demoCameraPassword, Mode: mode,
		})
	}
	s, err := buildSettings(&fc)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 1
	}
	a, err := newApp(s, logger)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 1
	}
	if err := a.start(); err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 1
	}
	fmt.Fprintf(stdout, "Skywatch demo: %d simulated cameras. Console: http://%s/\n", len(cams), a.web.Addr().String())
	a.wait(ctx)
	return 0
}

// freeIfTaken returns addr if it can be bound now, otherwise the same host
// with port 0 so that the OS picks a free one.
func freeIfTaken(network, addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", addr)
		if err == nil {
			c.Close()
			return addr
		}
	default:
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			return addr
		}
	}
	return net.JoinHostPort(host, "0")
}
