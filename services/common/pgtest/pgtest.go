// Package pgtest gives tests a real, throwaway PostgreSQL: a private cluster made with
// the machine's initdb in a temp directory, which tests can stop, kill and restart.
// Nothing is mocked: a test that passes here passed against the server users run.
//
// Tests in a package share one cluster (Shared), each test getting a database of its own;
// fault tests that stop the server make their own (New). Set ECOMSTREAM_TEST_DATABASE_URL
// to use an existing server instead of a private cluster for Shared.
package pgtest

import (
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/servertest"
)

// Server is one private PostgreSQL cluster.
type Server struct {
	Dir  string // data directory
	Port int
	bin  string
	cred *syscall.Credential
	cmd  *exec.Cmd
	exit chan struct{}
	log  string
}

// URL returns a connection URL for database name on this server.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// BinDirEnv names a directory that replaces the search for PostgreSQL's server binaries:
// set it to a directory without them to see what the fast tier does on a machine that
// has none (every test needing PostgreSQL skips).
const BinDirEnv = "ECOMSTREAM_PG_BINDIR"

// BinDir finds PostgreSQL's server binaries: in $ECOMSTREAM_PG_BINDIR when it is set,
// else on PATH, else the newest Debian /usr/lib/postgresql/N/bin.
func BinDir() (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("PostgreSQL server binaries not found in %s=%s: %w", BinDirEnv, d, err)
		}
		return d, nil
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r), nil
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries not found: install postgresql (Debian) or put pg_ctl on PATH")
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// RequireEnv names the variable that turns a missing PostgreSQL into a test failure
// instead of a skip; .ci/run sets it, so CI never passes by skipping the real tests.
const RequireEnv = "ECOMSTREAM_REQUIRE_POSTGRES"

// Require skips tb when there is no PostgreSQL to test against (neither server binaries
// nor ECOMSTREAM_TEST_DATABASE_URL), so the fast tier (`go test -short ./...`) runs on a
// machine without one, and fails it instead when RequireEnv is set.
func Require(tb testing.TB) {
	tb.Helper()
	if os.Getenv("ECOMSTREAM_TEST_DATABASE_URL") != "" {
		return
	}
	if _, err := BinDir(); err != nil {
		servertest.Missing(tb, RequireEnv, "PostgreSQL", err)
	}
}

// New makes and starts a private cluster that lives until the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	Require(tb)
	// Not tb.TempDir(): its parent is private to root, and the server may run as postgres.
	dir, err := os.MkdirTemp("", "ecomstream-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := Create(dir)
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Stop(); os.RemoveAll(dir) })
	return s
}

// Create makes a cluster under parent and starts it.
func Create(parent string) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: filepath.Join(parent, "pgdata"), bin: bin, log: filepath.Join(parent, "postgres.log")}
	// PostgreSQL refuses to run as root; as root (CI, containers) run it as postgres or nobody.
	if os.Geteuid() == 0 {
		if s.cred, err = unprivileged(); err != nil {
			return nil, err
		}
		if err := os.Chmod(parent, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := s.chown(s.Dir); err != nil {
		return nil, err
	}
	if err := s.chown(parent); err != nil {
		return nil, err
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", s.Dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	// The port is free when chosen but could be taken before the server binds it (test
	// binaries run in parallel): try another one then.
	for attempt := 0; ; attempt++ {
		if s.Port, err = servertest.FreePort(); err != nil {
			return nil, err
		}
		if err = s.Start(); err == nil || attempt == 2 {
			return s, err
		}
	}
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
}

func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and no postgres or nobody user to run PostgreSQL as")
}

// Start runs the server (again) on its port and waits until it accepts connections.
func (s *Server) Start() error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// Test settings: no fsync (the machine does not crash under a test, only processes do,
	// and the page cache survives those), enough connections for replicas plus pools.
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.Dir, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.Dir,
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
		"-c", "shared_buffers=128MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test binary killed by go test's -timeout takes its server with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd, s.exit = cmd, make(chan struct{})
	go func(exit chan struct{}) { _ = cmd.Wait(); logf.Close(); close(exit) }(s.exit)
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), s.URL("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.exit:
			return fmt.Errorf("postgres exited at start; log %s: %s", s.log, servertest.Tail(s.log))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("postgres did not accept connections in 60s: %w", err)
		}
	}
}

// Stop shuts the server down fast (rolls back open transactions, like a container stop).
func (s *Server) Stop() { s.signal(syscall.SIGINT) }

// Kill ends the server the hard way: SIGKILL to the postmaster and its backends.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exit
	s.cmd = nil
}

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exit:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exit
	}
	s.cmd = nil
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedURL  func(string) string
	sharedErr  error
	dbSeq      atomic.Int64
)

// DB returns the URL of a new, empty database for this test, on the shared server.
func DB(tb testing.TB) string {
	tb.Helper()
	Require(tb)
	sharedOnce.Do(func() {
		if u := os.Getenv("ECOMSTREAM_TEST_DATABASE_URL"); u != "" {
			sharedURL = func(name string) string { return db.WithDatabase(u, name) }
			return
		}
		dir, err := os.MkdirTemp("", "ecomstream-pg-")
		if err != nil {
			sharedErr = err
			return
		}
		shared, sharedErr = Create(dir)
		if shared != nil {
			sharedURL = shared.URL
		}
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	name := fmt.Sprintf("t_%d_%d_%s", os.Getpid(), dbSeq.Add(1), sanitize(tb.Name()))
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, sharedURL("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatal(err)
	}
	return sharedURL(name)
}

// Main runs a package's tests and then stops the shared server; call it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
		_ = os.RemoveAll(filepath.Dir(shared.Dir))
	}
	return code
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 30; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

// AsRole returns url (a database the migrations have been applied to, sql/0005 made the
// roles) with its user replaced by role, after letting role log in. The private clusters
// trust every local connection, so no password is set: tests connect as the role the
// service would. Roles belong to the whole cluster and tests run in parallel, so a
// concurrent ALTER ROLE of the same role is tried again.
func AsRole(tb testing.TB, url, role string) string {
	tb.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close(ctx)
	for attempt := 0; ; attempt++ {
		var can bool
		err := admin.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", role).Scan(&can)
		if err == nil && !can {
			_, err = admin.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN")
		}
		if err == nil {
			break
		}
		if attempt == 10 {
			tb.Fatalf("let %s log in: %v", role, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	u, err := neturl.Parse(url)
	if err != nil {
		tb.Fatal(err)
	}
	u.User = neturl.User(role)
	return u.String()
}
