package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
	"github.com/ecomstream/ecomstream/services/common/s3test"
)

// service is a running ingester process that a test can stop and start again.
type service struct {
	t   *testing.T
	env []string
	cmd *exec.Cmd
	log bytes.Buffer
}

func startService(t *testing.T, env []string) *service {
	s := &service{t: t, env: env}
	s.start()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("ingester log:\n%s", s.log.String())
		}
	})
	return s
}

func (s *service) start() {
	s.t.Helper()
	s.cmd = exec.Command(ingesterBinary(s.t), "--http-addr", freeAddr(s.t), "--instance", "ops-s3", "--rescan-interval", "200ms")
	s.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, s.env...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *service) stop() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
		s.cmd = nil
	}
}

// migrate gives the database at url the ingester's schema.
func migrate(t *testing.T, url string) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := db.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
}

// statusOf runs `ingester status --json`.
func statusOf(t *testing.T, env []string) Status {
	t.Helper()
	code, out, errOut := runCmd(t, env, "status", "--json")
	var st Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("ingester status --json: exit %d\n%s%s", code, out, errOut)
	}
	return st
}

func TestOperatorRetriesARejectedObjectOfABucketAndTheIngesterCommitsItsRetry(t *testing.T) {
	ingesterBinary(t)
	g := s3test.StartGateway(t, s3test.Options{}, "ecom")
	c := g.Client(t)
	url := pgtest.DB(t)
	env := append([]string{"DATABASE_URL=" + url, "INGESTER_SOURCE=s3://ecom/in/"}, g.Env()...)
	svc := startService(t, env)
	ctx := context.Background()
	keys := func(prefix string) []string {
		var ks []string
		for o := range c.ListObjects(ctx, "ecom", minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err == nil {
				ks = append(ks, strings.TrimPrefix(o.Key, prefix))
			}
		}
		return ks
	}
	put := func(key, body string) {
		if _, err := c.PutObject(ctx, "ecom", key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// An object without the price column is rejected as a whole by the running ingester.
	header := strings.Join(event.Columns, ",")
	put("in/shop-1.csv", strings.ReplaceAll(header, ",price", "")+"\n00000000-0000-4000-8000-000000000001,2026-11-25T10:00:00Z,view,7,00000000-0000-4000-8000-000000000002,42,Books,1\n")
	var name string
	eventually(t, "shop-1.csv moved to failed/ with its reason", func() bool {
		for _, k := range keys("failed/") {
			if strings.HasSuffix(k, reasonSuffix) {
				name = strings.TrimSuffix(k, reasonSuffix)
				return true
			}
		}
		return false
	})
	if st := statusOf(t, env); st.Backlog.Dir != "s3://ecom/in/" || st.Backlog.Files != 0 || st.FailedDir != "s3://ecom/failed/" ||
		st.FailedDirFiles != 1 || st.FailedLastHour != 1 {
		t.Errorf("status after the rejection: %+v", st)
	}
	code, out, errOut := runCmd(t, env, "failed")
	for _, want := range []string{name + "  failed", "ingested as  s3://ecom/in/shop-1.csv", "missing_columns", "line 0", "ingester retry " + name} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("ingester failed: exit %d, lacks %q\n%s%s", code, want, out, errOut)
		}
	}
	t.Logf("$ ingester failed\n%s", out)

	// The operator fixes the object in place, and retries it while the ingester is down,
	// so the backlog shows it.
	svc.stop()
	good := header + "\n" +
		"00000000-0000-4000-8000-0000000000a1,2026-11-25T10:00:00Z,view,7,00000000-0000-4000-8000-000000000002,42,Books,12.50,1\n" +
		"00000000-0000-4000-8000-0000000000a2,2026-11-25T10:00:01Z,purchase,7,00000000-0000-4000-8000-000000000002,42,Books,12.50,2\n"
	put("failed/"+name, good)
	code, out, errOut = runCmd(t, env, "retry", name)
	if code != 0 || !strings.Contains(out, "is back in s3://ecom/in/ as shop-1.retry1.csv") {
		t.Fatalf("ingester retry: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("$ ingester retry %s\n%s", name, out)
	if st := statusOf(t, env); st.Backlog.Files != 1 || st.Backlog.OldestFile != "shop-1.retry1.csv" || st.FailedDirFiles != 0 {
		t.Errorf("status after the retry: %+v; want shop-1.retry1.csv pending, failed/ empty", st)
	}
	if ks := keys("failed/"); len(ks) != 0 {
		t.Errorf("failed/ still holds %v", ks)
	}

	svc.start()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ledger := func() map[string]string {
		m := map[string]string{}
		rows, err := pool.Query(ctx, `SELECT file_name, outcome || '/' || records_inserted FROM ingested_files`)
		if err != nil {
			return m
		}
		defer rows.Close()
		for rows.Next() {
			var n, o string
			rows.Scan(&n, &o)
			m[n] = o
		}
		return m
	}
	eventually(t, "the retried object committed", func() bool { return ledger()["s3://ecom/in/shop-1.retry1.csv"] == "ingested/2" })
	if l := ledger(); l["s3://ecom/in/shop-1.csv"] != "failed/0" || len(l) != 2 {
		t.Errorf("ledger %v: want the failure and the retry's commit, both", l)
	}
	eventually(t, "the retried object archived", func() bool { return len(keys("in/")) == 0 && len(keys("archive/shop-1.retry1.")) == 1 })
	st := statusOf(t, env)
	if st.Backlog.Files != 0 || st.FailedDirFiles != 0 || st.FailedLastHour != 1 || len(st.Replicas) != 1 || st.Replicas[0].FilesLastHour != 2 ||
		st.Replicas[0].RowsLastHour != 2 {
		t.Errorf("status after the commit: %+v", st)
	}
	code, _, errOut = runCmd(t, env, "retry", name)
	if code != 1 || !strings.Contains(errOut, "not a failed file") {
		t.Errorf("retry of an object no longer failed: exit %d\n%s", code, errOut)
	}
}

func TestBucketCommandsSayWhatToCheckOrToTryLaterAndNeverPrintAKey(t *testing.T) {
	ingesterBinary(t)
	g := s3test.StartGateway(t, s3test.Options{}, "ecom")
	url := pgtest.DB(t)
	migrate(t, url)
	const secret, pw = "Wr0ng-S3cret-Key", "Sup3r-S3cret"
	// with is env with kv added (the last of a duplicate variable wins).
	with := func(env []string, kv ...string) []string { return append(append([]string{}, env...), kv...) }
	good := append([]string{"DATABASE_URL=" + url, "INGESTER_SOURCE=s3://ecom/in/"}, g.Env()...)
	wrongKey := with(good, "AWS_SECRET_ACCESS_KEY="+secret)
	unreachable := with(wrongKey, "AWS_ENDPOINT_URL=http://127.0.0.1:1")
	noDB := with(good, "DATABASE_URL=postgres://ecom:"+pw+"@127.0.0.1:1/ecom?connect_timeout=1", "INGESTER_DB_WAIT=0s")
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{wrongKey, []string{"status"}, 1, "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"},
		{wrongKey, []string{"retry", "x.csv"}, 1, "check AWS_ACCESS_KEY_ID"},
		{unreachable, []string{"failed"}, 1, "try again later"},
		{unreachable, []string{"status"}, 1, "try again later"},
		{with(good, "AWS_ENDPOINT_URL=http://"+s3test.AccessKey+":"+secret+"@127.0.0.1:1"), []string{"status"}, 2, "must not carry credentials"},
		{with(good, "INGESTER_SOURCE=s3://E/in/"), []string{"status"}, 2, "INGESTER_SOURCE"},
		{good, []string{"retry", "sub/x.csv"}, 2, "not a path"},
		{good, []string{"retry", "x.csv"}, 1, "no such object in s3://ecom/failed/"},
		{noDB, []string{"status"}, 1, "not reachable"},
	} {
		code, out, errOut := runCmd(t, tc.env, tc.args...)
		all := out + errOut
		t.Logf("%v: exit %d: %s", tc.args, code, all)
		if code != tc.code || !strings.Contains(all, tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d saying %q", tc.args, code, all, tc.code, tc.want)
		}
		for _, s := range []string{secret, pw, s3test.SecretKey} {
			if strings.Contains(all, s) {
				t.Errorf("%v: a secret is in the output: %q", tc.args, all)
			}
		}
	}
}

// A key id that is also the bucket's name (compose's defaults: S3_ACCESS_KEY and
// S3_BUCKET are both "ecomstream") is not taken out of the messages that name the
// bucket: status prints that location anyway, and "s3://xxxxx/failed/" would send the
// operator nowhere. The secret key is still never printed.
func TestBucketErrorsNameTheBucketEvenWhenTheKeyIdIsItsName(t *testing.T) {
	ingesterBinary(t)
	bucket := s3test.AccessKey // a valid bucket name too
	g := s3test.StartGateway(t, s3test.Options{}, bucket)
	url := pgtest.DB(t)
	migrate(t, url)
	env := append([]string{"DATABASE_URL=" + url, "INGESTER_SOURCE=s3://" + bucket + "/in/"}, g.Env()...)
	code, out, errOut := runCmd(t, env, "retry", "x.csv")
	if want := "no such object in s3://" + bucket + "/failed/"; code != 1 || !strings.Contains(out+errOut, want) {
		t.Errorf("exit %d, output %q; want exit 1 saying %q", code, out+errOut, want)
	}
	if strings.Contains(out+errOut, s3test.SecretKey) {
		t.Errorf("the secret key is in the output: %q", out+errOut)
	}
}
