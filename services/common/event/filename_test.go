package event

import "testing"

func TestInputFileNamesArePlainOrCompressedCSVAndNeverDotfiles(t *testing.T) {
	for name, want := range map[string]bool{
		"a.csv": true, "a.csv.gz": true, "a.csv.zst": true, "x.retry1.csv.gz": true,
		".a.csv": false, ".a.csv.gz": false, ".a.csv.zst.tmp": false, ".a.csv.tmp": false,
		"a.gz": false, "a.zst": false, "a.csv.bz2": false, "a.csv.gz.tmp": false, "a.txt": false, "csv": false,
	} {
		if got := IsInputFileName(name); got != want {
			t.Errorf("IsInputFileName(%q) = %v, want %v", name, got, want)
		}
	}
}
