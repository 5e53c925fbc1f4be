package ingest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
)

// The load package reuses its read buffers (256 KiB) and COPY buffers from one batch to
// the next. Many objects of distinct content, plain and compressed, small and larger
// than a read buffer, some with a duplicated row (their batch is rolled back and loaded
// again through the staging table) and some corrupt (their batch's COPY is aborted),
// through two workers reading ahead: every good object's rows land once with its own
// values (nothing of another object's bytes), checked by a checksum per object.
func TestReusedBuffersKeepEveryObjectsRowsItsOwn(t *testing.T) {
	b := newBucketRig(t)
	ctx := context.Background()
	const objects = 180
	want := map[int]string{} // the object's number (user_id - 1000) -> checksum of its rows
	wantRows := map[int]int{}
	for i := range objects {
		rows := 1 + (i*37)%60
		if i%25 == 3 {
			rows = 3000 // ~400 KiB: more than one read buffer
		}
		codec := []string{".csv", ".csv.gz", ".csv.zst"}[i%3]
		var csv strings.Builder
		csv.WriteString(strings.Join(event.Columns, ",") + "\n")
		var lines []string
		for r := range rows {
			// The category's length varies per object: a stale tail of another object's
			// longer row would show in this one's checksum.
			cat := strings.Repeat(string(rune('a'+i%26)), 1+(i*7+r)%60)
			price := fmt.Sprintf("%d.%02d", i+1, r%100)
			line := fmt.Sprintf("%08x-0000-4000-8000-%012x,2026-11-25T10:00:00Z,view,%d,00000000-0000-4000-8000-000000000001,%d,%s,%s,%d\n",
				i, r, i+1000, r+1, cat, price, 1+r%9)
			csv.WriteString(line)
			lines = append(lines, fmt.Sprintf("%08x-0000-4000-8000-%012x|%d|%s|%s|%d", i, r, r+1, cat, price, 1+r%9))
		}
		if i%17 == 5 { // a duplicated row: the batch goes through the staging table
			csv.WriteString(fmt.Sprintf("%08x-0000-4000-8000-%012x,2026-11-25T10:00:00Z,view,%d,00000000-0000-4000-8000-000000000001,1,zz,1.00,1\n", i, 0, i+1000))
		}
		body := []byte(csv.String())
		if codec != ".csv" {
			var stored bytes.Buffer
			w, err := compress.Writer(compress.CodecOf("x"+codec), &stored)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(body)
			w.Close()
			body = stored.Bytes()
		}
		corrupt := i%29 == 7 && codec != ".csv"
		if corrupt {
			body = body[:len(body)/2]
		} else {
			sort.Strings(lines)
			sum := md5.Sum([]byte(strings.Join(lines, "\n")))
			want[i], wantRows[i] = hex.EncodeToString(sum[:]), rows
		}
		key := fmt.Sprintf("in/obj-%04d%s", i, codec)
		if _, err := b.c.PutObject(ctx, testBucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	src := b.source(t)
	_, stop := b.run(t, src, Options{MaxBatchRecords: 500, MaxBatchFiles: 8, Workers: 2, Grace: time.Minute})
	await(t, "every object finished", func() bool { return b.keys(t, "in/") == 0 })
	stop()

	rows, err := b.pool.Query(ctx, `SELECT user_id, count(*), count(DISTINCT source_file),
		md5(string_agg(event_id::text || '|' || product_id || '|' || category || '|' || price || '|' || quantity, E'\n' ORDER BY event_id::text))
		FROM events GROUP BY user_id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for rows.Next() {
		var user, n, files int
		var sum string
		if err := rows.Scan(&user, &n, &files, &sum); err != nil {
			t.Fatal(err)
		}
		if n != wantRows[user-1000] || files != 1 {
			t.Errorf("object %d: %d rows from %d files, want %d from 1", user-1000, n, files, wantRows[user-1000])
		}
		got[user-1000] = sum
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i, sum := range want {
		if got[i] != sum {
			t.Errorf("object %d: rows' checksum %q, want %q", i, got[i], sum)
		}
	}
	for i := range got {
		if _, ok := want[i]; !ok {
			t.Errorf("rows of the corrupt object %d landed", i)
		}
	}
}
