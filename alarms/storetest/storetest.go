// Package storetest is the conformance suite that every alarms.Store
// implementation must pass (and alarms.IncidentStore: both are required),
// and a shared benchmark.
//
// An implementation's test calls Run with a Storage: a function that makes
// fresh, empty storage for one test (a new file, a new key prefix) and
// returns a function that opens a store on it. The suite closes each store
// it opens; it calls open again after closing the previous store to check
// that everything survives a restart. Storage registers its own clean-up
// with t.Cleanup.
//
//	storetest.Run(t, func(t *testing.T) func() alarms.Store {
//		path := filepath.Join(t.TempDir(), "alarms.db")
//		return func() alarms.Store { return mustOpen(t, path) }
//	})
//
// Beyond the comments of alarms.Store, the suite fixes these semantics:
//   - Events are ordered newest first by ReceivedAt, ties broken by the
//     order of storing (the later stored first).
//   - A synthetic-id event with window <= 0 is never deduplicated (losing
//     an alarm is worse than showing it twice).
//   - On a duplicate, AppendEvent returns false and a nil error, and sets
//     e.Offset to the stored event's offset.
//   - A page may be shorter than Limit while Next is set (stores may bound
//     the scan of a filter that no index serves); the last page has an
//     empty Next.
//   - A malformed cursor or Before is an error, not an empty page.
//   - Operations on a closed store return an error; Close is idempotent.
package storetest

import (
	"testing"

	"github.com/skywatch/skywatch/alarms"
)

// Storage makes fresh, empty storage for one test and returns a function
// that opens a store on it. Each call of open returns a new store on the
// same data; the suite closes the previous one first.
type Storage func(t *testing.T) (open func() alarms.Store)

// Run runs the conformance suite against the stores that newStorage makes.
func Run(t *testing.T, newStorage Storage) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func() alarms.Store)
	}{
		{"AppendDedup", testAppendDedup},
		{"SyntheticWindow", testSyntheticWindow},
		{"ConcurrentAppend", testConcurrentAppend},
		{"Filters", testFilters},
		{"Paging", testPaging},
		{"NewestFirst", testNewestFirst},
		{"Limits", testLimits},
		{"BadCursor", testBadCursor},
		{"Rejected", testRejected},
		{"RejectedBounded", testRejectedBounded},
		{"Devices", testDevices},
		{"Durability", testDurability},
		{"Close", testClose},
		{"IncidentVersions", testIncidentVersions},
		{"IncidentConcurrentWriters", testIncidentConcurrentWriters},
		{"IncidentQueries", testIncidentQueries},
		{"OpenIncidents", testOpenIncidents},
		{"EventsAfter", testEventsAfter},
		{"Units", testUnits},
		{"IncidentDurability", testIncidentDurability},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStorage(t))
		})
	}
}

// openT opens a store and closes it at the end of the test.
func openT(t *testing.T, open func() alarms.Store) alarms.Store {
	t.Helper()
	s := open()
	t.Cleanup(func() { _ = s.Close() })
	return s
}
