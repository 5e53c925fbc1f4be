package load

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// What a replica reads of the others' commits: their rows only, after the time asked,
// oldest first, at most the limit, each with the version's size and modification time.
func TestCommittedElsewhereReadsOtherInstancesRows(t *testing.T) {
	pool := newPool(t)
	dir := t.TempDir()
	me := &Loader{Pool: pool, Instance: "me", MaxRejected: 100}
	other := &Loader{Pool: pool, Instance: "other", MaxRejected: 100}
	mine := writeFile(t, dir, "mine.csv", row())
	load(t, me, mine)
	var theirs []string
	modified := map[string]time.Time{}
	sizes := map[string]int64{}
	for i := range 3 {
		it := writeFile(t, dir, fmt.Sprintf("theirs%d.csv", i), row())
		load(t, other, it)
		theirs = append(theirs, it.Name)
		modified[it.Name] = it.ModTime
		sizes[it.Name] = it.Size
	}
	ctx := context.Background()

	got, asOf, err := me.CommittedElsewhere(ctx, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 0 && asOf.Before(got[len(got)-1].At) {
		t.Fatalf("read as of %v, before the last row's commit at %v", asOf, got[len(got)-1].At)
	}
	if len(got) != 3 {
		t.Fatalf("read %d rows (%v), want the other instance's 3 (not this one's)", len(got), got)
	}
	for i, c := range got {
		if c.Name != theirs[i] {
			t.Fatalf("row %d is %s, want %s: oldest first", i, c.Name, theirs[i])
		}
		if want := modified[c.Name].Truncate(time.Microsecond); !c.Modified.Equal(want) {
			t.Fatalf("%s: modified %v, want the committed version's %v (PostgreSQL keeps microseconds)", c.Name, c.Modified, want)
		}
		if c.Size != sizes[c.Name] || c.Size == 0 {
			t.Fatalf("%s: size %d, want the committed version's %d", c.Name, c.Size, sizes[c.Name])
		}
		if i > 0 && c.At.Before(got[i-1].At) {
			t.Fatalf("row %d committed at %v, before row %d's %v", i, c.At, i-1, got[i-1].At)
		}
	}
	page, _, err := me.CommittedElsewhere(ctx, time.Time{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[1].Name != theirs[1] {
		t.Fatalf("limit 2 read %v, want the first two", page)
	}
	after, _, err := me.CommittedElsewhere(ctx, got[1].At, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || after[0].Name != theirs[2] {
		t.Fatalf("after the second row's time read %v, want only the third", after)
	}
	// Nothing after: no row, the database's clock all the same.
	none, noneAsOf, err := me.CommittedElsewhere(ctx, asOf.Add(time.Hour), 100)
	if err != nil || len(none) != 0 || !noneAsOf.After(asOf) {
		t.Fatalf("a read past every row read %v as of %v (%v), want none as of after %v", none, noneAsOf, err, asOf)
	}
	// The other instance reads this one's row, and only it.
	back, _, err := other.CommittedElsewhere(ctx, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 1 || back[0].Name != mine.Name {
		t.Fatalf("the other instance read %v, want only %s", back, mine.Name)
	}
}
