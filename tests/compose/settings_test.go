package compose

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	collector "github.com/ecomstream/ecomstream/services/collector/settings"
	"github.com/ecomstream/ecomstream/services/common/config"
	generator "github.com/ecomstream/ecomstream/services/generator/settings"
	ingester "github.com/ecomstream/ecomstream/services/ingester/settings"
)

// spec is a program's settings as the program starts from them (its defaults) and the
// check it runs on them; the settings packages are the programs' own.
type spec interface{ Validate() error }

// specs makes a fresh spec of each of our programs, with its variables' prefix.
var specs = map[string]func() (string, spec){
	"generator": func() (string, spec) { c := generator.New(); return generator.Prefix, &c },
	"ingester":  func() (string, spec) { c := ingester.New(); return ingester.Prefix, &c },
	"collector": func() (string, spec) { c := collector.New(); return collector.Prefix, &c },
}

// settings is what a program reads from its environment.
type settings struct {
	Prefix string
	Fields map[string]config.Setting // by key: the variable without the prefix (HTTP_ADDR, DATABASE_URL)
	Source string                    // where they were read from
}

// names is every environment variable name that sets the field.
func (s settings) names(f config.Setting) []string { return f.Names }

// lookup finds the field an environment variable sets.
func (s settings) lookup(name string) (config.Setting, bool) {
	for _, f := range s.Fields {
		for _, n := range f.Names {
			if n == name {
				return f, true
			}
		}
	}
	return config.Setting{}, false
}

// programOf names the program each compose service built from ./Dockerfile runs.
var programOf = map[string]string{
	"generator": "generator", "ingester": "ingester", "collector": "collector",
	"migrate": "ingester", "loadgen": "generator",
	"generator-s3": "generator", "ingester-s3": "ingester", "collector-s3": "collector",
}

// readSettings lists the settings of program name by reflection over its settings
// package's Config (services/<name>/settings), with their defaults.
func readSettings(t testing.TB, name string) settings {
	t.Helper()
	mk, ok := specs[name]
	if !ok {
		t.Fatalf("no settings package known for %s", name)
	}
	prefix, sp := mk()
	out := settings{Prefix: prefix, Fields: map[string]config.Setting{}, Source: "services/" + name + "/settings"}
	for _, f := range config.Settings(prefix, sp) {
		out.Fields[strings.TrimPrefix(f.Env, prefix+"_")] = f
	}
	return out
}

