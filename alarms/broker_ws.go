package alarms

import (
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// maxWSHeader bounds the HTTP request that opens a WebSocket.
const maxWSHeader = 8 << 10

// wsListener serves MQTT over WebSocket on a listener of the connection
// limiter. mochi's own WebSocket listener binds its address itself, out of
// the limiter's reach, and clears the connection's deadline once upgraded,
// so that a client that upgrades and sends nothing stays forever.
type wsListener struct {
	id        string
	ln        net.Listener
	srv       *http.Server
	upgrader  websocket.Upgrader
	establish listeners.EstablishFn
	log       *slog.Logger
	close     func(listener string) // closes the listener's clients
	closeOnce sync.Once
}

var _ listeners.Listener = (*wsListener)(nil)

func newWSListener(id string, ln net.Listener, lim *connLimiter, closeClients func(string)) *wsListener {
	l := &wsListener{id: id, ln: ln, close: closeClients, upgrader: websocket.Upgrader{
		Subprotocols: []string{"mqtt"},
		// Devices are not browsers: no origin to check.
		CheckOrigin: func(*http.Request) bool { return true },
	}}
	l.srv = &http.Server{
		Handler: http.HandlerFunc(l.handle),
		// The request that opens the socket counts against the CONNECT
		// timeout: net/http would otherwise clear the limiter's deadline.
		ReadHeaderTimeout: lim.timeout,
		IdleTimeout:       lim.timeout,
		MaxHeaderBytes:    maxWSHeader,
		// Per-connection errors of hostile peers are not worth a line each.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return l
}

// ID implements listeners.Listener.
func (l *wsListener) ID() string { return l.id }

// Address implements listeners.Listener.
func (l *wsListener) Address() string { return l.ln.Addr().String() }

// Protocol implements listeners.Listener.
func (l *wsListener) Protocol() string { return "ws" }

// Init implements listeners.Listener.
func (l *wsListener) Init(log *slog.Logger) error {
	l.log = log
	return nil
}

// Serve implements listeners.Listener; it returns when Close is called.
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish = establish
	_ = l.srv.Serve(l.ln)
}

// Close implements listeners.Listener, ignoring mochi's client closer (see
// netListener). Closing the server closes the limited listener, which
// closes the connections that have not sent CONNECT.
func (l *wsListener) Close(listeners.CloseFn) {
	l.closeOnce.Do(func() { _ = l.srv.Close() })
	l.close(l.id)
}

func (l *wsListener) handle(w http.ResponseWriter, r *http.Request) {
	c, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	if lc, ok := c.NetConn().(*limitedConn); ok {
		lc.awaitConnect()
	}
	if err := l.establish(l.id, &wsConn{Conn: c.NetConn(), c: c}); err != nil {
		l.log.Debug("websocket client", "error", err)
	}
}

// errNotBinary is a WebSocket message that is not binary: MQTT over
// WebSocket sends binary messages only.
var errNotBinary = errors.New("websocket: message type not binary")

// wsConn is a WebSocket as the net.Conn that mochi reads MQTT from (as
// mochi's own, which is not exported). Deadlines go to the underlying
// connection.
type wsConn struct {
	net.Conn
	c *websocket.Conn
	r io.Reader // the current message, or nil
}

func (ws *wsConn) Read(p []byte) (int, error) {
	if ws.r == nil {
		op, r, err := ws.c.NextReader()
		if err != nil {
			return 0, err
		}
		if op != websocket.BinaryMessage {
			return 0, errNotBinary
		}
		ws.r = r
	}
	n := 0
	for n < len(p) {
		m, err := ws.r.Read(p[n:])
		n += m
		if err != nil {
			// The message ended (io.EOF), or broke: either way the next
			// read starts a new one.
			ws.r = nil
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return n, err
		}
	}
	return n, nil
}

func (ws *wsConn) Write(p []byte) (int, error) {
	if err := ws.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (ws *wsConn) Close() error { return ws.Conn.Close() }
