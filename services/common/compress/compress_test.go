package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func compressed(t testing.TB, codec string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := Writer(codec, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func csvRows(n int) []byte {
	var b strings.Builder
	b.WriteString("event_id,event_time\n")
	for i := range n {
		fmt.Fprintf(&b, "00000000-0000-4000-8000-%012d,2026-01-01T00:00:00Z\n", i)
	}
	return []byte(b.String())
}

func readAll(name string, r io.Reader) ([]byte, error) {
	rc := Reader(name, r)
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestEachCodecRoundTripsByTheNamesSuffix(t *testing.T) {
	data := csvRows(5000)
	for _, c := range []struct{ codec, name string }{{None, "a.csv"}, {Gzip, "a.csv.gz"}, {Zstd, "a.csv.zst"}} {
		stored := compressed(t, c.codec, data)
		if c.codec != None && len(stored) >= len(data) {
			t.Errorf("%s: %d stored bytes for %d bytes of CSV", c.codec, len(stored), len(data))
		}
		got, err := readAll(c.name, bytes.NewReader(stored))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: content differs after a round trip", c.name)
		}
	}
}

func TestConcatenatedStreamsReadAsOne(t *testing.T) {
	a, b := csvRows(10), []byte("more\n")
	for _, c := range []struct{ codec, name string }{{Gzip, "a.csv.gz"}, {Zstd, "a.csv.zst"}} {
		stored := append(compressed(t, c.codec, a), compressed(t, c.codec, b)...)
		got, err := readAll(c.name, bytes.NewReader(stored))
		if err != nil || !bytes.Equal(got, append(append([]byte(nil), a...), b...)) {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
}

func wantCorrupt(t *testing.T, name string, stored []byte, reason string) {
	t.Helper()
	_, err := readAll(name, bytes.NewReader(stored))
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: error %v (%T), want a *CorruptError", name, err, err)
	}
	if ce.Reason != reason {
		t.Fatalf("%s: reason %q, want %q (%v)", name, ce.Reason, reason, err)
	}
}

func TestACorruptStreamIsAVerdictOnTheBytes(t *testing.T) {
	data := csvRows(5000)
	for _, c := range []struct{ codec, name string }{{Gzip, "a.csv.gz"}, {Zstd, "a.csv.zst"}} {
		stored := compressed(t, c.codec, data)
		t.Run(c.codec+"/bad magic", func(t *testing.T) {
			bad := append([]byte("not compressed at all\n"), stored...)
			wantCorrupt(t, c.name, bad, ReasonCorrupt)
		})
		t.Run(c.codec+"/plain CSV under a compressed name", func(t *testing.T) {
			wantCorrupt(t, c.name, data, ReasonCorrupt)
		})
		t.Run(c.codec+"/truncated", func(t *testing.T) {
			wantCorrupt(t, c.name, stored[:len(stored)/2], ReasonCorrupt)
		})
		t.Run(c.codec+"/truncated before the trailer", func(t *testing.T) {
			wantCorrupt(t, c.name, stored[:len(stored)-3], ReasonCorrupt)
		})
		t.Run(c.codec+"/checksum", func(t *testing.T) {
			// The last 4 bytes are the checksum of the content (gzip: CRC-32 then the size,
			// so flip the CRC; zstd: the frame's xxhash).
			bad := append([]byte(nil), stored...)
			i := len(bad) - 1
			if c.codec == Gzip {
				i = len(bad) - 8
			}
			bad[i] ^= 0xff
			wantCorrupt(t, c.name, bad, ReasonCorrupt)
		})
	}
	t.Run("gzip/empty file", func(t *testing.T) { wantCorrupt(t, "a.csv.gz", nil, ReasonCorrupt) })
}

// failing returns data, then err: a disk or a connection that fails part-way.
type failing struct {
	r   io.Reader
	err error
}

func (f *failing) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestAnErrorOfTheReaderBelowIsReturnedAsItIsNotAsCorruption(t *testing.T) {
	data := csvRows(20000)
	for _, c := range []struct{ codec, name string }{{None, "a.csv"}, {Gzip, "a.csv.gz"}, {Zstd, "a.csv.zst"}} {
		stored := compressed(t, c.codec, data)
		for _, cut := range []int{0, 5, len(stored) / 2} {
			_, err := readAll(c.name, &failing{r: bytes.NewReader(stored[:cut]), err: syscall.EIO})
			var ce *CorruptError
			if !errors.Is(err, syscall.EIO) || errors.As(err, &ce) {
				t.Fatalf("%s cut at %d: %v, want EIO and no corruption", c.name, cut, err)
			}
		}
	}
}

func TestAZstdWindowAboveTheLimitIsRefusedNotAllocated(t *testing.T) {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithWindowSize(64<<20), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	// Incompressible data, more than the limit: the frame says it needs a 64 MiB window.
	rnd := rand.New(rand.NewPCG(1, 2))
	chunk := make([]byte, 1<<20)
	for range 20 {
		for i := range chunk {
			chunk[i] = byte(rnd.Uint32())
		}
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wantCorrupt(t, "a.csv.zst", buf.Bytes(), ReasonWindowLimit)
}

func TestWriterRefusesAnUnknownCodec(t *testing.T) {
	if _, err := Writer("bzip2", io.Discard); err == nil {
		t.Fatal("bzip2 accepted")
	}
}

func TestCodecOfAndExtAgree(t *testing.T) {
	for _, c := range []string{None, Gzip, Zstd} {
		if got := CodecOf("x.csv" + Ext(c)); got != c {
			t.Errorf("CodecOf(x.csv%s) = %s, want %s", Ext(c), got, c)
		}
	}
}

// A pooled zstd decoder reads the next file whole after the previous one was left half
// read, after a corrupt one, and when several are read at once.
func TestPooledZstdDecodersReadEveryFileWhole(t *testing.T) {
	data := csvRows(20000)
	stored := compressed(t, Zstd, data)
	half := Reader("a.csv.zst", bytes.NewReader(stored))
	if _, err := io.ReadFull(half, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	half.Close() // back to the pool mid-stream
	wantCorrupt(t, "b.csv.zst", stored[:len(stored)/2], ReasonCorrupt)
	var readers []io.ReadCloser
	for range 3 {
		readers = append(readers, Reader("c.csv.zst", bytes.NewReader(stored)))
	}
	for i, r := range readers {
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("reader %d: %v, %d bytes of %d", i, err, len(got), len(data))
		}
	}
}

// BenchmarkZstdDecoderReuse: decoding one 10,000-row file, the reader (pooled decoders)
// against a new decoder per file, in the same run.
func BenchmarkZstdDecoderReuse(b *testing.B) {
	stored := compressed(b, Zstd, csvRows(10000))
	b.Run("pooled", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := Reader("a.csv.zst", bytes.NewReader(stored))
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
			r.Close()
		}
	})
	b.Run("new-per-file", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			z, err := zstd.NewReader(bytes.NewReader(stored), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, z); err != nil {
				b.Fatal(err)
			}
			z.Close()
		}
	})
}