// configure is program name's settings as it runs with env, read the way the program
// reads its own environment.
func configure(name string, env map[string]string) (spec, error) {
	prefix, sp := specs[name]()
	err := config.Environ(prefix, sp, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return sp, err
}

// settingValue is what a compose service runs with: its environment, else the default.
func settingValue(t testing.TB, svc string, key string) string {
	t.Helper()
	st := readSettings(t, programOf[svc])
	f, ok := st.Fields[key]
	if !ok {
		t.Fatalf("services/%s has no setting %s", programOf[svc], key)
	}
	env := envOf(service(t, loadProject(t, allProfiles...), svc))
	for _, n := range st.names(f) {
		if v, ok := env[n]; ok {
			return v
		}
	}
	return f.Default
}

// TestEnvironmentMatchesSettings: every variable compose sets for one of our services is
// a setting that service has, with a value of the setting's type, and the settings it
// runs with pass the program's own validation.
func TestEnvironmentMatchesSettings(t *testing.T) {
	p := loadProject(t, allProfiles...)
	cases := programOf
	keys := make([]string, 0, len(cases))
	for k := range cases {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, svcName := range keys {
		prog := cases[svcName]
		t.Run(svcName, func(t *testing.T) {
			st := readSettings(t, prog)
			env := envOf(service(t, p, svcName))
			for name, value := range env {
				f, ok := st.lookup(name)
				if !ok && awsVariables[name] && readsAWSVariables(t, prog) {
					continue // read by the S3 client (services/common/objstore), not envconfig
				}
				if !ok {
					t.Errorf("%s sets %s, which %s does not read (settings from %s)", svcName, name, prog, st.Source)
					continue
				}
				if err := f.Set(value); err != nil {
					t.Errorf("%s sets %s=%q, not a valid %s: %v", svcName, name, value, f.Type, err)
				}
			}
			sp, err := configure(prog, env)
			if err == nil {
				err = sp.Validate()
			}
			if err != nil {
				t.Errorf("%s runs %s with settings it refuses:\n%v", svcName, prog, err)
			}
		})
	}
}

// TestEachServiceConnectsAsItsOwnRole: only the one-shot migrate job connects as the
// administrator the postgres service was created with; the ingesters, the collectors (of
// a directory and of the s3 profile's bucket) and postgres_exporter each connect as their
// own role of sql/0005_roles.sql, with the password db-logins gives that role, and the
// services do not migrate at start.
func TestEachServiceConnectsAsItsOwnRole(t *testing.T) {
	p := loadProject(t, allProfiles...)
	pg := envOf(service(t, p, "postgres"))
	admin := "postgres://" + pg["POSTGRES_USER"] + ":" + pg["POSTGRES_PASSWORD"] + "@postgres:5432/" + pg["POSTGRES_DB"] + "?"
	if got := envOf(service(t, p, "migrate"))["DATABASE_URL"]; !strings.HasPrefix(got, admin) {
		t.Errorf("migrate: DATABASE_URL=%q, want it to start with %q", got, admin)
	}
	logins := envOf(service(t, p, "db-logins"))
	if logins["PGUSER"] != pg["POSTGRES_USER"] || logins["PGPASSWORD"] != pg["POSTGRES_PASSWORD"] ||
		logins["PGDATABASE"] != pg["POSTGRES_DB"] || logins["PGHOST"] != "postgres" {
		t.Errorf("db-logins does not connect as the administrator: %v", logins)
	}
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "postgres", "logins.sql"))
	if err != nil {
		t.Fatal(err)
	}
	roles, err := os.ReadFile(filepath.Join(repoRoot(t), "sql", "0005_roles.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ service, variable, role, passwordVar string }{
		{"ingester", "DATABASE_URL", "ecomstream_ingester", "INGESTER_PASSWORD"},
		{"ingester-s3", "DATABASE_URL", "ecomstream_ingester", "INGESTER_PASSWORD"},
		{"collector", "DATABASE_URL", "ecomstream_collector", "COLLECTOR_PASSWORD"},
		{"collector-s3", "DATABASE_URL", "ecomstream_collector", "COLLECTOR_PASSWORD"},
		{"postgres-exporter", "DATA_SOURCE_NAME", "ecomstream_exporter", "EXPORTER_PASSWORD"},
	} {
		password := logins[c.passwordVar]
		want := "postgres://" + c.role + ":" + password + "@postgres:5432/" + pg["POSTGRES_DB"] + "?"
		if got := envOf(service(t, p, c.service))[c.variable]; password == "" || !strings.HasPrefix(got, want) {
			t.Errorf("%s: %s=%q, want it to start with %q", c.service, c.variable, got, want)
		}
		if password == pg["POSTGRES_PASSWORD"] {
			t.Errorf("%s: the role's password is the administrator's", c.service)
		}
		if !strings.Contains(string(script), "ALTER ROLE "+c.role+" WITH LOGIN PASSWORD :'") ||
			!strings.Contains(string(script), "\\getenv ") || !strings.Contains(string(roles), "'"+c.role+"'") {
			t.Errorf("%s: role %s is not made by sql/0005_roles.sql and given its login by deploy/postgres/logins.sql", c.service, c.role)
		}
	}
	for _, name := range ourServices {
		st := readSettings(t, name)
		if _, reads := st.Fields["MIGRATE_AT_START"]; !reads {
			continue // the generator has no database
		}
		for _, svc := range []string{name, name + "-s3"} {
			if got := envOf(service(t, p, svc))[st.Prefix+"_MIGRATE_AT_START"]; got != "false" {
				t.Errorf("%s: %s_MIGRATE_AT_START=%q, want false (the migrate job migrates; the role could not)", svc, st.Prefix, got)
			}
		}
	}
	// No other container holds the administrator's URL (the profiles' included).
	for name, s := range p.Services {
		for k, v := range envOf(s) {
			if strings.HasPrefix(v, admin) && name != "migrate" {
				t.Errorf("%s: %s connects as the administrator", name, k)
			}
		}
	}
}

// TestRetentionIsOneSettingForTheMigrationAndEveryIngester: the migrate job writes the
// database's retention policy (sql/0006) from the same three settings the ingesters run
// with; an ingester whose window is shorter than the policy has that step refused. So
// each of them reaches the job and every ingester service from one variable of .env
// (or the shell): with .env's values, and with others set in the shell.
func TestRetentionIsOneSettingForTheMigrationAndEveryIngester(t *testing.T) {
	keys := []string{"EVENTS_RETENTION", "LEDGER_RETENTION", "REJECTED_RETENTION"}
	services := []string{"migrate", "ingester", "ingester-s3"}
	for s, prog := range programOf {
		if prog == "ingester" && !slices.Contains(services, s) {
			t.Errorf("%s runs the ingester: add it here", s)
		}
	}
	dot := dotEnv(t)
	st := readSettings(t, "ingester")
	for _, c := range []struct {
		name  string
		shell []string
	}{
		{".env", nil},
		{"the shell", []string{"INGESTER_EVENTS_RETENTION=31d", "INGESTER_LEDGER_RETENTION=45d", "INGESTER_REJECTED_RETENTION=36h"}},
	} {
		p := loadProjectWith(t, c.shell, allProfiles...)
		want := map[string]string{}
		for _, kv := range c.shell {
			k, v, _ := strings.Cut(kv, "=")
			want[k] = v
		}
		for _, key := range keys {
			name := st.Prefix + "_" + key
			if _, ok := want[name]; !ok {
				v, ok := dot[name]
				if !ok {
					t.Errorf(".env does not set %s: the migration and the ingesters need one value of it", name)
				}
				want[name] = v
			}
			for _, svc := range services {
				if got, ok := envOf(service(t, p, svc))[name]; !ok || got != want[name] {
					t.Errorf("with %s: %s runs with %s=%q (set: %v), want %q as every ingester and the migration",
						c.name, svc, name, got, ok, want[name])
				}
			}
		}
	}
}

// The config structs must be where this test reads them once the services exist.
func TestSettingsFound(t *testing.T) {
	for _, name := range ourServices {
		st := readSettings(t, name)
		if _, err := os.Stat(filepath.Join(repoRoot(t), "services", name)); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"HTTP_ADDR", "LOG_LEVEL"} {
			if _, ok := st.Fields[k]; !ok {
				t.Errorf("services/%s: no %s setting (read from %s)", name, k, st.Source)
			}
		}
		t.Logf("%s: prefix %s, %d settings from %s", name, st.Prefix, len(st.Fields), st.Source)
	}
}

