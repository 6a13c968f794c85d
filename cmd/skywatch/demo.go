package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skywatch/skywatch/alarms"

	"github.com/skywatch/skywatch/hardware"
)

// demoHeartbeat is the simulated devices' heartbeat interval.
const demoHeartbeat = 30 * time.Second

// demoUnitPassword is every demo unit's password for the patrol page.
const demoUnitPassword = "demo-patrol"

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
		{"north-gate", "北门", hardware.VendorHikvision, 1, hardware.ClipGOP4s, true},
		{"market-square", "集贸市场", hardware.VendorDahua, 1, hardware.ClipGOP1s, false},
		{"school-road", "学校路口", hardware.VendorUniview, 1, hardware.ClipGOP4s, false},
		{"river-bridge", "河桥", hardware.VendorHikvision, 2, hardware.ClipGOP1s, false},
		{"bus-station", "汽车站", hardware.VendorDahua, 2, hardware.ClipGOP4s, false},
		{"town-hall", "镇政府", hardware.VendorUniview, 2, hardware.ClipGOP1s, false},
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

// demoAlways reads the -always flag: camera IDs of cams, separated by commas.
func demoAlways(flag string, cams []demoCamera) (map[string]bool, error) {
	known := map[string]bool{}
	for _, c := range cams {
		known[c.id] = true
	}
	out := map[string]bool{}
	for id := range strings.SplitSeq(flag, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		if !known[id] {
			return nil, fmt.Errorf("-always: no demo camera %q", id)
		}
		out[id] = true
	}
	return out, nil
}

