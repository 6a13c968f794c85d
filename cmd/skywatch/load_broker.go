package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// runBareBroker runs the embedded broker's MQTT server (mochi) with no
// authentication, no access list and no intake, until ctx ends: the
// ceiling of the embedded broker, which lets no client subscribe to every
// device's events.
func runBareBroker(ctx context.Context, addr string, logger *slog.Logger, stderr io.Writer) int {
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = 256 << 10 // as the intake's broker
	// Enough for one subscriber to take the whole flood; the intake's
	// broker keeps 64, for devices that receive next to nothing.
	caps.MaximumClientWritesPending = 1024
	server := mochi.New(&mochi.Options{
		Capabilities: caps,
		// mochi logs every client that comes and goes.
		Logger: slog.New(slog.DiscardHandler),
	})
	if err := server.AddHook(new(allowAll), nil); err != nil {
		fmt.Fprintln(stderr, "skywatch sim load: bare broker:", err)
		return 1
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := server.AddListener(tcp); err != nil {
		fmt.Fprintln(stderr, "skywatch sim load: -bare-broker:", err)
		return 1
	}
	if err := server.Serve(); err != nil {
		fmt.Fprintln(stderr, "skywatch sim load: bare broker:", err)
		return 1
	}
	logger.Info("bare MQTT broker serving", "address", tcp.Address())
	<-ctx.Done()
	_ = server.Close()
	return 0
}

// allowAll lets every client connect, publish and subscribe.
type allowAll struct{ mochi.HookBase }

func (*allowAll) ID() string { return "allow-all" }

func (*allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (*allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

func (*allowAll) OnACLCheck(*mochi.Client, string, bool) bool { return true }
