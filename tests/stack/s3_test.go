package stack

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// s3Stack is the s3 profile as processes: NATS with JetStream, versitygw on a posix root
// publishing object-created notifications (deploy/versitygw/event-filter.json, the compose
// file's filter) with its accounts in an IAM directory, `ingester s3-access` making the
// bucket, the accounts and the policy, and a generator writing zstd objects into the
// bucket and an ingester reading it, each with its own account, on the same PostgreSQL as
// the directory pair.
type s3Stack struct {
	genAddr, ingAddr string
}

// s3Metric tells whether a PromQL expression reads a metric only a bucket source has.
func s3Metric(expr string) bool {
	return strings.Contains(expr, "ecomstream_ingester_source_") || strings.Contains(expr, "ecomstream_ingester_notification_")
}

// s3Binaries finds versitygw (ECOMSTREAM_VERSITYGW, else PATH) and nats-server. Without
// them the bucket panels cannot be proved: the test says so and skips those queries,
// unless ECOMSTREAM_REQUIRE_S3=1 (.ci/run), where that is a failure.
func s3Binaries(t *testing.T) (vgw, nats string, ok bool) {
	t.Helper()
	vgw = os.Getenv("ECOMSTREAM_VERSITYGW")
	if vgw == "" {
		vgw, _ = exec.LookPath("versitygw")
	}
	nats, _ = exec.LookPath("nats-server")
	if vgw != "" && nats != "" {
		return vgw, nats, true
	}
	msg := "versitygw (scripts/versitygw.sh) or nats-server (Debian package nats-server) not found: the bucket panels are not checked"
	if os.Getenv("ECOMSTREAM_REQUIRE_S3") == "1" {
		t.Fatal(msg)
	}
	t.Log(msg)
	return "", "", false
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, what, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered at %s: %v", what, url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startS3(t *testing.T, vgw, nats, dbURL string) s3Stack {
	t.Helper()
	work := t.TempDir()
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	natsPort, natsMon, vgwPort, genPort, ingPort := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	const bucket, subject, key, secret = "ecomstream", "ecomstream.s3.events", "stack-test", "stack-test-secret"
	start(t, "nats-server", nats, nil, "--jetstream", "--store_dir", filepath.Join(work, "nats"),
		"--addr", "127.0.0.1", "--port", fmt.Sprint(natsPort), "--http_port", fmt.Sprint(natsMon))
	waitHTTP(t, "nats-server", "http://"+addr(natsMon)+"/healthz?js-enabled-only=true")

	gwRoot, iamDir := filepath.Join(work, "gw"), filepath.Join(work, "iam")
	for _, d := range []string{gwRoot, iamDir} { // the volumes s3-init hands over
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	natsURL := "nats://" + addr(natsPort)
	start(t, "versitygw", vgw, []string{
		"ROOT_ACCESS_KEY_ID=" + key, "ROOT_SECRET_ACCESS_KEY=" + secret, "VGW_IAM_DIR=" + iamDir, "VGW_PORT=" + addr(vgwPort),
		"VGW_HEALTH=/health", "VGW_QUIET=true", "VGW_KEEP_ALIVE=true", "VGW_EVENT_NATS_URL=" + natsURL, "VGW_EVENT_NATS_TOPIC=" + subject,
		"VGW_EVENT_FILTER=" + filepath.Join(root(t), "deploy", "versitygw", "event-filter.json"),
	}, "posix", gwRoot)
	waitHTTP(t, "versitygw", "http://"+addr(vgwPort)+"/health")

	// s3-access: the bucket, each service's account and the bucket policy, with the root
	// keys that no service gets.
	endpoint := []string{"AWS_ENDPOINT_URL=http://" + addr(vgwPort), "AWS_REGION=us-east-1"}
	account := func(role string) []string {
		return append(endpoint, "AWS_ACCESS_KEY_ID=stack-"+role, "AWS_SECRET_ACCESS_KEY=stack-"+role+"-secret")
	}
	access := exec.Command(filepath.Join(binDir, "ingester"), "s3-access", "--policy", filepath.Join(root(t), "deploy", "versitygw", "bucket-policy.json"))
	access.Env = append(endpoint, "AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY="+secret, "S3_BUCKET="+bucket)
	for _, role := range []string{"GENERATOR", "INGESTER", "COLLECTOR"} {
		r := strings.ToLower(role)
		access.Env = append(access.Env, "S3_"+role+"_ACCESS_KEY=stack-"+r, "S3_"+role+"_SECRET_KEY=stack-"+r+"-secret")
	}
	if out, err := access.CombinedOutput(); err != nil {
		t.Fatalf("ingester s3-access: %v\n%s", err, out)
	}
	loc := "s3://" + bucket + "/incoming/"
	start(t, "ingester-s3", filepath.Join(binDir, "ingester"), append([]string{
		"DATABASE_URL=" + dbURL, "INGESTER_SOURCE=" + loc, "INGESTER_NATS_URL=" + natsURL,
		"INGESTER_NATS_SUBJECT=" + subject, "INGESTER_RESCAN_INTERVAL=2s",
		"INGESTER_HTTP_ADDR=" + addr(ingPort), "INGESTER_INSTANCE=ingester-s3-1",
		// Unused with a bucket source; set so that nothing touches a default path.
		"INGESTER_INPUT_DIR=" + filepath.Join(work, "in"), "INGESTER_ARCHIVE_DIR=" + filepath.Join(work, "archive"),
		"INGESTER_FAILED_DIR=" + filepath.Join(work, "failed"),
	}, account("ingester")...))
	start(t, "generator-s3", filepath.Join(binDir, "generator"), append([]string{
		"GENERATOR_OUTPUT=" + loc, "GENERATOR_COMPRESS=zstd", "GENERATOR_HTTP_ADDR=" + addr(genPort),
		"GENERATOR_SLEEP=0.2", "GENERATOR_MIN_RECORDS=50", "GENERATOR_MAX_RECORDS=100",
		"GENERATOR_DURATION=5m", "GENERATOR_INSTANCE=gen-s3-1",
		"GENERATOR_OUTPUT_DIR=" + filepath.Join(work, "unused"),
	}, account("generator")...))
	return s3Stack{genAddr: addr(genPort), ingAddr: addr(ingPort)}
}
