package report

// The seed report's numbers (Spark Structured Streaming on 4 cores, 8 GB), kept as data so
// every run is printed side by side with the system it replaces. A zero or empty field is
// one the seed report does not give.

// SparkRun is one scenario of the seed report.
type SparkRun struct {
	Scenario       string
	Config         string
	Generated      int64
	Inserted       int64
	Skipped        int64
	SkippedPercent float64
	Throughput     float64 // rows/s
	P50, P75, P90  float64 // seconds
	P95, P99       float64
	AvgBatch       float64 // seconds
	PeakCPU        float64 // %
	PeakSparkGB    float64
	PeakPostgresGB float64
	Duplicates     int64
	// Bands is the seed report's distribution table (its own ranges per scenario).
	Bands []Band
}

// SparkRuns are the seed report's three runs by preset name.
var SparkRuns = map[string]SparkRun{
	"baseline": {Scenario: "baseline", Config: "50-100 rows/file every 2 s, 10 min, 30 s trigger",
		Generated: 2847, Inserted: 2823, Skipped: 24, SkippedPercent: 0.8, Throughput: 4.7,
		P50: 32, P75: 38, P90: 50, P95: 58, P99: 85, AvgBatch: 2.1, PeakCPU: 45,
		PeakSparkGB: 1.8, PeakPostgresGB: 0.9, Duplicates: 0,
		Bands: []Band{
			{Label: "0-10 seconds", Lo: 0, Hi: 10, Count: 142, Percent: 5.2, Cumulative: 5.2},
			{Label: "10-20 seconds", Lo: 10, Hi: 20, Count: 326, Percent: 11.8, Cumulative: 17.0},
			{Label: "20-30 seconds", Lo: 20, Hi: 30, Count: 856, Percent: 31.2, Cumulative: 48.2},
			{Label: "30-40 seconds", Lo: 30, Hi: 40, Count: 945, Percent: 34.4, Cumulative: 82.6},
			{Label: "40-60 seconds", Lo: 40, Hi: 60, Count: 445, Percent: 16.2, Cumulative: 98.8},
			{Label: "60+ seconds", Lo: 60, Count: 35, Percent: 1.2, Cumulative: 100},
		}},
	"high-load": {Scenario: "high-load", Config: "200-500 rows/file every 0.5 s, 10 min, 10 s trigger",
		Generated: 62340, Inserted: 61205, Skipped: 1135, SkippedPercent: 1.8, Throughput: 102,
		P50: 11, P75: 15, P90: 19, P95: 22, P99: 34, AvgBatch: 4.2, PeakCPU: 78,
		PeakSparkGB: 3.6, PeakPostgresGB: 1.7, Duplicates: 0,
		Bands: []Band{
			{Label: "0-5 seconds", Lo: 0, Hi: 5, Count: 2145, Percent: 3.5, Cumulative: 3.5},
			{Label: "5-10 seconds", Lo: 5, Hi: 10, Count: 18342, Percent: 30.1, Cumulative: 33.6},
			{Label: "10-15 seconds", Lo: 10, Hi: 15, Count: 25631, Percent: 42.0, Cumulative: 75.6},
			{Label: "15-20 seconds", Lo: 15, Hi: 20, Count: 12450, Percent: 20.4, Cumulative: 96.0},
			{Label: "20-30 seconds", Lo: 20, Hi: 30, Count: 2310, Percent: 3.8, Cumulative: 99.8},
			{Label: "30+ seconds", Lo: 30, Count: 127, Percent: 0.2, Cumulative: 100},
		}},
	"stress": {Scenario: "stress", Config: "1000 rows/file every 0.1 s, 5 min",
		Generated: 342891, Inserted: 298462, Skipped: 44429, SkippedPercent: 13, Throughput: 997,
		P50: 35, P95: 78, P99: 120, AvgBatch: 12.5, PeakCPU: 95, PeakSparkGB: 4.8, Duplicates: 0},
}

// SparkFor returns the seed report's run to compare a scenario with: max is compared with
// stress, Spark's highest rate.
func SparkFor(scenario string) (SparkRun, bool) {
	if scenario == "max" {
		scenario = "stress"
	}
	r, ok := SparkRuns[scenario]
	return r, ok
}

// SparkQueryTimes are the seed report's "Typical Time" per query.
var SparkQueryTimes = map[string]string{
	"count":               "2-3 ms",
	"by_user_id":          "5-10 ms",
	"by_product_id":       "5-10 ms",
	"by_time_range":       "10-20 ms",
	"group_by_event_type": "50-100 ms",
}

// SparkIndex is one row of the seed report's index table.
type SparkIndex struct {
	Name    string
	Size    string
	Usage   int64
	HitRate float64
}

// SparkIndexes by our index name (the seed's idx_events_timestamp is our idx_events_event_time).
var SparkIndexes = map[string]SparkIndex{
	"idx_events_event_type": {"idx_events_event_type", "2.1 MB", 1240, 98},
	"idx_events_user_id":    {"idx_events_user_id", "3.2 MB", 2156, 96},
	"idx_events_product_id": {"idx_events_product_id", "2.8 MB", 1897, 97},
	"idx_events_event_time": {"idx_events_timestamp", "2.5 MB", 3421, 99},
}

// SparkCacheHitRatio is the seed report's PostgreSQL cache hit ratio (%).
const SparkCacheHitRatio = 98.5
