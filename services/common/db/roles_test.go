package db_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

// migrated is a fresh database with every migration applied (as the tests' superuser).
func migrated(t *testing.T) string {
	t.Helper()
	url := pgtest.DB(t)
	ctx := context.Background()
	pool, err := db.Connect(ctx, zerolog.Nop(), url, 2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return url
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// try runs sql in a transaction that is always rolled back, so one refused statement
// leaves the next one a clean session, and returns PostgreSQL's error.
func try(c *pgx.Conn, sql string) error {
	ctx := context.Background()
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, sql)
	return err
}

func sqlstate(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return fmt.Sprint(err)
}

// refused asserts that each statement fails with insufficient_privilege (42501), the
// error PostgreSQL gives for a missing grant or ownership, not for a typo.
func refused(t *testing.T, c *pgx.Conn, who string, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if err := try(c, s); sqlstate(err) != "42501" {
			t.Errorf("%s: %q gave %v, want insufficient_privilege (42501)", who, s, err)
		}
	}
}

func allowed(t *testing.T, c *pgx.Conn, who string, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if err := try(c, s); err != nil {
			t.Errorf("%s: %q refused: %v", who, s, err)
		}
	}
}

const (
	insertEvent = `INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
		VALUES (gen_random_uuid(), now(), 'view', 1, gen_random_uuid(), 1, 'c', 1, 1, 'f.csv')`
	insertLedger = `INSERT INTO ingested_files (file_name, sha256, file_created_at, records_total, records_inserted,
		records_rejected, records_duplicate, bytes, ingester_instance) VALUES ('f.csv', 'x', now(), 0, 0, 0, 0, 0, 'i')`
	insertRejected = `INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message)
		VALUES ('f.csv', 1, 'x', 'bad_event_id', 'm')`
)

func TestIngesterRoleWritesRowsButCannotChangeOrDestroyTheSchema(t *testing.T) {
	url := migrated(t)
	ing := connect(t, pgtest.AsRole(t, url, "ecomstream_ingester"))
	allowed(t, ing, "ingester", insertEvent, insertLedger, insertRejected,
		"SELECT count(*) FROM events", "SELECT count(*) FROM ingested_files", "SELECT count(*) FROM rejected_records",
		"SELECT count(*) FROM events_default",
		// The duplicate path's staging table (package load).
		"CREATE TEMP TABLE ecomstream_staging (LIKE events INCLUDING DEFAULTS, ord bigint) ON COMMIT DROP")
	refused(t, ing, "ingester",
		"DROP TABLE events", "DROP TABLE events_default", "TRUNCATE events", "TRUNCATE ingested_files",
		"ALTER TABLE events ADD COLUMN x int", "ALTER TABLE events DETACH PARTITION events_default",
		"CREATE INDEX ON events (category)", "DELETE FROM events", "DELETE FROM events_default",
		"UPDATE ingested_files SET outcome = 'failed'", "DELETE FROM ingested_files", "DELETE FROM rejected_records",
		"CREATE TABLE public.mine (x int)", "SELECT * FROM schema_migrations",
		"ALTER FUNCTION public.ecomstream_prune(text, timestamptz, integer) SECURITY INVOKER")
	// The maintenance functions do their one thing only, whatever they are asked.
	for _, s := range []string{
		"SELECT public.ecomstream_drop_partition('events', 'infinity')",
		"SELECT public.ecomstream_drop_partition('ingested_files', 'infinity')",
		"SELECT public.ecomstream_drop_partition('events_default', 'infinity')",
		"SELECT public.ecomstream_prune('events', 'infinity', 10)",
		"SELECT public.ecomstream_prune('schema_migrations', 'infinity', 10)",
		"SELECT public.ecomstream_create_partition('events_p20260101; DROP TABLE events', now(), now() + interval '1 day')",
		"SELECT public.ecomstream_create_partition('ingested_files', now(), now() + interval '1 day')",
		"SELECT public.ecomstream_create_partition('events_p20261202', '2026-12-01Z', '2026-12-02Z')",
		"SELECT public.ecomstream_create_partition('events_p20261201', '2026-12-02Z', '2026-12-01Z')",
	} {
		if err := try(ing, s); sqlstate(err) != "22023" {
			t.Errorf("ingester: %q gave %v, want invalid_parameter_value (22023)", s, err)
		}
	}
	// A partition that ends after the cutoff is not the function's to drop (a policy
	// that lets events of 30 days go, sql/0006, allows the cutoffs below).
	setPolicy(t, url, "30 days", "30 days", "30 days")
	if _, err := ing.Exec(context.Background(), `SELECT public.ecomstream_create_partition('events_p20200101', '2020-01-01Z', '2020-01-02Z')`); err != nil {
		t.Fatal(err)
	}
	if err := try(ing, `SELECT public.ecomstream_drop_partition('events_p20200101', '2020-01-01 12:00Z')`); sqlstate(err) != "22023" {
		t.Errorf("a partition ending after the cutoff was dropped or refused wrongly: %v", err)
	}
	allowed(t, ing, "ingester", `SELECT public.ecomstream_drop_partition('events_p20200101', '2020-01-02Z')`)
	// It sees other roles' sessions but not what they run (no pg_read_all_stats).
	col := connect(t, pgtest.AsRole(t, url, "ecomstream_collector"))
	var query string
	if err := ing.QueryRow(context.Background(), `SELECT coalesce(query, '') FROM pg_stat_activity WHERE pid = $1`, col.PgConn().PID()).Scan(&query); err != nil {
		t.Fatal(err)
	}
	if query != "<insufficient privilege>" {
		t.Errorf("the ingester reads another role's query text %q", query)
	}
}

