package queue

// OverflowPeak is how many overflow rescans ran at once at most.
func OverflowPeak(q *Queue) int32 { return q.overflowPeak.Load() }
