package e2e

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/conn"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
)

// bigCamera is an RTSP camera that sends RTP packets larger than the
// simulated camera can (gortsplib's server sends at most 1,472 bytes): it
// re-sends the access units of a source camera, packetized up to
// packetSize, over TCP (interleaved) to one client, without authentication.
// Cameras do send packets of several kilobytes over TCP.
type bigCamera struct {
	ln  net.Listener
	enc *rtph264.Encoder
	wg  sync.WaitGroup

	mu      sync.Mutex
	client  *conn.Conn // playing; nil before PLAY
	rec     cameraRecord
	ts      uint32
	writeMu sync.Mutex
}

func startBigCamera(t *testing.T, packetSize int) *bigCamera {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &bigCamera{ln: ln, enc: &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: packetSize - 12}}
	if err := c.enc.Init(); err != nil {
		t.Fatal(err)
	}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		c.mu.Lock()
		c.client = nil
		c.mu.Unlock()
		c.wg.Wait()
	})
	return c
}

func (c *bigCamera) url() string { return "rtsp://" + c.ln.Addr().String() + "/big" }

func (c *bigCamera) accept() {
	defer c.wg.Done()
	for {
		nc, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.serve(nc)
		}()
	}
}

// serve answers one client's requests until it goes away.
func (c *bigCamera) serve(nc net.Conn) {
	defer nc.Close()
	rc := conn.NewConn(nc)
	desc := &description.Session{Medias: []*description.Media{{
		Type:    description.MediaTypeVideo,
		Control: "trackID=0",
		Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}},
	}}}
	sdp, _ := desc.Marshal(false)
	for {
		req, err := rc.ReadRequest()
		if err != nil {
			c.mu.Lock()
			if c.client == rc {
				c.client = nil
			}
			c.mu.Unlock()
			return
		}
		res := &base.Response{StatusCode: base.StatusOK, Header: base.Header{"CSeq": req.Header["CSeq"]}}
		switch req.Method {
		case base.Options:
			res.Header["Public"] = base.HeaderValue{"DESCRIBE, SETUP, PLAY, TEARDOWN"}
		case base.Describe:
			res.Header["Content-Type"] = base.HeaderValue{"application/sdp"}
			res.Header["Content-Base"] = base.HeaderValue{c.url() + "/"}
			res.Body = sdp
		case base.Setup:
			if !bytes.Contains([]byte(req.Header["Transport"][0]), []byte("TCP")) {
				res.StatusCode = base.StatusUnsupportedTransport
				break
			}
			res.Header["Transport"] = base.HeaderValue{"RTP/AVP/TCP;unicast;interleaved=0-1"}
			res.Header["Session"] = base.HeaderValue{"12345678;timeout=60"}
		case base.Play:
			res.Header["Session"] = base.HeaderValue{"12345678"}
			c.writeMu.Lock()
			err = rc.WriteResponse(res)
			c.writeMu.Unlock()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.client = rc
			c.mu.Unlock()
			continue
		default:
			res.Header["Session"] = base.HeaderValue{"12345678"}
		}
		c.writeMu.Lock()
		err = rc.WriteResponse(res)
		c.writeMu.Unlock()
		if err != nil {
			return
		}
	}
}

// send packetizes one access unit (NAL units) and writes it to the playing
// client; it records the unit as sent. Without a client it does nothing.
func (c *bigCamera) send(au [][]byte) error {
	c.mu.Lock()
	rc := c.client
	c.ts += 3600
	ts := c.ts
	c.mu.Unlock()
	if rc == nil {
		return nil
	}
	pkts, err := c.enc.Encode(au)
	if err != nil {
		return err
	}
	c.rec.mu.Lock()
	var b []byte
	for _, nalu := range au {
		b = append(b, 0, 0, 0, 1)
		b = append(b, nalu...)
	}
	c.rec.aus = append(c.rec.aus, b)
	c.rec.pkts = append(c.rec.pkts, len(pkts))
	c.rec.mu.Unlock()
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	for _, p := range pkts {
		p.Timestamp = ts
		buf, err := p.Marshal()
		if err != nil {
			return err
		}
		c.rec.mu.Lock()
		c.rec.largest = max(c.rec.largest, len(buf))
		c.rec.mu.Unlock()
		fr := base.InterleavedFrame{Channel: 0, Payload: buf}
		if err := rc.WriteInterleavedFrame(&fr, make([]byte, fr.MarshalSize())); err != nil {
			return errors.Join(errors.New("big camera: write"), err)
		}
	}
	return nil
}
