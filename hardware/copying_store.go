package hardware

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyingStore is paho's memory store, except that Get returns a copy of
// a PUBLISH packet. After a reconnection paho marks every stored PUBLISH
// as a duplicate (Dup = true) while its writer goroutine may be sending a
// packet just published, the same one: a data race in paho v1.5.1
// (eclipse-paho/paho.mqtt.golang#703) that a copy avoids. Such a message
// may still go out twice, which QoS 1 allows.
type copyingStore struct {
	*mqtt.MemoryStore
}

var _ mqtt.Store = copyingStore{}

func newCopyingStore() copyingStore {
	return copyingStore{MemoryStore: mqtt.NewMemoryStore()}
}

// Get returns the stored packet, a PUBLISH as a copy.
func (s copyingStore) Get(key string) packets.ControlPacket {
	p := s.MemoryStore.Get(key)
	if pub, ok := p.(*packets.PublishPacket); ok {
		cp := *pub
		return &cp
	}
	return p
}
