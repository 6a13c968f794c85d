package hardware

import (
	"errors"
	"net"
	"sync/atomic"
)

// errConnCut is what a cut connection returns in place of "use of closed
// network connection", which the MQTT client takes for a close of its own
// and so would not reconnect.
var errConnCut = errors.New("connection cut by the device simulator")

// cuttableConn is a connection that the simulator can cut abruptly, as a
// mobile link drops: the socket closes without an MQTT DISCONNECT, so the
// broker publishes the device's will.
type cuttableConn struct {
	net.Conn
	isCut atomic.Bool
}

// cut closes the connection; reads and writes then fail with errConnCut.
func (c *cuttableConn) cut() {
	c.isCut.Store(true)
	c.Conn.Close()
}

func (c *cuttableConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.isCut.Load() {
		err = errConnCut
	}
	return n, err
}

func (c *cuttableConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && c.isCut.Load() {
		err = errConnCut
	}
	return n, err
}
