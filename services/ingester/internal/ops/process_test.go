package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// ingesterBinary builds the real ingester once for the process tests.
func ingesterBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the ingester binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ecomstream-ops-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "ingester")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/ecomstream/ecomstream/services/ingester").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// runCmd runs the ingester binary with args and env (added to a clean environment).
func runCmd(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(ingesterBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), e.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// place puts a file as producers do: a dotfile renamed into place.
func place(t *testing.T, dir, name, body string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	write(t, tmp, body, time.Time{})
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds, giving up (a failure, not a timing assertion)
// after a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1200; i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gave up waiting: %s", what)
}

func TestOperatorFixesAFailedFileAndARunningIngesterCommitsItsRetryAsANewVersion(t *testing.T) {
	bin := ingesterBinary(t)
	url := pgtest.DB(t)
	root := t.TempDir()
	in, archive, failed := filepath.Join(root, "incoming"), filepath.Join(root, "archive"), filepath.Join(root, "failed")
	env := []string{"DATABASE_URL=" + url, "INGESTER_INPUT_DIR=" + in, "INGESTER_ARCHIVE_DIR=" + archive, "INGESTER_FAILED_DIR=" + failed}

	svc := exec.Command(bin, "--http-addr", freeAddr(t), "--instance", "ops-proc", "--rescan-interval", "200ms")
	svc.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var svcLog bytes.Buffer
	svc.Stdout, svc.Stderr = &svcLog, &svcLog
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Process.Signal(syscall.SIGTERM)
		svc.Wait()
		if t.Failed() {
			t.Logf("ingester log:\n%s", svcLog.String())
		}
	})
	eventually(t, "the ingester creates its directories", func() bool { return exists(in) && exists(failed) })

	// A file without the price column is rejected as a whole.
	header := strings.Join(event.Columns, ",")
	badHeader := strings.ReplaceAll(header, ",price", "")
	place(t, in, "shop-1.csv", badHeader+"\n00000000-0000-4000-8000-000000000001,2026-11-25T10:00:00Z,view,7,00000000-0000-4000-8000-000000000002,42,Books,1\n")
	eventually(t, "shop-1.csv moved to the failed directory", func() bool { return exists(filepath.Join(failed, "shop-1.csv.reason.txt")) })

	code, out, errOut := runCmd(t, env, "failed")
	if code != 0 || !strings.Contains(out, "shop-1.csv  failed") || !strings.Contains(out, "missing_columns") ||
		!strings.Contains(out, "line 0") || !strings.Contains(out, "ingester retry shop-1.csv") {
		t.Fatalf("ingester failed: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("$ ingester failed\n%s", out)

	// The operator fixes the file in place and retries it.
	good := header + "\n" +
		"00000000-0000-4000-8000-0000000000a1,2026-11-25T10:00:00Z,view,7,00000000-0000-4000-8000-000000000002,42,Books,12.50,1\n" +
		"00000000-0000-4000-8000-0000000000a2,2026-11-25T10:00:01Z,purchase,7,00000000-0000-4000-8000-000000000002,42,Books,12.50,2\n"
	write(t, filepath.Join(failed, "shop-1.csv"), good, time.Time{})
	code, out, errOut = runCmd(t, env, "retry", "shop-1.csv")
	if code != 0 || !strings.Contains(out, "shop-1.retry1.csv") {
		t.Fatalf("ingester retry: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("$ ingester retry shop-1.csv\n%s", out)

	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ledger := func() map[string]string {
		rows, err := pool.Query(context.Background(), `SELECT file_name, outcome || '/' || records_inserted FROM ingested_files`)
		if err != nil {
			return nil
		}
		m := map[string]string{}
		for rows.Next() {
			var n, o string
			rows.Scan(&n, &o)
			m[n] = o
		}
		rows.Close()
		return m
	}
	eventually(t, "the retried file committed", func() bool { return ledger()["shop-1.retry1.csv"] == "ingested/2" })
	if l := ledger(); l["shop-1.csv"] != "failed/0" || len(l) != 2 {
		t.Errorf("ledger %v: want the failure and the retry's commit, both", l)
	}
	eventually(t, "the retried file archived", func() bool { return exists(filepath.Join(archive, "shop-1.retry1.csv")) })

	code, out, errOut = runCmd(t, env, "status", "--json")
	var st Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("ingester status --json: exit %d\n%s%s", code, out, errOut)
	}
	if st.Backlog.Files != 0 || len(st.Replicas) != 1 || st.Replicas[0].Instance != "ops-proc" || st.Replicas[0].FilesLastHour != 2 ||
		st.Replicas[0].RowsLastHour != 2 || st.FailedLastHour != 1 || st.FailedDirFiles != 0 {
		t.Errorf("status %+v", st)
	}
	code, out, _ = runCmd(t, env, "status")
	t.Logf("$ ingester status\n%s", out)
	if code != 0 || !strings.Contains(out, "ops-proc") {
		t.Errorf("ingester status: exit %d\n%s", code, out)
	}
	code, out, errOut = runCmd(t, env, "retry", "shop-1.csv")
	if code != 1 || !strings.Contains(errOut, "not a failed file") {
		t.Errorf("retry of a file no longer failed: exit %d\n%s%s", code, out, errOut)
	}
}

func TestCommandsExitTwoOnBadUsageOneOnFailureAndNeverPrintThePassword(t *testing.T) {
	root := t.TempDir()
	dirs := []string{"INGESTER_INPUT_DIR=" + root, "INGESTER_FAILED_DIR=" + filepath.Join(root, "failed"), "INGESTER_ARCHIVE_DIR=" + filepath.Join(root, "archive")}
	const pw = "Sup3r-S3cret"
	unreachable := append([]string{"DATABASE_URL=postgres://ecom:" + pw + "@127.0.0.1:1/ecom?connect_timeout=1", "INGESTER_DB_WAIT=0s"}, dirs...)
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{unreachable, []string{"status"}, 1, "not reachable"},
		{unreachable, []string{"failed"}, 1, "not reachable"},
		{unreachable, []string{"retry", "x.csv"}, 1, "not a failed file"},
		{append([]string{"DATABASE_URL=postgres://ecom:" + pw + "@127.0.0.1:notaport/ecom"}, dirs...), []string{"status"}, 2, "not a valid PostgreSQL URL"},
		{append([]string{"DATABASE_URL=host=127.0.0.1 port=1 password=" + pw + " connect_timeout=1", "INGESTER_DB_WAIT=0s"}, dirs...), []string{"status", "--json"}, 1, "not reachable"},
		{dirs, []string{"failed", "--limit", "0"}, 2, "--limit"},
		{dirs, []string{"failed", "--since", "soon"}, 2, "invalid value"},
		{dirs, []string{"status", "extra"}, 2, "unexpected argument"},
		{dirs, []string{"retry"}, 2, "one NAME"},
		{dirs, []string{"retry", "../etc/passwd"}, 2, "not a path"},
		{append([]string{"INGESTER_WORKERS=0"}, dirs...), []string{"status"}, 2, "INGESTER_WORKERS"},
		{dirs, []string{"status", "--input-dir", ""}, 2, "INGESTER_INPUT_DIR"},
	} {
		code, out, errOut := runCmd(t, tc.env, tc.args...)
		all := out + errOut
		if code != tc.code || !strings.Contains(all, tc.want) {
			t.Errorf("%v %v: exit %d, output %q; want exit %d saying %q", tc.env[0], tc.args, code, all, tc.code, tc.want)
		}
		if strings.Contains(all, pw) {
			t.Errorf("%v: the password is in the output: %q", tc.args, all)
		}
	}
	for _, c := range []string{"status", "failed", "retry"} {
		code, out, _ := runCmd(t, dirs, c, "--help")
		for _, want := range []string{"Usage: ingester " + c, "DATABASE_URL", "INGESTER_INPUT_DIR", "INGESTER_FAILED_DIR"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("%s --help: exit %d, lacks %q:\n%s", c, code, want, out)
			}
		}
	}
}
