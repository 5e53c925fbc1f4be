package ops

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable makes text from a file or a table safe for a terminal and bounded: anything
// that is not a printable character (control characters, terminal escape sequences,
// bidirectional overrides, invalid UTF-8) is shown as an escape, and at most max bytes
// of the input are shown.
func printable(s string, max int) string {
	var b strings.Builder
	cut := len(s) > max
	if cut {
		s = s[:max]
	}
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02X`, s[0])
			size = 1
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case unicode.IsPrint(r):
			b.WriteString(s[:size])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			fmt.Fprintf(&b, `\u%04X`, r)
		}
		s = s[size:]
	}
	if cut {
		b.WriteString(" …")
	}
	return b.String()
}

// bytesText is a size a person reads at a glance.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