func TestCollectorAndExporterRolesOnlyRead(t *testing.T) {
	url := migrated(t)
	ctx := context.Background()
	admin := connect(t, url)
	if _, err := admin.Exec(ctx, insertEvent); err != nil {
		t.Fatal(err)
	}
	col := connect(t, pgtest.AsRole(t, url, "ecomstream_collector"))
	allowed(t, col, "collector", "SELECT count(*) FROM events", "SELECT count(*) FROM events_default",
		"SELECT count(*) FROM ingested_files", "SELECT count(*) FROM rejected_records",
		"SELECT count(*) FROM pg_partition_tree('events')", "SELECT pg_database_size(current_database())")
	refused(t, col, "collector", insertEvent, insertLedger, insertRejected,
		"UPDATE ingested_files SET outcome = 'failed'", "DELETE FROM events", "TRUNCATE events", "DROP TABLE events",
		"CREATE TABLE public.mine (x int)",
		"SELECT public.ecomstream_create_partition('events_p20261201', '2026-12-01Z', '2026-12-02Z')",
		"SELECT public.ecomstream_prune('ingested_files', 'infinity', 10)",
		"SELECT public.ecomstream_expire_default('infinity')")
	// pg_monitor: it reads what other roles' sessions run (the lock and latency views).
	var query string
	if err := col.QueryRow(ctx, `SELECT coalesce(query, '') FROM pg_stat_activity WHERE pid = $1`, admin.PgConn().PID()).Scan(&query); err != nil {
		t.Fatal(err)
	}
	if query == "<insufficient privilege>" {
		t.Error("the collector is not a member of pg_monitor")
	}
	exp := connect(t, pgtest.AsRole(t, url, "ecomstream_exporter"))
	allowed(t, exp, "exporter", "SELECT count(*) FROM pg_stat_database", "SELECT count(*) FROM pg_stat_user_tables",
		"SELECT pg_database_size(current_database())", "SELECT setting FROM pg_settings WHERE name = 'shared_buffers'")
	refused(t, exp, "exporter", "SELECT count(*) FROM events", "SELECT count(*) FROM ingested_files", insertEvent)
}

// Every object of the schema belongs to the migrator, the maintenance functions run as it
// with a pinned search_path, and nobody but the ingester may call them. This also holds
// later migrations to the rule (they begin with SET LOCAL ROLE ecomstream_migrator).
func TestTheMigratorOwnsTheSchemaAndTheFunctionsAreClosed(t *testing.T) {
	url := migrated(t)
	c := connect(t, url)
	ctx := context.Background()
	rows, err := c.Query(ctx, `
		SELECT c.relname || ' ' || c.relkind::text FROM pg_class c
		WHERE c.relnamespace = 'public'::regnamespace AND c.relowner <> 'ecomstream_migrator'::regrole
		UNION ALL
		SELECT p.proname FROM pg_proc p
		WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> 'ecomstream_migrator'::regrole`)
	if err != nil {
		t.Fatal(err)
	}
	others, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(others) > 0 {
		t.Errorf("not owned by ecomstream_migrator: %v", others)
	}
	rows, err = c.Query(ctx, `
		SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
		AND (NOT p.prosecdef OR NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
		     OR has_function_privilege('ecomstream_collector', p.oid, 'EXECUTE')
		     OR has_function_privilege('ecomstream_exporter', p.oid, 'EXECUTE')
		     OR NOT has_function_privilege('ecomstream_ingester', p.oid, 'EXECUTE'))`)
	if err != nil {
		t.Fatal(err)
	}
	open, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(open) > 0 {
		t.Errorf("functions not SECURITY DEFINER with a pinned search_path, or callable by others than the ingester: %v", open)
	}
	var login bool
	if err := c.QueryRow(ctx, `SELECT bool_or(rolcanlogin OR rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls)
		FROM pg_roles WHERE rolname = 'ecomstream_migrator'`).Scan(&login); err != nil || login {
		t.Errorf("the migrator can log in or holds a cluster privilege (%v)", err)
	}
}

