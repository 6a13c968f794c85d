package viewer

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// iceListeners are the sockets shared by every WebRTC session: one UDP port
// (ICE UDP mux) and optionally one TCP listener (ICE-TCP), plus the pion
// settings that use them.
type iceListeners struct {
	udp      ice.UDPMux
	tcp      ice.TCPMux   // nil when ICE-TCP is off
	tcpLn    *tcpListener // nil when ICE-TCP is off
	tcpAddr  net.Addr     // nil when ICE-TCP is off
	settings webrtc.SettingEngine
}

// listenICE opens the ICE sockets of cfg. Errors name the config key.
func listenICE(cfg Config, logger *slog.Logger) (*iceListeners, error) {
	loggers := pionLoggers{logger: logger}
	l := &iceListeners{}

	udpHost, udpPort, err := splitIPPort(cfg.UDPAddress)
	if err != nil {
		return nil, fmt.Errorf("webrtc.udp_address: %w", err)
	}
	includeLoopback := udpHost != nil && udpHost.IsLoopback()
	if udpHost == nil || udpHost.IsUnspecified() {
		// Every interface, each on the same port (unless the port is 0).
		networks := []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6}
		if udpHost != nil && udpHost.To4() != nil {
			networks = networks[:1]
		}
		bn, err := newBatchNet()
		if err != nil {
			return nil, fmt.Errorf("webrtc.udp_address: %w", err)
		}
		mux, err := ice.NewMultiUDPMuxFromPort(udpPort,
			ice.UDPMuxFromPortWithNet(bn),
			ice.UDPMuxFromPortWithNetworks(networks...),
			ice.UDPMuxFromPortWithLogger(loggers.NewLogger("udpmux")))
		if err != nil {
			return nil, fmt.Errorf("webrtc.udp_address: listen %s: %w", cfg.UDPAddress, err)
		}
		l.udp = mux
	} else {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: udpHost, Port: udpPort})
		if err != nil {
			return nil, fmt.Errorf("webrtc.udp_address: %w", err)
		}
		l.udp = webrtc.NewICEUDPMux(loggers.NewLogger("udpmux"), newBatchConn(conn))
	}

	s := webrtc.SettingEngine{LoggerFactory: loggers}
	s.SetICEUDPMux(l.udp)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCPAddress != "" {
		ln, err := net.Listen("tcp", cfg.TCPAddress)
		if err != nil {
			_ = l.udp.Close()
			return nil, fmt.Errorf("webrtc.tcp_address: %w", err)
		}
		if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
			includeLoopback = true
		}
		l.tcpAddr = ln.Addr()
		l.tcpLn = newTCPListener(ln, cfg.TCPConnections, cfg.TCPConnectionsPerAddr, logger)
		l.tcp = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener: l.tcpLn,
			Logger:   loggers.NewLogger("tcpmux"),
			// Packets from the viewer (STUN, RTCP) queued per connection.
			ReadBufferSize: 16,
			// No write buffer (pion's helper sets 4 MB a viewer): writes
			// wait for the socket, so that a slow viewer's session falls
			// behind and its reader drops to the next keyframe, instead
			// of the viewer falling seconds behind live and then losing
			// packets at random.
			WriteBufferSize:              0,
			FirstStunBindTimeout:         cfg.TCPHandshakeTimeout,
			AliveDurationForConnFromStun: cfg.TCPHandshakeTimeout,
		})
		s.SetICETCPMux(l.tcp)
		// A server waits for viewers to connect; it never dials out.
		s.DisableActiveTCP(true)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	s.SetNetworkTypes(networks)
	if err := preferAESGCM(&s); err != nil {
		_ = l.close()
		return nil, err
	}
	s.SetIncludeLoopbackCandidate(includeLoopback)
	// mDNS would hide our addresses from viewers and makes multicast noise.
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if len(cfg.PublicIPs) > 0 {
		// Append, not replace: viewers on the local network keep the direct
		// path.
		if err := s.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteAppend,
		}); err != nil {
			_ = l.close()
			return nil, fmt.Errorf("webrtc.public_ips: %w", err)
		}
	}
	l.settings = s
	return l, nil
}

// udpAddrs are the local addresses of the UDP mux.
func (l *iceListeners) udpAddrs() []net.Addr {
	return l.udp.GetListenAddresses()
}

func (l *iceListeners) close() error {
	var errs []error
	if l.tcp != nil {
		errs = append(errs, l.tcp.Close())
	}
	errs = append(errs, l.udp.Close())
	return errors.Join(errs...)
}

// splitIPPort parses "ip:port" or ":port"; the IP is nil for ":port".
func splitIPPort(addr string) (net.IP, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, 0, fmt.Errorf("%q: bad port", addr)
	}
	if host == "" {
		return nil, port, nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, 0, fmt.Errorf("%q: host must be an IP address", addr)
	}
	return ip, port, nil
}
