package archive

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ecomstream/ecomstream/services/common/compress"
)

// maxName is NAME_MAX of Linux file systems: the longest name the input directory can
// hold, so the longest name an archived file may need.
const maxName = 255

// seqNames is how many counted names (name.csv, name.1.csv … name.99.csv) are tried before
// names derived from the file's identity: counted names are easy to read, but a name
// reused ten thousand times must not cost ten thousand link attempts per move (nor stop
// there), and the derived name lets a retry find its earlier copy in one step.
const seqNames = 100

// maxExt is the longest extension kept apart from the stem: a name like "a.<200 bytes>"
// has no real extension, and keeping it whole would leave no room to shorten.
const maxExt = 16

// candidate returns the k-th name tried for base in a directory whose names may be limit
// bytes long. Names that do not fit keep a prefix of the stem and add a hash of the whole
// original name, so two long names sharing a prefix still get names of their own.
func candidate(base string, k, limit int, key Identity) string {
	var tag string
	switch {
	case k == 0:
		if len(base) <= limit {
			return base
		}
	case k < seqNames:
		tag = "." + strconv.Itoa(k)
	default:
		tag = "." + identityTag(base, key, k-seqNames)
	}
	return fit(base, tag, limit)
}

// fit returns stem+tag+ext of base, shortened with a hash of base to at most limit bytes.
func fit(base, tag string, limit int) string {
	stem, ext := split(base)
	if name := stem + tag + ext; len(name) <= limit {
		return name
	}
	sum := sha256.Sum256([]byte(base))
	h := "~" + hex.EncodeToString(sum[:6])
	return cut(stem, limit-len(h)-len(tag)-len(ext)) + h + tag + ext
}

func split(base string) (stem, ext string) {
	ext = filepath.Ext(base)
	if c := compress.Ext(compress.CodecOf(base)); c != "" && strings.HasSuffix(strings.TrimSuffix(base, c), ".csv") {
		ext = ".csv" + c // x.csv.gz -> x.1.csv.gz: still an input name for `ingester retry`
	}
	if len(ext) > maxExt || ext == base {
		return base, ""
	}
	return strings.TrimSuffix(base, ext), ext
}

// cut shortens s to at most n bytes, not splitting a UTF-8 character of a valid name.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	if utf8.ValidString(s) {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
	}
	return s[:n]
}

// identityTag names the i-th identity-derived name of a file: the same file gets the same
// names on every attempt, different files (almost surely) different ones.
func identityTag(base string, key Identity, i int) string {
	h := sha256.New()
	h.Write([]byte(base))
	var b [40]byte
	binary.BigEndian.PutUint64(b[0:], key.Dev)
	binary.BigEndian.PutUint64(b[8:], key.Ino)
	binary.BigEndian.PutUint64(b[16:], uint64(key.Size))
	binary.BigEndian.PutUint64(b[24:], uint64(key.ModTime.UnixNano()))
	binary.BigEndian.PutUint64(b[32:], uint64(i))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// restoredName is the k-th name under which a file taken out of the input directory by
// mistake is put back when its own name has been reused meanwhile. It stays eligible for
// loading (same extension, no leading dot).
func restoredName(base string, k int) string {
	tag := ".restored"
	if k > 0 {
		tag += "." + strconv.Itoa(k)
	}
	return fit(base, tag, maxName)
}
