package viewer

import (
	"net"
	"net/netip"
	"sync"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"golang.org/x/net/ipv4"
)

// maxSendBatch bounds the packets one sendmmsg call carries, and so the
// packets that can wait behind one being sent.
const maxSendBatch = 64

// batchConn is a shared ICE UDP socket whose writes are gathered into
// sendmmsg calls without a timer. A write that finds the socket idle is
// sent at once by its own goroutine, as with a plain socket; writes that
// come while another is in the kernel (other viewers' sessions, on other
// threads) are queued, and the socket's flusher sends all of them in one
// call as soon as that write returns. A lone packet is never held back;
// under load the system calls per packet fall (at 50 viewers of a 2 Mbit/s
// camera about a third of the packets went in batches of about 28).
//
// It implements ice.AddrPortReaderWriter, which pion's UDP mux prefers to
// WriteTo. Its flusher goroutine ends with Close.
type batchConn struct {
	*net.UDPConn
	batch *ipv4.PacketConn // sendmmsg on Linux; one sendmsg per packet elsewhere

	mu      sync.Mutex
	busy    bool           // a write or the flusher is in the kernel
	closed  bool           // no more flushes
	queue   []ipv4.Message // copies of the packets waiting, len <= maxSendBatch
	spare   []ipv4.Message // the flusher's half of the double buffer
	room    *sync.Cond     // signalled when queue has room
	flush   chan struct{}  // wakes the flusher; capacity 1
	done    chan struct{}  // closed when the flusher has ended
	dropped uint64         // queued packets the kernel refused
	batched uint64         // packets sent by the flusher
}

func newBatchConn(c *net.UDPConn) *batchConn {
	b := &batchConn{
		UDPConn: c,
		batch:   ipv4.NewPacketConn(c),
		queue:   newMessages(),
		spare:   newMessages(),
		flush:   make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	b.room = sync.NewCond(&b.mu)
	go b.flusher()
	return b
}

func newMessages() []ipv4.Message {
	ms := make([]ipv4.Message, maxSendBatch)
	for i := range ms {
		ms[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 0, 1500)}, Addr: &net.UDPAddr{}}
	}
	return ms[:0]
}

// ReadFromAddrPort reads as the socket does.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.ReadFromUDPAddrPort(p)
}

// WriteTo sends through WriteToAddrPort.
func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return b.UDPConn.WriteTo(p, addr)
	}
	return b.WriteToAddrPort(p, ua.AddrPort())
}

// WriteToAddrPort sends p now, or queues a copy behind the write in the
// kernel. A queued packet's error is counted, not returned: its writer has
// gone on, as after any UDP write.
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	b.mu.Lock()
	for b.busy && !b.closed {
		if len(b.queue) < maxSendBatch {
			b.enqueue(p, addr)
			b.mu.Unlock()
			return len(p), nil
		}
		b.room.Wait()
	}
	b.busy = true
	b.mu.Unlock()

	n, err := b.WriteToUDPAddrPort(p, addr)

	b.mu.Lock()
	if len(b.queue) > 0 && !b.closed {
		// The flusher takes over busy.
		select {
		case b.flush <- struct{}{}:
		default:
		}
	} else {
		b.busy = false
		b.room.Broadcast()
	}
	b.mu.Unlock()
	return n, err
}

// enqueue copies p into the next queued message; b.mu is held.
func (b *batchConn) enqueue(p []byte, addr netip.AddrPort) {
	b.queue = b.queue[:len(b.queue)+1]
	m := &b.queue[len(b.queue)-1]
	m.Buffers[0] = append(m.Buffers[0][:0], p...)
	ua := m.Addr.(*net.UDPAddr)
	ip := addr.Addr()
	ua.IP = append(ua.IP[:0], ip.Unmap().AsSlice()...)
	ua.Port = int(addr.Port())
	ua.Zone = ip.Zone()
}

// flusher sends what queued behind a write, until the queue is empty,
// then gives busy back.
func (b *batchConn) flusher() {
	defer close(b.done)
	for range b.flush {
		b.mu.Lock()
		for len(b.queue) > 0 && !b.closed {
			out := b.queue
			b.queue, b.spare = b.spare[:0], out
			b.room.Broadcast()
			b.mu.Unlock()
			dropped := b.send(out)
			b.mu.Lock()
			b.dropped += dropped
			b.batched += uint64(len(out))
		}
		b.busy = false
		b.room.Broadcast()
		closed := b.closed
		b.mu.Unlock()
		if closed {
			return
		}
	}
}

// send writes ms in as few calls as the kernel allows; it returns how
// many messages the kernel refused (each is skipped).
func (b *batchConn) send(ms []ipv4.Message) uint64 {
	var dropped uint64
	for len(ms) > 0 {
		n, err := b.batch.WriteBatch(ms, 0)
		if err != nil {
			dropped++
			n = max(n, 1)
		}
		ms = ms[n:]
	}
	return dropped
}

// Close stops the flusher (what is still queued is not sent) and closes
// the socket. It may be called more than once.
func (b *batchConn) Close() error {
	b.mu.Lock()
	first := !b.closed
	b.closed = true
	b.room.Broadcast()
	b.mu.Unlock()
	if first {
		close(b.flush)
	}
	<-b.done
	return b.UDPConn.Close()
}

// batchNet is the system network of pion's multi-address UDP mux, with
// every UDP socket a batchConn.
type batchNet struct {
	*stdnet.Net
}

func newBatchNet() (batchNet, error) {
	n, err := stdnet.NewNet()
	return batchNet{n}, err
}

// ListenUDP opens a batchConn.
func (n batchNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return newBatchConn(c), nil
}
