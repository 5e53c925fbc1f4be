package listturn

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// turns returns Turns on a migrated database, connected as the ingester's role (what it
// may do is what the replicas may).
func turns(t *testing.T) (*Turns, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.DB(t)
	admin, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	if _, err := db.Migrate(ctx, admin); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, pgtest.AsRole(t, url, "ecomstream_ingester"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &Turns{Pool: pool, Source: "s3://b/in/"}, admin
}

// The first to ask lists; within the interval nobody else does, whichever source it is
// of; a listing older than the interval gives the turn to the next who asks.
func TestOneListingOfASourcePerInterval(t *testing.T) {
	tr, admin := turns(t)
	ctx := context.Background()
	take := func(source string, within time.Duration) bool {
		t.Helper()
		ok, err := (&Turns{Pool: tr.Pool, Source: source}).Take(ctx, within)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take("s3://b/in/", time.Hour) {
		t.Fatal("the first listing of a source was refused")
	}
	if take("s3://b/in/", time.Hour) {
		t.Fatal("a second listing within the interval was given the turn")
	}
	if !take("s3://b/other/", time.Hour) {
		t.Fatal("another source's listing waited for this one's turn")
	}
	// The last listing began an hour and a second ago (the database's clock).
	if _, err := admin.Exec(ctx, `UPDATE ecomstream_listing_turns SET began_at = clock_timestamp() - interval '1 hour 1 second'
		WHERE source = 's3://b/in/'`); err != nil {
		t.Fatal(err)
	}
	if !take("s3://b/in/", time.Hour) {
		t.Fatal("a listing past the interval was refused")
	}
	if take("s3://b/in/", time.Hour) {
		t.Fatal("the turn was given twice")
	}
}

// A time ahead of the database's (its clock since set back) does not stop the listings.
func TestATurnRecordedInTheFutureDoesNotStopTheListings(t *testing.T) {
	tr, admin := turns(t)
	ctx := context.Background()
	if _, err := admin.Exec(ctx, `INSERT INTO ecomstream_listing_turns VALUES ('s3://b/in/', clock_timestamp() + interval '1 day')`); err != nil {
		t.Fatal(err)
	}
	if ok, err := tr.Take(ctx, time.Hour); err != nil || !ok {
		t.Fatalf("turn %v, %v: a listing dated tomorrow stops every replica's", ok, err)
	}
}

// Replicas asking at the same moment: exactly one lists.
func TestReplicasAskingAtOnceGiveTheTurnToOne(t *testing.T) {
	tr, _ := turns(t)
	ctx := context.Background()
	const replicas = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	took := 0
	start := make(chan struct{})
	for range replicas {
		wg.Go(func() {
			<-start
			ok, err := tr.Take(ctx, time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				took++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if took != 1 {
		t.Fatalf("%d of %d replicas asking at once took the turn, want 1", took, replicas)
	}
}

// Without its table (a database not yet migrated to sql/0007) the error says so: the
// caller lists.
func TestAnErrorIsReturnedNotATurn(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ok, err := (&Turns{Pool: pool, Source: "s3://b/in/"}).Take(ctx, time.Hour)
	if err == nil || ok {
		t.Fatalf("turn %v, error %v on a database without the table", ok, err)
	}
}

// Within 0 (a replica's own listing, s3's ownListingEvery) always takes the turn and
// records it: the others leave theirs to it.
func TestWithinZeroRecordsTheListing(t *testing.T) {
	tr, _ := turns(t)
	ctx := context.Background()
	for i := range 2 {
		if ok, err := tr.Take(ctx, 0); err != nil || !ok {
			t.Fatalf("take %d within 0: %v, %v", i, ok, err)
		}
	}
	if ok, err := tr.Take(ctx, time.Hour); err != nil || ok {
		t.Fatalf("a listing recorded within 0 was not seen: %v, %v", ok, err)
	}
}

// A turn handed back (its listing failed) goes to the next to ask; one since taken by
// another replica is not handed back by the first.
func TestATurnHandedBackGoesToTheNext(t *testing.T) {
	a, _ := turns(t)
	b := &Turns{Pool: a.Pool, Source: a.Source}
	ctx := context.Background()
	if ok, err := a.Take(ctx, 0); err != nil || !ok {
		t.Fatalf("take: %v, %v", ok, err)
	}
	if err := a.Give(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Take(ctx, time.Hour); err != nil || !ok {
		t.Fatalf("the turn handed back was not given to the next: %v, %v", ok, err)
	}
	if err := a.Give(ctx); err != nil { // nothing of a's to hand back
		t.Fatal(err)
	}
	if ok, err := a.Take(ctx, time.Hour); err != nil || ok {
		t.Fatalf("b's turn was handed back by a: %v, %v", ok, err)
	}
}