// Every setting of our programs has a flag and a description (--help lists it), only
// DATABASE_URL and LOG_LEVEL are read without the program's prefix, and the defaults
// (with a database URL, which the collector has none of) pass the program's validation.
func TestEverySettingHasAFlagADescriptionAndItsPrefix(t *testing.T) {
	for _, name := range ourServices {
		st := readSettings(t, name)
		for _, f := range st.Fields {
			if f.Flag == "" || f.Desc == "" {
				t.Errorf("%s %s: flag %q, description %q", name, f.Env, f.Flag, f.Desc)
			}
			for _, n := range f.Names {
				if !strings.HasPrefix(n, st.Prefix+"_") && n != "DATABASE_URL" && n != "LOG_LEVEL" {
					t.Errorf("%s reads %s as %s, without its prefix", name, f.Env, n)
				}
			}
		}
		sp, err := configure(name, map[string]string{"DATABASE_URL": "postgres://localhost/ecomstream"})
		if err == nil {
			err = sp.Validate()
		}
		if err != nil {
			t.Errorf("%s: the defaults do not pass validation:\n%v", name, err)
		}
	}
}

// awsVariables are the AWS SDKs' standard variables that services/common/objstore's
// client reads by their bare names (no service prefix), for AWS S3 and S3-compatible
// servers alike.
var awsVariables = map[string]bool{
	"AWS_ENDPOINT_URL": true, "AWS_REGION": true, "AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true,
}

const objstorePath = "github.com/ecomstream/ecomstream/services/common/objstore"

// readsAWSVariables tells whether a program reads the AWS variables: one of its Go files
// imports services/common/objstore, and that package names every one of them (its
// documentation says which it reads itself and which its credential chain reads).
func readsAWSVariables(t *testing.T, prog string) bool {
	t.Helper()
	root := repoRoot(t)
	lib, err := os.ReadFile(filepath.Join(root, "services", "common", "objstore", "objstore.go"))
	if err != nil {
		t.Fatalf("services/common/objstore: %v", err)
	}
	for name := range awsVariables {
		if !strings.Contains(string(lib), name) {
			t.Errorf("services/common/objstore/objstore.go does not name %s, which compose sets for it", name)
		}
	}
	imports := false
	fset := token.NewFileSet()
	err = filepath.WalkDir(filepath.Join(root, "services", prog), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == objstorePath {
				imports = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("services/%s: %v", prog, err)
	}
	return imports
}
