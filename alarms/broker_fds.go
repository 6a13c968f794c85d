package alarms

// effectiveMaxConnections lowers the connection cap so that MQTT sockets
// leave reserved of the file limit to the rest of the server (HTTP,
// WebRTC, RTSP, the store, files); when the limit is so low that little
// would be left, MQTT gets half of it. lowered tells whether the cap
// changed.
func effectiveMaxConnections(want, reserved int, limit uint64, known bool) (n int, lowered bool) {
	if !known || limit > uint64(want)+uint64(reserved) {
		return want, false
	}
	room := int(limit) - reserved
	if room < int(limit)/2 {
		room = int(limit) / 2
	}
	return max(min(room, want), 1), true
}

// maxConnections is the embedded broker's connection cap, lowered (with a
// warning) to what the process's file limit allows.
func (in *Intake) maxConnections() int {
	lim := in.cfg.MQTT.BrokerLimits
	limit, known := fileLimit()
	n, lowered := effectiveMaxConnections(lim.MaxConnections, lim.ReservedFDs, limit, known)
	if lowered {
		in.logger.Warn("alarms: mqtt.max_connections lowered to leave mqtt.reserved_fds of the open file limit to the rest of the server",
			"max_connections", lim.MaxConnections, "effective", n, "file_limit", limit, "reserved_fds", lim.ReservedFDs)
	}
	return n
}

// limiter is the embedded broker's connection limiter, or nil.
func (in *Intake) limiter() *connLimiter {
	if in.broker == nil {
		return nil
	}
	return in.broker.lim
}
