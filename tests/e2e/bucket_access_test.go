package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
	"github.com/ecomstream/ecomstream/services/common/s3access"
	"github.com/ecomstream/ecomstream/services/common/s3test"
)

// s3AccessEnv is compose's s3-access job's environment for gateway g: its root keys, the
// bucket, each service's account.
func s3AccessEnv(g *s3test.Gateway) []string {
	env := append(g.EnvAs(s3test.Root), "S3_BUCKET="+bucketName)
	for _, a := range s3test.Accounts {
		env = append(env, s3access.AccessVar(a.Role)+"="+a.Access, s3access.SecretVar(a.Role)+"="+a.Secret)
	}
	return env
}

// TestBucketPipelineWithEachServicesOwnAccount is compose's s3 profile as processes: a
// gateway with an IAM directory, `ingester s3-access` run (twice, as every `compose up`
// does) with the root keys and the repository's policy file, then the generator, the
// ingester and the collector each with only its own account (and, in PostgreSQL, the
// ingester and the collector as their own roles). Every generated row lands
// exactly once, a corrupt object is moved to failed/ with its reason, and the collector
// measures the backlog; none of them ever had the root keys.
func TestBucketPipelineWithEachServicesOwnAccount(t *testing.T) {
	s3test.Require(t, true)
	r := &bucketRig{pg: pgtest.New(t), nats: s3test.StartNATS(t)}
	r.url = r.pg.URL("postgres")
	r.gw = s3test.StartGateway(t, s3test.Options{NATSURL: r.nats.URL(), Subject: subject, IAM: true}) // no bucket yet
	r.c = r.gw.Client(t)                                                                              // root: only to check
	policy := filepath.Join(maintest.RepoRoot(t), s3access.PolicyFile)
	for range 2 {
		cmd := exec.Command(filepath.Join(binDir, "ingester"), "s3-access", "--policy", policy)
		cmd.Env = s3AccessEnv(r.gw)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ingester s3-access: %v\n%s", err, out)
		}
	}
	genEnv, ingEnv, colEnv := r.gw.EnvAs(s3test.Accounts["generator"]), r.gw.EnvAs(s3test.Accounts["ingester"]), r.gw.EnvAs(s3test.Accounts["collector"])

	// In the database too, each as compose runs it: migrated by the administrator, then
	// the ingester and the collector as their own roles.
	ingURL := ingesterURL(t, r.url)
	ing := start(t, "ingester", append(ingEnv, "DATABASE_URL="+ingURL), "--source", "s3://"+bucketName+"/incoming/",
		"--nats-url", r.nats.URL(), "--nats-subject", subject, "--http-addr", freeAddr(t), "--instance", "ing-own",
		"--rescan-interval", "1s", "--db-wait", "120s", "--migrate-at-start=false")
	colAddr := freeAddr(t)
	col := start(t, "collector", append(colEnv, "DATABASE_URL="+pgtest.AsRole(t, r.url, "ecomstream_collector"), "COLLECTOR_MIGRATE_AT_START=false"),
		"--http-addr", colAddr, "--source", "s3://"+bucketName+"/incoming/", "--interval", "1s")
	gen := start(t, "generator", genEnv, "--output", "s3://"+bucketName+"/incoming", "--http-addr", freeAddr(t),
		"--instance", "gen-own", "--max-files", "40", "--seed", "21", "--min-records", "50", "--max-records", "300",
		"--sleep", "0.02", "--bad-rate", "0.02", "--duplicate-rate", "0.03", "--compress", "gzip")
	// A corrupt object, put with the generator's account: rejected whole, with its reason.
	corrupt := []byte("\x1f\x8bnot gzip at all")
	if _, err := r.gw.ClientAs(t, s3test.Accounts["generator"]).PutObject(context.Background(), bucketName, "incoming/broken.csv.gz",
		bytes.NewReader(corrupt), int64(len(corrupt)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := gen.wait(2 * time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	counts := generatorCounts(t, gen)
	db := pool(t, r.url)
	r.waitBucketDrained(t, db, counts.Files+1, 2*time.Minute)

	// The collector listed incoming/ with its list-only account: a backlog series, and no
	// failed listing.
	await(t, "the collector's bucket backlog", func() bool {
		m := scrapeText(colAddr)
		return m["ecomstream_collector_backlog_files"] != "" && m["ecomstream_collector_backlog_errors_total"] == "0"
	})
	for _, p := range []*proc{ing, col} {
		if err := p.stop(); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
	r.checkBucketInvariant(t, db, &counts)
	failed := r.keys(t, "failed/")
	if len(failed) != 2 || !strings.HasSuffix(failed[0]+failed[1], ".reason.txt") {
		t.Errorf("failed/ holds %v, want the corrupt object and its reason", failed)
	}
}

// scrapeText reads a /metrics page into name -> value (series without labels only).
func scrapeText(addr string) map[string]string {
	out := map[string]string{}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return out
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if name, v, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(name, "#") && !strings.Contains(name, "{") {
			out[name] = v
		}
	}
	return out
}
