package ingest

import (
	"time"

	"github.com/pion/rtp"
)

// Unit is what a stream hands its readers: one video access unit (every RTP
// packet of one picture, up to and including the marker) or one audio packet.
//
// Units and their packets are shared by every reader of a stream: they are
// read-only. A reader that must change a header copies the header first.
type Unit struct {
	// Track is the index of the unit's track in the reader's Tracks().
	Track int

	// Packets are the RTP packets as the camera sent them, in order, with
	// two changes:
	//   - a keyframe unit whose camera left the parameter sets out of band
	//     is preceded by packets carrying them (so that every keyframe unit
	//     is decodable on its own); they have the unit's timestamp and the
	//     sequence numbers just before its first packet;
	//   - no video packet is larger than MaxPacketSize (1,200 bytes with a
	//     plain 12-byte header): a larger one is re-packetized (FU-A or FU
	//     fragments, smaller aggregates), and its pieces all carry its
	//     header and sequence number, the marker on the last one only. A
	//     large packet that cannot be cut is dropped.
	// So sequence numbers repeat, within a unit and across units, and do not
	// count the camera's packets: a reader that forwards packets renumbers
	// them, and one that depacketizes goes by order.
	Packets []*rtp.Packet

	// Keyframe is true for a video unit that starts a decodable group
	// (H.264 IDR with SPS and PPS, H.265 IRAP with VPS, SPS and PPS).
	Keyframe bool

	// Epoch counts camera sessions. RTP timestamps and sequence numbers are
	// continuous only within one epoch; a reconnect starts a new epoch, and a
	// reader that must keep its own output continuous re-bases its offsets.
	Epoch uint64

	// Received is when the last packet of the unit arrived from the camera.
	Received time.Time
}

// Timestamp is the RTP timestamp of the unit.
func (u *Unit) Timestamp() uint32 {
	if len(u.Packets) == 0 {
		return 0
	}
	return u.Packets[0].Timestamp
}