// As in compose: the database belongs to a superuser of another name (the postgres
// image's POSTGRES_USER), several ecomstream databases of one server migrate at the same
// moment, and the roles, made by whichever is first, serve them all.
func TestRolesAreMadeOnceWhicheverSuperuserAndDatabaseMigratesFirst(t *testing.T) {
	ctx := context.Background()
	admin := connect(t, pgtest.DB(t))
	name := fmt.Sprintf("ecomstream_admin_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE ROLE "+name+" LOGIN SUPERUSER"); err != nil {
		t.Fatal(err)
	}
	urls := make([]string, 4)
	for i := range urls {
		urls[i] = pgtest.AsRole(t, pgtest.DB(t), name)
		if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s OWNER TO %s",
			pgx.Identifier{dbName(t, urls[i])}.Sanitize(), name)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(urls))
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := db.Connect(ctx, zerolog.Nop(), u, 2, 10*time.Second)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			_, errs[i] = db.Migrate(ctx, pool)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("database %d: %v", i, err)
		}
	}
	for _, u := range urls {
		ing := connect(t, pgtest.AsRole(t, u, "ecomstream_ingester"))
		allowed(t, ing, "ingester", insertEvent, insertLedger)
		refused(t, ing, "ingester", "DROP TABLE events")
	}
}

func dbName(t *testing.T, url string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// deploy/postgres/logins.sql, as compose's db-logins job runs it (psql, the passwords in
// its environment), against a server that asks these roles for a SCRAM password and logs
// every statement: each role logs in with its password and not with another, and no
// password reaches the server's log or psql's output.
func TestComposeLoginsLetEachRoleLogInAndNeverLogThePassword(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed")
	}
	srv := pgtest.New(t)
	ctx := context.Background()
	admin := connect(t, srv.URL("postgres"))
	for _, s := range []string{"CREATE DATABASE shop", "ALTER SYSTEM SET log_statement = 'all'"} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	hba := filepath.Join(srv.Dir, "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	scram := "host all ecomstream_ingester,ecomstream_collector,ecomstream_exporter 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(hba, append([]byte(scram), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	url := srv.URL("shop")
	pool, err := db.Connect(ctx, zerolog.Nop(), url, 2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pool.Close()

	passwords := map[string]string{
		"ecomstream_ingester":  "Ingest-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"ecomstream_collector": "Collect-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"ecomstream_exporter":  "Export-" + strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	cmd := exec.Command(psql, "-X", "-q", "-f", filepath.Join("..", "..", "..", "deploy", "postgres", "logins.sql"))
	cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(srv.Port), "PGUSER=postgres", "PGDATABASE=shop",
		"INGESTER_PASSWORD="+passwords["ecomstream_ingester"], "COLLECTOR_PASSWORD="+passwords["ecomstream_collector"],
		"EXPORTER_PASSWORD="+passwords["ecomstream_exporter"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql -f logins.sql: %v\n%s", err, out)
	}
	for role, password := range passwords {
		u := strings.Replace(url, "postgres@", role+":"+password+"@", 1)
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Errorf("%s cannot log in with its password: %v", role, err)
			continue
		}
		c.Close(ctx)
		if c, err := pgx.Connect(ctx, strings.Replace(url, "postgres@", role+":wrong@", 1)); err == nil {
			c.Close(ctx)
			t.Errorf("%s logs in with a wrong password: the server does not ask it for one", role)
		}
	}
	logged, err := os.ReadFile(filepath.Join(filepath.Dir(srv.Dir), "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), "INSERT INTO schema_migrations") {
		t.Fatal("the server log does not hold the statements: the test would prove nothing")
	}
	for role, password := range passwords {
		if strings.Contains(string(logged), password) || strings.Contains(string(out), password) {
			t.Errorf("the password of %s is in the server log or psql's output", role)
		}
	}
}
