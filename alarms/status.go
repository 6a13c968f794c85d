package alarms

import (
	"sync"
	"time"
)

// Broker modes of IntakeStatus.
const (
	BrokerEmbedded = "embedded"
	BrokerExternal = "external"
)

// IntakeStatus is a snapshot of the intake's connections, safe to show to
// operators: it holds no credentials.
type IntakeStatus struct {
	// Broker is "embedded" or "external".
	Broker string `json:"broker"`
	// Address is the embedded broker's TCP address, or the external
	// broker's host:port.
	Address string `json:"address"`
	// Connected is true while the intake is connected to the external
	// broker, or while the embedded broker serves.
	Connected bool `json:"connected"`
	// Since is when Connected last changed.
	Since time.Time `json:"since,omitzero"`
	// LastError is why the broker connection was last lost or refused.
	LastError string `json:"last_error,omitempty"`
	// Clients is the number of clients of the embedded broker.
	Clients int `json:"clients"`
	// Connections is the embedded broker's open sockets, those that have not
	// sent CONNECT included; ConnectionsRefused counts those closed at
	// accept past mqtt.max_connections or mqtt.max_connections_per_address,
	// ConnectTimeouts those closed for no CONNECT within mqtt.connect_timeout.
	Connections        int    `json:"connections"`
	ConnectionsRefused uint64 `json:"connections_refused"`
	ConnectTimeouts    uint64 `json:"connect_timeouts"`

	// StoreOK is false while writes to the store fail; StoreError says why
	// (as "redis: connection refused") and StoreSince since when.
	StoreOK    bool      `json:"store_ok"`
	StoreError string    `json:"store_error,omitempty"`
	StoreSince time.Time `json:"store_since,omitzero"`
	// StoreDurability says what the store keeps of acknowledged alarms
	// when it crashes, and StoreWarning, when set, what it can lose (as
	// "appendfsync everysec: a crash of Redis ... can lose ... 2 s").
	StoreDurability string `json:"store_durability,omitempty"`
	StoreWarning    string `json:"store_warning,omitempty"`

	// Devices is the number of configured devices, SupervisionLost of
	// those with an open supervision trouble.
	Devices         int `json:"devices"`
	SupervisionLost int `json:"supervision_lost"`
}

// health tracks the broker connection and the store, for Status.
type health struct {
	mu         sync.Mutex
	connected  bool
	since      time.Time
	lastError  string
	storeErr   string
	storeSince time.Time
}

func (h *health) setConnected(ok bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.lastError = err.Error()
	}
	if ok != h.connected || h.since.IsZero() {
		h.connected = ok
		h.since = time.Now()
	}
}

// storeResult records the outcome of a store operation.
func (h *health) storeResult(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil && h.storeErr != "":
		h.storeErr = ""
		h.storeSince = time.Now()
	case err != nil:
		if h.storeErr == "" {
			h.storeSince = time.Now()
		}
		h.storeErr = err.Error()
	}
}

func (h *health) storeFailing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.storeErr != ""
}

func (h *health) fill(st *IntakeStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st.Connected = h.connected
	st.Since = h.since
	st.LastError = h.lastError
	st.StoreOK = h.storeErr == ""
	st.StoreError = h.storeErr
	st.StoreSince = h.storeSince
}
