package alarms

import (
	"log/slog"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// netListener serves MQTT on a listener of the connection limiter (plain
// TCP, or TLS over it), as mochi's listeners.Net does, but closes its
// clients without mochi's Clients.GetByListener: that takes the clients'
// read lock twice, and deadlocks Close when a client disconnecting at the
// same moment waits for the write lock in between.
type netListener struct {
	id        string
	ln        net.Listener
	close     func(listener string) // closes the listener's clients
	closeOnce sync.Once
}

var _ listeners.Listener = (*netListener)(nil)

// ID implements listeners.Listener.
func (l *netListener) ID() string { return l.id }

// Address implements listeners.Listener.
func (l *netListener) Address() string { return l.ln.Addr().String() }

// Protocol implements listeners.Listener.
func (l *netListener) Protocol() string { return "tcp" }

// Init implements listeners.Listener.
func (l *netListener) Init(*slog.Logger) error { return nil }

// Serve implements listeners.Listener; it returns when Close is called.
func (l *netListener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed: the limited listener retries other errors
		}
		// mochi's errors per client are its own (a refused CONNECT, a
		// closed socket); the intake counts what matters.
		go func() { _ = establish(l.id, c) }()
	}
}

// Close implements listeners.Listener, ignoring mochi's client closer.
func (l *netListener) Close(listeners.CloseFn) {
	l.closeOnce.Do(func() { _ = l.ln.Close() })
	l.close(l.id)
}

// closeClients disconnects the clients of a listener, for its Close.
func closeClients(server *mqtt.Server) func(listener string) {
	return func(listener string) {
		for _, cl := range server.Clients.GetAll() {
			if cl.Net.Listener == listener && !cl.Closed() {
				_ = server.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	}
}
