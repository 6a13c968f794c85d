package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/skywatch/skywatch/hardware"
)

// simCameraPasswordEnv gives sim camera its password without putting it on
// the command line, where every user of the machine can read it (ps).
const simCameraPasswordEnv = "SKYWATCH_SIM_CAMERA_PASSWORD"

const simCameraUsage = `usage: skywatch sim camera [flags]

Serves one simulated RTSP camera, as a camera of the given vendor serves it
(for hikvision, dahua and uniview its main and sub stream, on the vendor's
paths), with RTSP digest authentication and the demo's H.264 clip in
packets of up to -packet-size bytes, as cameras in the field send them. It
prints the cameras: entry that pulls it and runs until interrupted: point a
Skywatch installation at it to try the video path before the real cameras
are connected. The password comes from -password or, better (the command
line is visible to every user), from $` + simCameraPasswordEnv + `.

flags:
`

// runSimCamera serves one simulated camera until ctx ends.
func runSimCamera(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim camera", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, simCameraUsage)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP listen address (host:port; port 0 picks a free one)")
	vendor := fs.String("vendor", "hikvision", "whose URL layout to serve: hikvision, dahua, uniview or generic")
	channel := fs.Int("channel", 1, "channel of the camera (an NVR's camera number)")
	path := fs.String("path", "/live", "RTSP path of a generic camera")
	user := fs.String("user", "admin", "RTSP user name (empty: no authentication)")
	password := fs.String("password", "", "RTSP password (default $"+simCameraPasswordEnv+")")
	clipName := fs.String("clip", "gop4s", "clip looped on every stream: gop1s or gop4s (640x360, 25 fps)")
	packetSize := fs.Int("packet-size", 1460, "largest RTP packet sent, header included (100 to 1472)")
	udp := fs.Bool("udp", true, "offer RTP over UDP besides TCP")
	audio := fs.Bool("audio", false, "add a G.711 µ-law sound track")
	id := fs.String("id", "sim-camera", "camera id in the printed cameras: entry")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "skywatch sim camera: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *password == "" {
		*password = os.Getenv(simCameraPasswordEnv)
	}
	if *user != "" && *password == "" {
		fmt.Fprintf(stderr, "skywatch sim camera: -user %s needs a password: -password or $%s\n", *user, simCameraPasswordEnv)
		return 2
	}
	clip, err := hardware.ParseClip(*clipName)
	if err != nil || (clip != hardware.ClipGOP1s && clip != hardware.ClipGOP4s) {
		fmt.Fprintf(stderr, "skywatch sim camera: -clip %q: want gop1s or gop4s\n", *clipName)
		return 2
	}
	v, err := hardware.ParseVendor(*vendor)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch sim camera: -vendor:", err)
		return 2
	}
	profile := hardware.CameraProfile{Vendor: v, Channel: *channel}
	if v == hardware.VendorGeneric {
		profile.Path = *path
	}
	paths, err := hardware.ProfilePaths(profile, clip, *audio)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch sim camera:", err)
		return 2
	}
	logger, _ := newLogger(logConfig{}, stderr)
	cam := hardware.NewCamera(hardware.CameraConfig{
		Address: *listen, Username: *user, Password: *password,
		UDP: *udp, PacketSize: *packetSize, Paths: paths,
		Logger: logger.With("component", "simulated-camera"),
	})
	if err := cam.Start(); err != nil {
		fmt.Fprintln(stderr, "skywatch sim camera:", err)
		return 1
	}
	defer cam.Close()

	fmt.Fprintf(stdout, "simulated %s camera, digest authentication as %q:\n", v, *user)
	for i, p := range paths {
		kind := "main"
		if i > 0 {
			kind = "sub"
		}
		fmt.Fprintf(stdout, "  %-4s stream  %s\n", kind, cam.URL(p.Path))
	}
	printSimCameraEntry(stdout, *id, v, cam, profile, *user)
	<-ctx.Done()
	return 0
}

// printSimCameraEntry prints the cameras: entry that pulls the simulated
// camera, without its password: that goes in the environment, as for a
// real camera.
func printSimCameraEntry(w io.Writer, id string, v hardware.Vendor, cam *hardware.Camera, p hardware.CameraProfile, user string) {
	host, port, _ := net.SplitHostPort(cam.Addr())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	portNum, _ := strconv.Atoi(port)
	fmt.Fprintf(w, "cameras:\n  - id: %s\n", id)
	if v == hardware.VendorGeneric {
		main, _ := hardware.CameraProfile{Vendor: v, Host: host, Port: portNum, Path: p.Path}.Endpoint()
		fmt.Fprintf(w, "    url: %s\n", main.String())
	} else {
		fmt.Fprintf(w, "    vendor: %s\n    host: %s\n    port: %d\n    channel: %d\n", v, host, portNum, p.Channel)
	}
	if user != "" {
		fmt.Fprintf(w, "    username: %s\n    # password: in the environment, %s\n", user, "SKYWATCH_CAMERA_"+envName(id)+"_PASSWORD")
	}
}
