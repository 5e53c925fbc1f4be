package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/s3access"
	"github.com/ecomstream/ecomstream/services/common/s3test"
)

func TestMain(m *testing.M) { maintest.Main(m, main) }

// Variables of the shell that share a setting's bare name (WORKERS, SETTLE, INPUT_DIR)
// are not settings: here they would not even parse, and the ingester does not read them.
func TestABareVariableOfTheShellIsNotASetting(t *testing.T) {
	code, _, stderr := maintest.Run(t, []string{"WORKERS=many", "SETTLE=soon", "MAX_BATCH_RECORDS=x", "EVENTS_RETENTION=soon"},
		"healthcheck", "--http-addr", maintest.Healthy(t))
	if code != 0 {
		t.Errorf("exit %d: %s; a bare variable was read as a setting", code, stderr)
	}
}

func TestBadSettingsExit2AsAProcess(t *testing.T) {
	code, _, stderr := maintest.Run(t, []string{"INGESTER_WORKERS=0", "DATABASE_URL=postgres://127.0.0.1:1/x"}, "--db-wait", "0")
	if code != 2 || !strings.Contains(stderr, "INGESTER_WORKERS (--workers) must be 1 to 64") {
		t.Errorf("exit %d, stderr %q; want 2 naming INGESTER_WORKERS (--workers)", code, stderr)
	}
	code, _, stderr = maintest.Run(t, []string{"INGESTER_SETTLE=soon"})
	if code != 2 || !strings.Contains(stderr, `INGESTER_SETTLE="soon"`) {
		t.Errorf("exit %d, stderr %q; want 2 naming INGESTER_SETTLE", code, stderr)
	}
}

func TestVersionPrintsTheBuild(t *testing.T) { maintest.CheckVersion(t, "ingester") }

func TestHelpListsEverySettingWithItsVariable(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"DATABASE_URL", "INGESTER_INPUT_DIR", "--input-dir", "INGESTER_SETTLE", "INGESTER_TRIGGER_INTERVAL", "INGESTER_MAX_BATCH_RECORDS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s:\n%s", want, out.String())
		}
	}
}

func TestBadSettingsGiveAClearErrorAndExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--on-success", "keep"}, want: "must be archive or delete"},
		{args: []string{"--workers", "0"}, want: "INGESTER_WORKERS (--workers) must be 1 to 64"},
		{env: map[string]string{"INGESTER_MAX_BATCH_RECORDS": "0"}, want: "INGESTER_MAX_BATCH_RECORDS"},
		{args: []string{"--settle", "soon"}, want: "invalid value"},
		{args: []string{"--log-level", "loud"}, want: "LOG_LEVEL (--log-level) must be debug, info, warn or error"},
		{args: []string{"--retry-base", "10s", "--retry-max", "1s"}, want: "INGESTER_RETRY_MAX (--retry-max) must be at least INGESTER_RETRY_BASE (--retry-base)"},
		{args: []string{"--db-statement-timeout", "-1s"}, want: "INGESTER_DB_"},
		{args: []string{"--max-file-attempts", "0"}, want: "INGESTER_MAX_FILE_ATTEMPTS"},
		{args: []string{"stray"}, want: "unexpected argument"},
		{args: []string{"--events-retention", "soon"}, want: "want whole days like 30d"},
		{env: map[string]string{"INGESTER_EVENTS_RETENTION": "1d"}, want: "INGESTER_EVENTS_RETENTION (--events-retention) must be off or at least two partition widths"},
		{args: []string{"--partition-width", "7h"}, want: "INGESTER_PARTITION_WIDTH (--partition-width) must divide a day"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			msg := errb.String() + out.String()
			if code != 2 || !strings.Contains(msg, tc.want) {
				t.Errorf("%v %v: exit %d, output %q; want exit 2 mentioning %q", tc.args, tc.env, code, msg, tc.want)
			}
		})
	}
}

// A retention policy `ingester migrate` would refuse (the ledger kept less long than the
// events) is a bad setting, said before the database: refused after the migrations, it
// left the database at sql/0006 with the policy "never", under the release still running
// (a failed Helm upgrade hook), whose retention the database then refused.
func TestARefusedRetentionPolicyExits2BeforeTheDatabase(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://127.0.0.1:1/x")
	for _, args := range [][]string{
		{"migrate", "--ledger-retention", "90d", "--db-wait", "0"},
		{"migrate", "--events-retention", "30d", "--ledger-retention", "7d", "--db-wait", "0"},
		{"--migrate-at-start", "--ledger-retention", "90d", "--db-wait", "0"},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if msg := errb.String(); code != 2 || !strings.Contains(msg, "INGESTER_LEDGER_RETENTION") {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming INGESTER_LEDGER_RETENTION", args, code, msg)
		}
	}
}

// INGESTER_CPU_PROFILE: the profile is written, gzipped as go tool pprof reads it, by
// the time the stop func returns (run defers it, so a SIGTERM's return writes it).
func TestCPUProfileIsWrittenWhenStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	stop, err := startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("%s holds %d bytes, not a gzipped profile", path, len(b))
	}
	if _, err := startCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.pprof")); err == nil {
		t.Fatal("a profile in a missing directory started")
	}
}

