// Package compress reads and writes the compressed forms of an input file that the CSV
// contract allows, chosen by the name's suffix: `.csv.gz` (gzip) and `.csv.zst`
// (Zstandard), besides plain `.csv`.
//
// Reading streams with bounded memory whatever the file holds: gzip's window is 32 KiB
// by its format, and a Zstandard frame that asks for a window above MaxWindow is refused
// rather than allocated, so a hostile file cannot make the ingester allocate what the
// frame header claims. What a decompressor returns is sorted in two, because the two
// call for opposite handling: an error of the reader below (the disk, the network) is
// returned as it is, to be retried, and an error of the stream itself (bad magic, a
// truncated stream, a checksum mismatch) is a *CorruptError, a verdict on the bytes that
// no retry changes.
package compress

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Codec names, as GENERATOR_COMPRESS takes them.
const (
	None = "none"
	Gzip = "gzip"
	Zstd = "zstd"
)

// MaxWindow is the largest Zstandard window the reader accepts. The format's
// recommendation for decoders is to support 8 MiB; `zstd -19` uses 8 MiB, and only
// `--long` or `--ultra` ask for more. Each file being read holds at most this much.
const MaxWindow = 16 << 20

// Reasons of a whole-file rejection for a stream that cannot be decompressed.
const (
	ReasonCorrupt     = "corrupt_compressed"
	ReasonWindowLimit = "compression_window_too_large"
)

// CorruptError is a compressed stream that cannot be decoded: its content is at fault.
type CorruptError struct {
	Codec  string
	Reason string // ReasonCorrupt or ReasonWindowLimit
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s stream cannot be decompressed (%s): %v", e.Codec, e.Reason, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// CodecOf returns the codec a file name asks for: Gzip for `.gz`, Zstd for `.zst`, None
// otherwise.
func CodecOf(name string) string {
	switch {
	case strings.HasSuffix(name, ".gz"):
		return Gzip
	case strings.HasSuffix(name, ".zst"):
		return Zstd
	}
	return None
}

// Ext is the suffix a codec adds after `.csv`.
func Ext(codec string) string {
	switch codec {
	case Gzip:
		return ".gz"
	case Zstd:
		return ".zst"
	}
	return ""
}

// Reader returns the decompressed content of r as the name's suffix says (r itself for
// a plain name). The decompressor starts on the first Read, so a bad header is reported
// there like any other error of the stream. Close releases the decompressor; it does
// not close r.
func Reader(name string, r io.Reader) io.ReadCloser {
	codec := CodecOf(name)
	if codec == None {
		return io.NopCloser(r)
	}
	return &reader{codec: codec, src: &tracked{r: r}}
}

// tracked remembers the last error of the reader below the decompressor, so an error
// coming out of the decompressor can be told apart: the source's, or the stream's.
type tracked struct {
	r   io.Reader
	err error
}

func (t *tracked) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

type reader struct {
	codec string
	src   *tracked
	dec   io.Reader
	close func()
	err   error
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.dec == nil {
		if err := r.start(); err != nil {
			r.err = r.classify(err)
			return 0, r.err
		}
	}
	n, err := r.dec.Read(p)
	if err != nil && err != io.EOF {
		r.err = r.classify(err)
		return n, r.err
	}
	return n, err
}

func (r *reader) start() error {
	switch r.codec {
	case Gzip:
		z, err := gzip.NewReader(r.src)
		if err != nil {
			return err
		}
		r.dec, r.close = z, func() { _ = z.Close() }
	case Zstd:
		z := zstdDecoders.Get().(*zstd.Decoder)
		if err := z.Reset(r.src); err != nil {
			z.Close()
			return err
		}
		r.dec = z
		r.close = func() {
			// Released only after a clean stream: a decoder that met an error is dropped.
			if r.err == nil || r.err == io.EOF {
				_ = z.Reset(nil) // drop its reference to the file
				zstdDecoders.Put(z)
				return
			}
			z.Close()
		}
	}
	return nil
}

// zstdDecoders are reused across files: a new decoder allocates its window's history
// (8 MiB for the reference encoder's default level) on its first frame, which for files
// of a few MiB cost 40 times the decoding itself (BenchmarkZstdDecoderReuse). A pooled
// decoder keeps at most MaxWindow; the pool holds one per file being read at once, and
// the garbage collector empties it when idle. One block in flight (concurrency 1): the
// stream is decoded in the caller's goroutine, so nothing is left running.
var zstdDecoders = sync.Pool{New: func() any {
	z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(MaxWindow), zstd.WithDecoderMaxMemory(MaxWindow))
	if err != nil {
		panic("compress: zstd decoder options: " + err.Error()) // constant options: a programming error
	}
	return z
}}

// classify returns the source's own error when the source failed (the decompressor
// may pass it on as is, wrap it, or report the short input as io.ErrUnexpectedEOF),
// and a *CorruptError otherwise.
func (r *reader) classify(err error) error {
	if r.src.err != nil {
		return r.src.err
	}
	reason := ReasonCorrupt
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		reason = ReasonWindowLimit
	}
	if err == io.EOF { // a stream with no header at all: an empty .gz or .zst file
		err = io.ErrUnexpectedEOF
	}
	return &CorruptError{Codec: r.codec, Reason: reason, Err: err}
}

func (r *reader) Close() error {
	if r.close != nil {
		r.close() // before r.err is set below: it tells a clean stream from a failed one
		r.close = nil
	}
	if r.err == nil {
		r.err = errors.New("compress: read after Close")
	}
	return nil
}

// Writer compresses what is written to w with codec (w itself, wrapped to a no-op Close,
// for None). Close flushes the end of the stream; it does not close w. The encoders are
// reused across files: a new one costs 20 to 40 times the compression of a 1,000-row file
// (its tables), BenchmarkWriter.
func Writer(codec string, w io.Writer) (io.WriteCloser, error) {
	switch codec {
	case None, "":
		return nopWriteCloser{w}, nil
	case Gzip:
		z := gzipEncoders.Get().(*gzip.Writer)
		z.Reset(w)
		return &pooledWriter{WriteCloser: z, pool: &gzipEncoders}, nil
	case Zstd:
		z := zstdEncoders.Get().(*zstd.Encoder)
		z.Reset(w)
		return &pooledWriter{WriteCloser: z, pool: &zstdEncoders}, nil
	}
	return nil, fmt.Errorf("compression %q: want none, gzip or zstd", codec)
}

var (
	gzipEncoders = sync.Pool{New: func() any {
		z, err := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
		if err != nil {
			panic("compress: gzip level: " + err.Error()) // a constant: a programming error
		}
		return z
	}}
	// The default level with a 1 MiB window: files are a few MiB at most, and a smaller
	// window is less for every reader to hold (ours accepts up to MaxWindow).
	zstdEncoders = sync.Pool{New: func() any {
		z, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
		if err != nil {
			panic("compress: zstd encoder options: " + err.Error()) // constants: a programming error
		}
		return z
	}}
)

// pooledWriter returns its encoder to the pool once the stream is closed; an encoder
// whose stream is abandoned unclosed is left to the garbage collector.
type pooledWriter struct {
	io.WriteCloser
	pool *sync.Pool
}

func (p *pooledWriter) Close() error {
	if p.pool == nil {
		return errors.New("compress: writer closed twice")
	}
	err := p.WriteCloser.Close()
	if err == nil {
		p.pool.Put(p.WriteCloser)
	}
	p.pool = nil
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
