package s3

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/objstore"
)

// A derived name is one JetStream accepts, the same for the same location on every
// replica, and another for any other bucket or prefix, including those whose readable
// parts collide.
func TestConsumerNamesAreValidStableAndOnePerLocation(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	locs := []objstore.Location{
		{Bucket: "shop", Prefix: "incoming/"},
		{Bucket: "shop", Prefix: "incoming/eu/"},
		{Bucket: "shop", Prefix: "incoming_eu/"}, // readable part as incoming/eu/'s
		{Bucket: "shop", Prefix: ""},
		{Bucket: "shop.example.com", Prefix: "a b/*/>/"},
		{Bucket: "other", Prefix: "incoming/"},
		{Bucket: strings.Repeat("b", 63), Prefix: strings.Repeat("p/", 100)},
		{Bucket: strings.Repeat("b", 63), Prefix: strings.Repeat("p/", 101)}, // cut to the same readable part
	}
	seen := map[string]objstore.Location{}
	for _, l := range locs {
		n := ConsumerName(l)
		if !valid.MatchString(n) {
			t.Errorf("%v: %q is not a valid consumer name", l, n)
		}
		if n != ConsumerName(l) {
			t.Errorf("%v: name not stable", l)
		}
		if o, dup := seen[n]; dup {
			t.Errorf("%v and %v share %q", o, l, n)
		}
		seen[n] = l
	}
}

// Two deployments on different prefixes of one bucket hear of the same subject. With the
// names derived from their locations, each has a consumer of its own and is notified of
// every one of its objects, with no listing; one shared name would hand each about half
// of its notifications (the other acknowledging and dropping the rest).
func TestTwoPrefixesOnOneSubjectEachHearOfAllTheirObjects(t *testing.T) {
	e := setup(t, true)
	var log syncBuffer
	src := func(prefix string) *Source {
		loc := objstore.Location{Bucket: bucket, Prefix: prefix}
		s, err := New(e.c, Options{Location: loc, ArchivePrefix: "archive/", FailedPrefix: "failed/",
			ListInterval: time.Hour, Ticks: make(chan time.Time), Log: zerolog.New(&log), Metrics: NewMetrics(nil),
			NATSURL: e.n.URL(), NATSSubject: "s3.events", NATSStream: "S3TEST", NATSConsumer: ConsumerName(loc)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	eu, us := src("eu/"), src("us/")
	euHints, usHints := follow(t, eu), follow(t, us)
	wantEU, wantUS := map[string]string{}, map[string]string{}
	// Runs of each prefix (a shared consumer hands messages round-robin to its pullers:
	// alternating puts would happen to reach the right ones).
	for i := range 12 {
		p, want := "eu", wantEU
		if i%6 >= 3 {
			p, want = "us", wantUS
		}
		key := fmt.Sprintf("%s/f%d.csv", p, i)
		want[key] = e.put(t, key, "x\n").ETag
	}
	collect(t, euHints, wantEU)
	collect(t, usHints, wantUS)
	if strings.Contains(log.String(), "plain subscription") {
		t.Fatalf("a source fell back from JetStream: %s", log.String())
	}
}
