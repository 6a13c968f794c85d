package main

import (
	"net"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// The viewers' sockets. A pion receiver spends about as much CPU on a
// packet (SRTP, interceptors, buffers) as a server does sending it, and the
// viewers share the machine with the server under measurement: 200 of them
// would take a core. So once a viewer has its first keyframe (which needs
// the payload), its socket counts RTP packets from their headers, which
// SRTP leaves in the clear, and drops them before pion; STUN, DTLS and RTCP
// still go to pion, so the connection stays up and the server still gets
// receiver reports. From then on a viewer sends no NACK and no TWCC
// feedback, which a browser would (on loopback nothing is lost to ask for).

// tapNet is pion's standard network with the viewer's tap on its UDP
// sockets.
type tapNet struct {
	*stdnet.Net
	v *benchViewer
}

func newTapNet(v *benchViewer) (*tapNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &tapNet{Net: n, v: v}, nil
}

// ListenUDP opens a socket with a large receive buffer (a starved reader
// then loses less) and the tap on it.
func (n *tapNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return c, nil
	}
	_ = uc.SetReadBuffer(4 << 20)
	return &tapConn{UDPConn: uc, v: n.v}, nil
}

// tapConn hands pion only what the viewer does not count itself. pion's
// ICE reads a wrapped socket through ReadFrom.
type tapConn struct {
	*net.UDPConn
	v *benchViewer
}

func (c *tapConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		if err != nil || !c.v.tap(b[:n]) {
			return n, addr, err
		}
	}
}

// isRTP tells an RTP packet from STUN, DTLS and RTCP on a muxed socket
// (RFC 7983, RFC 5761): version 2, and a payload type outside RTCP's
// 192-223 (with the marker bit).
func isRTP(b []byte) bool {
	return len(b) >= 12 && b[0]>>6 == 2 && (b[1] < 192 || b[1] > 223)
}