// A profile that cannot be written is a bad setting, said at once: before the wait for
// PostgreSQL (60 s by default, whose error would hide it) and before any migration.
func TestAnUnwritableCPUProfileExits2BeforeTheDatabase(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://127.0.0.1:1/x")
	var out, errb bytes.Buffer
	path := filepath.Join(t.TempDir(), "missing", "cpu.pprof")
	code := run([]string{"--cpu-profile", path, "--db-wait", "0"}, &out, &errb)
	if msg := errb.String(); code != 2 || !strings.Contains(msg, "CPU profile") {
		t.Errorf("exit %d, stderr %q; want 2 naming the CPU profile", code, msg)
	}
}

// SIGTERM flushes the profile: here while the ingester still waits for PostgreSQL, the
// first thing it does after creating the file. Stopped then, it exits 0: it took nothing.
func TestSIGTERMWritesTheCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	cmd := maintest.Command(context.Background(), "--cpu-profile", path, "--db-wait", "10m")
	cmd.Env = append(cmd.Env, "DATABASE_URL=postgres://127.0.0.1:1/x")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for { // the file exists once the profile has started
		if _, err := os.Stat(path); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("stopped while waiting for the database: %v, want exit 0 (a clean stop: nothing was taken)", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("%s holds %d bytes after SIGTERM, not a gzipped profile", path, len(b))
	}
}

// `ingester s3-access` is compose's one-shot job: as a process, from its environment,
// with the repository's policy file, it sets up a gateway so that each account has its
// rights (services/common/s3access tests them one by one) and says what is missing.
func TestS3AccessSetsUpTheGatewayFromItsEnvironment(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	env := []string{"AWS_ENDPOINT_URL=" + g.Endpoint(), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=" + s3test.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s3test.SecretKey, "S3_BUCKET=shop"}
	code, _, stderr := maintest.Run(t, env, "s3-access")
	if code != 2 || !strings.Contains(stderr, "S3_GENERATOR_ACCESS_KEY") || !strings.Contains(stderr, "S3_COLLECTOR_SECRET_KEY") {
		t.Errorf("without the accounts' keys: exit %d, %q; want 2 naming the variables", code, stderr)
	}
	for _, a := range s3test.Accounts {
		env = append(env, s3access.AccessVar(a.Role)+"="+a.Access, s3access.SecretVar(a.Role)+"="+a.Secret)
	}
	policy := filepath.Join(maintest.RepoRoot(t), s3access.PolicyFile)
	for range 2 { // every `compose up` runs it
		if code, stdout, stderr := maintest.Run(t, env, "s3-access", "--policy", policy); code != 0 {
			t.Fatalf("exit %d: %s %s", code, stdout, stderr)
		}
	}
	ctx := context.Background()
	gen, col := g.ClientAs(t, s3test.Accounts["generator"]), g.ClientAs(t, s3test.Accounts["collector"])
	if _, err := gen.PutObject(ctx, "shop", "incoming/a.csv", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("the generator's account: %v", err)
	}
	if err := gen.RemoveObject(ctx, "shop", "incoming/a.csv", minio.RemoveObjectOptions{}); minio.ToErrorResponse(err).Code != "AccessDenied" {
		t.Errorf("the generator's account deletes: %v", err)
	}
	for o := range col.ListObjects(ctx, "shop", minio.ListObjectsOptions{Prefix: "incoming/"}) {
		if o.Err != nil {
			t.Errorf("the collector's account: %v", o.Err)
		}
	}
}

// s3-access's output (compose keeps it in `docker compose logs`) never holds a secret:
// not on success, not when the gateway refuses the root keys, not when it is unreachable.
func TestS3AccessPrintsNoSecret(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	policy := filepath.Join(maintest.RepoRoot(t), s3access.PolicyFile)
	base := []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=" + s3test.AccessKey, "S3_BUCKET=shop"}
	secrets := []string{s3test.SecretKey, "wrong-root-secret"}
	for _, a := range s3test.Accounts {
		base = append(base, s3access.AccessVar(a.Role)+"="+a.Access, s3access.SecretVar(a.Role)+"="+a.Secret)
		secrets = append(secrets, a.Secret)
	}
	for name, env := range map[string][]string{
		"ok":           append(slices.Clone(base), "AWS_ENDPOINT_URL="+g.Endpoint(), "AWS_SECRET_ACCESS_KEY="+s3test.SecretKey),
		"wrong secret": append(slices.Clone(base), "AWS_ENDPOINT_URL="+g.Endpoint(), "AWS_SECRET_ACCESS_KEY=wrong-root-secret"),
		"unreachable":  append(slices.Clone(base), "AWS_ENDPOINT_URL=http://127.0.0.1:1", "AWS_SECRET_ACCESS_KEY="+s3test.SecretKey),
	} {
		code, stdout, stderr := maintest.Run(t, env, "s3-access", "--policy", policy, "--timeout", "10s")
		if (code == 0) != (name == "ok") {
			t.Errorf("%s: exit %d: %s %s", name, code, stdout, stderr)
		}
		for _, s := range secrets {
			if strings.Contains(stdout+stderr, s) {
				t.Errorf("%s: the output holds the secret %q: %s %s", name, s, stdout, stderr)
			}
		}
	}
}