// BenchmarkWriter: compressing one 1,000-row file (the report's stress files) with the
// pooled encoders, and with a new encoder per file, in the same run.
func BenchmarkWriter(b *testing.B) {
	data := csvRows(1000)
	for _, c := range []string{Gzip, Zstd} {
		b.Run(c+"/pooled", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				w, _ := Writer(c, io.Discard)
				w.Write(data)
				w.Close()
			}
		})
	}
	b.Run("zstd/new-per-file", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			z, _ := zstd.NewWriter(io.Discard, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
			z.Write(data)
			z.Close()
		}
	})
}

// A pooled encoder writes a whole, independent stream for each file, also after a
// stream was abandoned unclosed.
func TestPooledEncodersWriteIndependentStreams(t *testing.T) {
	for _, c := range []struct{ codec, name string }{{Gzip, "a.csv.gz"}, {Zstd, "a.csv.zst"}} {
		abandoned, _ := Writer(c.codec, io.Discard)
		abandoned.Write([]byte("never closed"))
		for i := range 3 {
			data := csvRows(100 * (i + 1))
			got, err := readAll(c.name, bytes.NewReader(compressed(t, c.codec, data)))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s stream %d: %v", c.codec, i, err)
			}
		}
		w, _ := Writer(c.codec, io.Discard)
		w.Close()
		if err := w.Close(); err == nil {
			t.Fatalf("%s: a second Close is not reported", c.codec)
		}
	}
}
