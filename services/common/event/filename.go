package event

import "strings"

// IsInputFileName tells whether a directory entry name is an input file under the CSV
// contract: *.csv, *.csv.gz or *.csv.zst, and not a dotfile (producers write dotfiles
// and rename them into place). The ingester's queue, its operator commands and the
// collector's backlog all use this one rule, so they count the same files.
func IsInputFileName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	return strings.HasSuffix(name, ".csv") || strings.HasSuffix(name, ".csv.gz") || strings.HasSuffix(name, ".csv.zst")
}
