package load

// freeList keeps up to its capacity of idle values (chunks, COPY buffers, read buffers)
// for the next batches. Not a sync.Pool: that drops its items at every GC, and a buffer
// made again per batch is what these lists exist to avoid (a chunk grown again per batch
// doubled the heap's peak; a read buffer made per object cost 6 % of the ingester's CPU).
// The capacity bounds the idle values kept; one per worker is what is used.
type freeList[T any] struct {
	c   chan T
	new func() T
}

func newFreeList[T any](capacity int, new func() T) *freeList[T] {
	return &freeList[T]{c: make(chan T, capacity), new: new}
}

// get returns an idle value, or a new one if none is idle.
func (f *freeList[T]) get() T {
	select {
	case v := <-f.c:
		return v
	default:
		return f.new()
	}
}

// put keeps v for a later get, or drops it if the list is full. The caller has reset it.
func (f *freeList[T]) put(v T) {
	select {
	case f.c <- v:
	default:
	}
}
