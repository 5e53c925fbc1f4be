package collector

import "testing"

func TestLedger(t *testing.T) {
	pool := newDB(t)
	insertFiles(t, pool,
		file{latency: 1, age: 10, inserted: 90, rejected: 4, duplicate: 6},
		file{latency: 1, age: 9000, inserted: 10},
		file{latency: 1, age: 5, failed: true},
	)
	m := collect(t, &Ledger{DB: pool})
	for key, want := range map[string]float64{
		`ecomstream_collector_ledger_files{outcome="ingested"}`:    2,
		`ecomstream_collector_ledger_files{outcome="failed"}`:      1,
		`ecomstream_collector_ledger_records{outcome="inserted"}`:  100,
		`ecomstream_collector_ledger_records{outcome="rejected"}`:  4,
		`ecomstream_collector_ledger_records{outcome="duplicate"}`: 6,
		`ecomstream_collector_ledger_bytes`:                        300,
	} {
		if got := m[key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}
