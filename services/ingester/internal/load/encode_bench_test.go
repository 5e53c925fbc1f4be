package load

import (
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/event"
)

// BenchmarkAppendRow is the binary COPY encoding of one row alone (no PostgreSQL), the
// part of the fast path the events descriptor drives; compare ns/op across versions.
func BenchmarkAppendRow(b *testing.B) {
	s := &source{file: "gen-1-000001.csv", ev: event.Event{EventTime: time.Now(), EventType: event.Purchase,
		UserID: 42, ProductID: 7, Category: "electronics", PriceCents: 129999, Quantity: 2}}
	buf := make([]byte, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		buf = s.appendRow(buf[:0])
	}
}