// demoFleet is the demo's n simulated alarm devices, with their MQTT
// credentials: the same every run.
func demoFleet(n int) []hardware.SimDevice {
	return hardware.SimDevices(n, "demo-dev-", 1)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "127.0.0.1:8080", "console address (a free port is used if this one is taken)")
	udpAddr := fs.String("webrtc-udp", "127.0.0.1:8189", "WebRTC UDP address (a free port is used if this one is taken)")
	tcpAddr := fs.String("webrtc-tcp", "127.0.0.1:8189", "WebRTC ICE-TCP address (a free port is used if this one is taken)")
	count := fs.Int("cameras", 6, "number of simulated cameras")
	mqttAddr := fs.String("mqtt", "127.0.0.1:1883", "embedded MQTT broker address (a free port is used if this one is taken)")
	deviceCount := fs.Int("devices", 40, "number of simulated alarm devices")
	alarmEvery := fs.Duration("alarm-every", 3*time.Minute, "mean interval between one simulated device's alarms (0: none)")
	unitCount := fs.Int("units", 12, "number of simulated patrol units")
	record := fs.String("record", "always", "what the demo records of every camera: always, alarms or off (off leaves on-demand cameras unpulled until watched)")
	warm := fs.Duration("warm-on-alarm", defaultWarmOnAlarm, "how long a new incident's cameras are pulled before anyone watches them (0: not at all), as ingest.warm_on_alarm")
	segment := fs.Duration("record-segment", 0, "length of a recording segment (0: recordings.segment's default), as recordings.segment")
	preAlarm := fs.Duration("pre-alarm", 0, "video kept before an alarm in its evidence clips (0: the default), as recordings.pre_alarm")
	postAlarm := fs.Duration("post-alarm", 0, "video kept after an incident's latest event in its clips (0: the default), as recordings.post_alarm")
	always := fs.String("always", demoCameras(1)[0].id, "comma-separated cameras pulled always, main and sub stream (the others are pulled on demand)")
	knobs := demoKnobs{unitDelay: hardware.DurationRange{Min: 2 * time.Second, Max: 15 * time.Second}}
	fs.StringVar(&knobs.dispatch, "dispatch", string(alarms.DispatchAuto), demoDispatchUsage)
	fs.Float64Var(&knobs.unitAccept, "unit-accept", 0.85, demoUnitAcceptUsage)
	fs.Var(durationRangeFlag{&knobs.unitDelay}, "unit-delay", demoUnitDelayUsage)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := knobs.validate(); err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 2
	}
	if *count < 1 || *count > 64 {
		fmt.Fprintln(stderr, "skywatch demo: -cameras must be between 1 and 64")
		return 2
	}
	if *unitCount < 0 || *unitCount > 1000 {
		fmt.Fprintln(stderr, "skywatch demo: -units must be between 0 and 1000")
		return 2
	}
	if *deviceCount < 0 || *deviceCount > 10000 {
		fmt.Fprintln(stderr, "skywatch demo: -devices must be between 0 and 10000")
		return 2
	}
	logger, _ := newLogger(logConfig{}, stderr)

	// 1. Simulated cameras: one RTSP server answering on each vendor's paths,
	// main and sub stream.
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
		// Each camera's main and sub stream, as its vendor serves them.
		paths, err := hardware.ProfilePaths(hardware.CameraProfile{Vendor: c.vendor, Channel: c.channel}, c.clip, c.audio)
		if err != nil {
			fmt.Fprintln(stderr, "skywatch demo:", err)
			return 1
		}
		simCfg.Paths = append(simCfg.Paths, paths...)
	}
	sim := hardware.NewCamera(simCfg)
	if err := sim.Start(); err != nil {
		fmt.Fprintln(stderr, "skywatch demo: simulated cameras:", err)
		return 1
	}
	defer sim.Close()
	_, simPort, _ := net.SplitHostPort(sim.Addr())
	port, _ := strconv.Atoi(simPort)

	// 2. Skywatch, configured as an operator would: by vendor, host and
	// channel (the sub streams are derived).
	fc.Ingest.WarmOnAlarm = warm
	fc.HTTP.Address = freeIfTaken("tcp", *httpAddr)
	fc.WebRTC.UDPAddress = freeIfTaken("udp", *udpAddr)
	fc.WebRTC.TCPAddress = freeIfTaken("tcp", *tcpAddr)
	geo := newDemoGeo()
	fc.Areas = geo.areas()
	knobs.applyAreas(fc.Areas)
	villageCameras := map[string][]string{}
	alwaysOn, err := demoAlways(*always, cams)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 2
	}
	for i, c := range cams {
		mode := "on_demand"
		if alwaysOn[c.id] {
			mode = "always"
		}
		v := geo.villages[i%len(geo.villages)]
		lat, lon := v.place(i, 300)
		fc.Cameras = append(fc.Cameras, cameraConfig{
			ID: c.id, Name: c.name, Area: v.id, Lat: lat, Lon: lon,
			Vendor: string(c.vendor), Host: "127.0.0.1", Port: port,
			Channel: c.channel, Username: demoCameraUser, Password: demoCameraPassword, Mode: mode,
		})
		villageCameras[v.id] = append(villageCameras[v.id], c.id)
	}

	// 3. Alarm devices: the embedded broker, a store in a scratch directory
	// (the demo keeps nothing), and the simulated fleet's credentials.
	dir, err := os.MkdirTemp("", "skywatch-demo-")
	if err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	fc.Store.Path = filepath.Join(dir, "alarms.db")
	// The demo records every camera, so that the console's timeline and
	// the incidents' evidence clips have something to show.
	fc.Recordings.Path = filepath.Join(dir, "recordings")
	fc.Recordings.Segment, fc.Recordings.PreAlarm, fc.Recordings.PostAlarm = *segment, *preAlarm, *postAlarm
	for i := range fc.Cameras {
		fc.Cameras[i].Record = *record
	}
	fc.MQTT.Address = freeIfTaken("tcp", *mqttAddr)
	fleet := demoFleet(*deviceCount)
	for i, d := range fleet {
		fc.Devices = append(fc.Devices, geo.device(i, d, villageCameras))
	}
	var villageIDs []string
	for _, v := range geo.villages {
		villageIDs = append(villageIDs, v.id)
	}
	units := hardware.SimUnits(*unitCount, "demo-unit-", villageIDs, 1)
	for i := range units {
		// One known password, so that a person can log in to the patrol
		// page as any demo unit.
		units[i].Password = demoUnitPassword
	}
	for _, u := range units {
		fc.Units = append(fc.Units, alarms.UnitConfig{
			ID: u.ID, Name: u.ID, Kind: u.Kind, Area: u.Area, Lat: u.HomeLat, Lon: u.HomeLon,
			Username: u.Username, Password: u.Password,
		})
	}
	fc.Routing.CameraRadiusM = 1500
	fc.Routing.OfferTimeout = 30 * time.Second
	fc.Models = []alarms.ModelConfig{
		{Name: hardware.FormatSkywatch, Heartbeat: demoHeartbeat},
		{Name: hardware.FormatContactID, Heartbeat: demoHeartbeat},
		{Name: hardware.FormatZigbee2MQTT, Heartbeat: demoHeartbeat},
	}

	if fc.Users, err = demoUsers(); err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 1
	}
	fc.Store.RecordsDir = filepath.Join(dir, "records")

	s, err := buildSettings(&fc)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 1
	}
	a, err := newApp(ctx, s, logger)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 1
	}
	if err := a.start(ctx); err != nil {
		fmt.Fprintln(stderr, "skywatch demo:", err)
		return 1
	}
	broker := a.intake.BrokerAddr()
	devSim := hardware.NewDeviceSim(hardware.DeviceSimConfig{
		Broker:     "tcp://" + broker,
		Devices:    fleet,
		Heartbeat:  demoHeartbeat,
		AlarmEvery: *alarmEvery,
		Seed:       1,
		Logger:     logger.With("component", "simulated-devices"),
	})
	unitCfg := hardware.UnitSimConfig{
		Broker: "tcp://" + broker,
		Units:  units,
		Seed:   1,
		Logger: logger.With("component", "simulated-units"),
	}
	knobs.applyUnits(&unitCfg)
	unitSim := hardware.NewUnitSim(unitCfg)
	simCtx, stopSims := context.WithCancel(ctx)
	simDone := make(chan error, 2)
	go func() { simDone <- devSim.Run(simCtx) }()
	go func() { simDone <- unitSim.Run(simCtx) }()

	fmt.Fprintf(stdout, "Skywatch demo: %d simulated cameras, %d alarm devices and %d patrol units on MQTT %s.\nConsole: http://%s/\n",
		len(cams), len(fleet), len(units), broker, a.web.Addr().String())
	fmt.Fprintf(stdout, "Console logins (password %s): admin (admin), duty (county supervisor), dongcheng and xicheng (township operators), watch (county viewer)\n",
		demoConsolePassword)
	if knobs.dispatch == string(alarms.DispatchManual) {
		fmt.Fprintln(stdout, "Dispatch is manual: offer incidents to units from the console's alarm queue.")
	}
	if len(units) > 0 {
		fmt.Fprintf(stdout, "Patrol page: http://%s/patrol/ (log in as %s, password %s)\n",
			a.web.Addr().String(), units[0].ID, demoUnitPassword)
	}
	ignoreHangups(ctx, logger)
	<-ctx.Done()
	stopSims()
	for range 2 {
		if err := <-simDone; err != nil {
			logger.Warn("simulators", "error", err)
		}
	}
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

// ignoreHangups logs each SIGHUP until ctx ends: the demo has no config
// file to reload, and a hangup must not end it.
func ignoreHangups(ctx context.Context, logger *slog.Logger) {
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hups)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hups:
				logger.Info("SIGHUP ignored: the demo has no config file to reload")
			}
		}
	}()
}
