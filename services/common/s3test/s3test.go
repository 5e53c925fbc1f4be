// Package s3test gives tests a real, throwaway S3 server and a real NATS server: a
// versitygw gateway on its posix backend over a temp directory, and a nats-server with
// JetStream, both on loopback ports, which tests can kill and restart on the same port
// and data. Nothing is mocked: what passes here passed against servers users run.
//
// The gateway binary is found through $ECOMSTREAM_VERSITYGW, then PATH, then the CI
// cache (/root/.cache/ecomstream-tools/versitygw-*/versitygw); nats-server through
// $ECOMSTREAM_NATS_SERVER, then PATH, then /usr/sbin. Without them a test skips, unless
// ECOMSTREAM_REQUIRE_S3 is set (CI sets it): then it fails, so CI never passes by skipping.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/common/s3access"
	"github.com/ecomstream/ecomstream/services/common/servertest"
)

// RequireEnv names the variable that turns a missing server binary into a test failure.
const RequireEnv = "ECOMSTREAM_REQUIRE_S3"

// Test credentials of the gateway's root account: throwaway, loopback only.
const (
	AccessKey = "ecomstream-test"
	SecretKey = "ecomstream-test-secret"
)

// GatewayBinary finds the versitygw binary.
func GatewayBinary() (string, error) {
	if p := os.Getenv("ECOMSTREAM_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("ECOMSTREAM_VERSITYGW: %w", err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	m, _ := filepath.Glob("/root/.cache/ecomstream-tools/versitygw-*/versitygw")
	sort.Sort(sort.Reverse(sort.StringSlice(m)))
	if len(m) > 0 {
		return m[0], nil
	}
	return "", errors.New("versitygw not found (set ECOMSTREAM_VERSITYGW, put it on PATH, or `go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`)")
}

// NATSServer finds the nats-server binary.
func NATSServer() (string, error) {
	if p := os.Getenv("ECOMSTREAM_NATS_SERVER"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server", nil
	}
	return "", errors.New("nats-server not found (apt-get install nats-server, or set ECOMSTREAM_NATS_SERVER)")
}

// Require skips tb when a server binary is missing, or fails it when RequireEnv is set.
func Require(tb testing.TB, nats bool) {
	tb.Helper()
	_, err := GatewayBinary()
	if err == nil && nats {
		_, err = NATSServer()
	}
	if err != nil {
		servertest.Missing(tb, RequireEnv, "S3 server", err)
	}
}

// proc is one server process that can be killed and started again on the same port.
type proc struct {
	name string
	args func() []string
	port int
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	a := p.args()
	cmd := exec.Command(a[0], a[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", a[0], err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exit) }()
	p.cmd, p.exit = cmd, exit
	addr := "127.0.0.1:" + strconv.Itoa(p.port)
	deadline := time.Now().Add(60 * time.Second) // a bound on a broken start, not a timing assertion
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exit:
			p.cmd = nil
			return fmt.Errorf("%s exited at start: %s", p.name, servertest.Tail(p.log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on %s: %s", p.name, addr, servertest.Tail(p.log))
		}
	}
}

// kill sends SIGKILL (a crash: no clean shutdown) and waits for the process to end.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exit
	p.cmd = nil
}

// NATS is a private nats-server with JetStream (its store survives a restart).
type NATS struct{ p *proc }

// StartNATS starts a nats-server that lives until the test ends.
func StartNATS(tb testing.TB) *NATS {
	tb.Helper()
	return startNATS(tb, "-js")
}

// StartNATSWithoutJetStream starts a nats-server that has no JetStream (core NATS only).
func StartNATSWithoutJetStream(tb testing.TB) *NATS {
	tb.Helper()
	return startNATS(tb)
}

func startNATS(tb testing.TB, js ...string) *NATS {
	tb.Helper()
	Require(tb, true)
	bin, _ := NATSServer()
	dir := tb.TempDir()
	port, err := servertest.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	n := &NATS{p: &proc{name: "nats-server", port: port, log: filepath.Join(dir, "nats.log"), args: func() []string {
		return append([]string{bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", filepath.Join(dir, "js")}, js...)
	}}}
	if err := n.p.start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.p.kill)
	return n
}

// URL is the server's client URL.
func (n *NATS) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.p.port) }

// Kill ends the server abruptly.
func (n *NATS) Kill() { n.p.kill() }

// Start runs it again on the same port and store.
func (n *NATS) Start() error { return n.p.start() }

// Gateway is a private versitygw over a posix directory.
type Gateway struct {
	Root string // the posix backend's directory: one sub-directory per bucket
	p    *proc
}

// Options of a gateway.
type Options struct {
	// NATSURL and Subject make the gateway publish bucket notifications (S3 event
	// records, JSON) to that subject. The gateway connects at start: NATS must be up.
	NATSURL, Subject string
	// EventFilter, when set, is the gateway's event filter (a JSON file of event names,
	// as deploy/versitygw/event-filter.json): the events it turns off are not published.
	EventFilter string
	// IAM keeps accounts besides root in an IAM directory (--iam-dir), as compose's
	// gateway does; Restrict then creates the services' accounts.
	IAM bool
}

// StartGateway starts a gateway that lives until the test ends, with the given buckets.
func StartGateway(tb testing.TB, o Options, buckets ...string) *Gateway {
	tb.Helper()
	Require(tb, o.NATSURL != "")
	bin, _ := GatewayBinary()
	dir := tb.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		tb.Fatal(err)
	}
	if o.IAM {
		if err := os.MkdirAll(filepath.Join(dir, "iam"), 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	port, err := servertest.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	g := &Gateway{Root: root, p: &proc{name: "versitygw", port: port, log: filepath.Join(dir, "versitygw.log"), args: func() []string {
		// --keep-alive: without it versitygw answers every request with "Connection:
		// close", so each GET, copy and delete of the ingesters (and each PUT of the
		// generators) dials a new connection (13 % of an ingester's CPU at 100 objects a
		// second, and the gateway's accept per request); every S3 server users run keeps
		// connections alive, and so does compose's.
		a := []string{bin, "--access", AccessKey, "--secret", SecretKey, "--port", "127.0.0.1:" + strconv.Itoa(port), "--quiet", "--keep-alive"}
		if o.IAM {
			a = append(a, "--iam-dir", filepath.Join(dir, "iam"))
		}
		if o.NATSURL != "" {
			a = append(a, "--event-nats-url", o.NATSURL, "--event-nats-topic", o.Subject)
			if o.EventFilter != "" {
				a = append(a, "--event-filter", o.EventFilter)
			}
		}
		return append(a, "posix", root)
	}}}
	if err := g.p.start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(g.p.kill)
	for _, b := range buckets {
		if err := g.Client(tb).MakeBucket(context.Background(), b, minio.MakeBucketOptions{}); err != nil {
			tb.Fatalf("make bucket %s: %v", b, err)
		}
	}
	return g
}

// Endpoint is the gateway's URL (AWS_ENDPOINT_URL).
func (g *Gateway) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(g.p.port) }

// Env is what a process needs to reach the gateway: the AWS SDKs' standard variables.
func (g *Gateway) Env() []string {
	return []string{"AWS_ENDPOINT_URL=" + g.Endpoint(), "AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey, "AWS_REGION=us-east-1"}
}

// SetEnv sets Env in this test process (objstore's credential chain reads it).
func (g *Gateway) SetEnv(tb testing.TB) {
	tb.Helper()
	for _, kv := range g.Env() {
		k, v, _ := cut(kv)
		tb.Setenv(k, v)
	}
}

func cut(kv string) (string, string, bool) {
	for i := range len(kv) {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// Client is a client of the gateway, built the way the services build theirs.
func (g *Gateway) Client(tb testing.TB) *minio.Client {
	tb.Helper()
	g.SetEnv(tb)
	c, err := objstore.New(objstore.Settings{Endpoint: g.Endpoint(), Region: "us-east-1"})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Kill ends the gateway abruptly.
func (g *Gateway) Kill() { g.p.kill() }

// Start runs it again on the same port and directory.
func (g *Gateway) Start() error { return g.p.start() }

// Accounts are throwaway keys of the services' accounts (s3access.Roles), by role.
var Accounts = map[string]s3access.Account{
	"generator": {Role: "generator", Access: "test-generator", Secret: "test-generator-secret"},
	"ingester":  {Role: "ingester", Access: "test-ingester", Secret: "test-ingester-secret"},
	"collector": {Role: "collector", Access: "test-collector", Secret: "test-collector-secret"},
}

// Root is the gateway's root account.
var Root = s3access.Account{Role: "root", Access: AccessKey, Secret: SecretKey}

// Restrict does to a gateway started with Options.IAM what compose's s3-access job does
// to its gateway, with the same code and the same policy template (s3access.PolicyFile):
// the three accounts of Accounts, bucket created if missing, the policy put.
func (g *Gateway) Restrict(tb testing.TB, bucket string) {
	tb.Helper()
	tmpl, err := os.ReadFile(filepath.Join(maintest.RepoRoot(tb), s3access.PolicyFile))
	if err != nil {
		tb.Fatal(err)
	}
	o := s3access.Options{Endpoint: g.Endpoint(), Region: "us-east-1", RootAccess: AccessKey, RootSecret: SecretKey,
		Bucket: bucket, Policy: tmpl}
	for _, r := range s3access.Roles {
		o.Accounts = append(o.Accounts, Accounts[r])
	}
	if err := s3access.Apply(context.Background(), o); err != nil {
		tb.Fatalf("s3access.Apply: %v", err)
	}
}

// EnvAs is Env with a's keys.
func (g *Gateway) EnvAs(a s3access.Account) []string {
	return []string{"AWS_ENDPOINT_URL=" + g.Endpoint(), "AWS_ACCESS_KEY_ID=" + a.Access,
		"AWS_SECRET_ACCESS_KEY=" + a.Secret, "AWS_REGION=us-east-1"}
}

// ClientAs is a client of the gateway with a's keys (the environment is left alone, so
// one test can hold clients of several accounts).
func (g *Gateway) ClientAs(tb testing.TB, a s3access.Account) *minio.Client {
	tb.Helper()
	c, err := objstore.New(objstore.Settings{Endpoint: g.Endpoint(), Region: "us-east-1",
		Creds: credentials.NewStaticV4(a.Access, a.Secret, "")})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
