package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/hardware"
)

const simUsage = `usage: skywatch sim devices [flags]
       skywatch sim units [flags]
       skywatch sim camera [flags]

sim camera serves one simulated RTSP camera (see sim camera -h).

sim units runs simulated patrol units: they patrol their area, report
positions, answer most offers after a delay (some they decline or ignore),
drive to the incident, arrive and clear it.

Runs a fleet of simulated alarm devices against an MQTT broker: heartbeats,
random alarms of every class in Skywatch JSON, Contact ID and Zigbee2MQTT
payloads, and a few devices that fall silent, drop their connection or send
garbage. The same -n, -id-prefix and -seed always make the same fleet with
the same credentials; -print-config prints its devices: section (with
bcrypt hashes) for Skywatch's config file.
`

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "units" {
		return runSimUnits(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "camera" {
		return runSimCamera(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "devices" {
		fmt.Fprint(stderr, simUsage)
		return 2
	}
	fs := flag.NewFlagSet("sim devices", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	prefix := fs.String("prefix", "skywatch", "topic prefix")
	n := fs.Int("n", 100, "number of devices")
	idPrefix := fs.String("id-prefix", "sim-dev-", "device ID prefix")
	seed := fs.Int64("seed", 1, "seed of the fleet and its random choices")
	heartbeat := fs.Duration("heartbeat", 60*time.Second, "heartbeat interval")
	alarmEvery := fs.Duration("alarm-every", 5*time.Minute, "mean interval between one device's alarms (0: none)")
	area := fs.String("area", "", "area of the devices, for -print-config")
	printConfig := fs.Bool("print-config", false, "print the fleet's devices: section for the config file and exit")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *n < 1 || *n > 100000 {
		fmt.Fprintln(stderr, "skywatch sim devices: -n must be between 1 and 100000")
		return 2
	}
	fleet := hardware.SimDevices(*n, *idPrefix, *seed)
	if *printConfig {
		return printFleetConfig(fleet, *area, stdout, stderr)
	}
	logger, _ := newLogger(logConfig{}, stderr)
	sim := hardware.NewDeviceSim(hardware.DeviceSimConfig{
		Broker: *broker, Prefix: *prefix, Devices: fleet,
		Heartbeat: *heartbeat, AlarmEvery: *alarmEvery, Seed: *seed, Logger: logger,
	})
	return runReporting(ctx, "skywatch sim devices", stderr, sim.Run, func(stopped bool) {
		st := sim.Stats()
		if stopped {
			logger.Info("simulated devices stopped", "published", st.Published, "acked", st.Acked, "errors", st.Errors)
			return
		}
		logger.Info("simulated devices", "connected", st.Connected, "of", st.Devices,
			"heartbeats", st.Heartbeats, "events", st.Published, "acked", st.Acked, "garbage", st.Garbage, "errors", st.Errors)
	})
}

// printFleetConfig prints a devices: section whose password hashes match
// the fleet's credentials (see testFleetHash).
func printFleetConfig(fleet []hardware.SimDevice, area string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stdout, "devices:")
	for _, d := range fleet {
		hash, err := testFleetHash(d.Password)
		if err != nil {
			fmt.Fprintln(stderr, "skywatch sim devices:", err)
			return 1
		}
		fmt.Fprintf(stdout, "  - id: %s\n    model: %s\n", d.ID, d.Format)
		if area != "" {
			fmt.Fprintf(stdout, "    area: %s\n", area)
		}
		fmt.Fprintf(stdout, "    password_hash: %q\n", hash)
	}
	return 0
}

func runSimUnits(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim units", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	prefix := fs.String("prefix", "skywatch", "topic prefix")
	n := fs.Int("n", 12, "number of units")
	idPrefix := fs.String("id-prefix", "sim-unit-", "unit ID prefix")
	areas := fs.String("areas", "", "comma-separated areas the units are spread over")
	seed := fs.Int64("seed", 1, "seed of the fleet and its random choices")
	printConfig := fs.Bool("print-config", false, "print the units: section for the config file and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n < 1 || *n > 10000 {
		fmt.Fprintln(stderr, "skywatch sim units: -n must be between 1 and 10000")
		return 2
	}
	var areaList []string
	if *areas != "" {
		areaList = strings.Split(*areas, ",")
	}
	units := hardware.SimUnits(*n, *idPrefix, areaList, *seed)
	if *printConfig {
		fmt.Fprintln(stdout, "units:")
		for _, u := range units {
			hash, err := testFleetHash(u.Password)
			if err != nil {
				fmt.Fprintln(stderr, "skywatch sim units:", err)
				return 1
			}
			fmt.Fprintf(stdout, "  - id: %s\n    kind: %s\n", u.ID, u.Kind)
			if u.Area != "" {
				fmt.Fprintf(stdout, "    area: %s\n", u.Area)
			}
			fmt.Fprintf(stdout, "    lat: %.6f\n    lon: %.6f\n    password_hash: %q\n", u.HomeLat, u.HomeLon, hash)
		}
		return 0
	}
	logger, _ := newLogger(logConfig{}, stderr)
	sim := hardware.NewUnitSim(hardware.UnitSimConfig{Broker: *broker, Prefix: *prefix, Units: units, Seed: *seed, Logger: logger})
	return runReporting(ctx, "skywatch sim units", stderr, sim.Run, func(stopped bool) {
		if stopped {
			return
		}
		st := sim.Stats()
		logger.Info("simulated units", "connected", st.Connected, "of", st.Units, "offers", st.Offers,
			"accepted", st.Accepted, "declined", st.Declined, "ignored", st.Ignored, "cleared", st.Cleared, "errors", st.Errors)
	})
}

// runReporting runs a simulator until ctx ends, reporting its counts every
// 10 s and once more when it stops; name prefixes its error.
func runReporting(ctx context.Context, name string, stderr io.Writer, run func(context.Context) error, report func(stopped bool)) int {
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			report(true)
			if err != nil {
				fmt.Fprintln(stderr, name+":", err)
				return 1
			}
			return 0
		case <-tick.C:
			report(false)
		}
	}
}

// testFleetHash hashes a simulated fleet's password for -print-config, at
// bcrypt's lowest cost so that thousands are printed in seconds: such hashes
// are for test fleets only.
func testFleetHash(password string) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
}
