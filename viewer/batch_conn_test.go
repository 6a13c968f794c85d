package viewer

import (
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"
)

func batchPair(t *testing.T) (*batchConn, *net.UDPConn) {
	t.Helper()
	send, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = recv.SetReadBuffer(8 << 20)
	b := newBatchConn(send)
	t.Cleanup(func() {
		_ = b.Close()
		_ = recv.Close()
	})
	return b, recv
}

// TestBatchConnLonePacket: a write on an idle socket is in the kernel when
// it returns; nothing waits for a batch to fill.
func TestBatchConnLonePacket(t *testing.T) {
	b, recv := batchPair(t)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	if n, err := b.WriteToAddrPort([]byte("lone"), to); err != nil || n != 4 {
		t.Fatalf("write: %d, %v", n, err)
	}
	b.mu.Lock()
	busy, queued := b.busy, len(b.queue)
	b.mu.Unlock()
	if busy || queued != 0 {
		t.Fatalf("after a lone write: busy %v, %d queued", busy, queued)
	}
	buf := make([]byte, 100)
	_ = recv.SetReadDeadline(time.Now().Add(testTimeout))
	n, _, err := recv.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "lone" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// TestBatchConnDeliversInOrder: many writers at once; every packet
// arrives, and each writer's in the order it wrote them.
func TestBatchConnDeliversInOrder(t *testing.T) {
	b, recv := batchPair(t)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	const writers, each = 8, 400

	got := make(chan [2]uint32, writers*each)
	var reader sync.WaitGroup
	reader.Add(1)
	go func() {
		defer reader.Done()
		buf := make([]byte, 1500)
		for range writers * each {
			_ = recv.SetReadDeadline(time.Now().Add(testTimeout))
			n, _, err := recv.ReadFromUDP(buf)
			if err != nil || n != 1000 {
				return
			}
			got <- [2]uint32{binary.BigEndian.Uint32(buf), binary.BigEndian.Uint32(buf[4:])}
		}
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 1000)
			for i := range each {
				binary.BigEndian.PutUint32(p, uint32(w))
				binary.BigEndian.PutUint32(p[4:], uint32(i))
				if _, err := b.WriteToAddrPort(p, to); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	reader.Wait()
	close(got)

	next := make([]uint32, writers)
	count := 0
	for g := range got {
		w, i := g[0], g[1]
		if i != next[w] {
			t.Fatalf("writer %d: packet %d after %d", w, i, next[w])
		}
		next[w]++
		count++
	}
	if count != writers*each {
		t.Fatalf("received %d of %d packets", count, writers*each)
	}
	b.mu.Lock()
	t.Logf("%d of %d packets went in batches", b.batched, count)
	b.mu.Unlock()
}

// TestBatchConnClose: Close ends the flusher and may be repeated.
func TestBatchConnClose(t *testing.T) {
	b, _ := batchPair(t)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
	default:
		t.Fatal("flusher still running")
	}
	_ = b.Close()
}
