package settings

import (
	"io"
	"strings"
	"testing"
)

// COLLECTOR_SOURCE: empty measures the watched directory (required then); an s3://
// location replaces it (the directory is not needed); anything else is refused naming
// the variable.
func TestSourceIsADirectoryOrABucketLocation(t *testing.T) {
	for args, want := range map[string]string{
		"":                                       "",
		"--watch-dir=":                           "COLLECTOR_WATCH_DIR",
		"--source=s3://shop-events/incoming/":    "",
		"--source=s3://shop-events --watch-dir=": "",
		"--source=/data/incoming":                "COLLECTOR_SOURCE",
		"--source=s3://B/x":                      "COLLECTOR_SOURCE",
		// The ingesters' archive and failed prefixes: folders of the bucket, never empty
		// (an empty one would make every object "done"); only read with a source.
		"--source=s3://shop-events/in/ --s3-archive-prefix=in/done/ --s3-failed-prefix=in/bad/": "",
		"--source=s3://shop-events/in/ --s3-archive-prefix=":                                    "COLLECTOR_S3_ARCHIVE_PREFIX",
		"--source=s3://shop-events/in/ --s3-failed-prefix=bad":                                  "COLLECTOR_S3_FAILED_PREFIX",
		"--s3-archive-prefix=":                              "",
		"--source=s3://shop-events/in/ --s3-list-timeout=0": "COLLECTOR_S3_LIST_TIMEOUT",
	} {
		cfg, err := Load(append([]string{"--database-url=postgres://localhost/x"}, strings.Fields(args)...), io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		err = cfg.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", args, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want an error naming %s", args, err, want)
		}
	}
}
