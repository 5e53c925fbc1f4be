package compose

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// setting is one field of a service's envconfig struct.
type setting struct {
	Key      string // the envconfig key, e.g. HTTP_ADDR or DATABASE_URL
	GoType   string // e.g. string, int, float64, time.Duration
	Default  string
	Required bool
}

// settings is what a service reads from its environment.
type settings struct {
	Prefix string
	Fields map[string]setting // by envconfig key
	Source string             // where they were read from
}

// sharedKeys are read under the bare name too (services/common/config).
var sharedKeys = map[string]bool{"DATABASE_URL": true, "LOG_LEVEL": true}

// names is every environment variable name that sets the field.
func (s settings) names(f setting) []string {
	if sharedKeys[f.Key] {
		return []string{f.Key, s.Prefix + "_" + f.Key}
	}
	return []string{s.Prefix + "_" + f.Key}
}

// lookup finds the field an environment variable sets.
func (s settings) lookup(name string) (setting, bool) {
	for _, f := range s.Fields {
		for _, n := range s.names(f) {
			if n == name {
				return f, true
			}
		}
	}
	return setting{}, false
}

// programOf names the program each compose service built from ./Dockerfile runs.
var programOf = map[string]string{
	"generator": "generator", "ingester": "ingester", "collector": "collector",
	"migrate": "ingester", "loadgen": "generator",
	"generator-s3": "generator", "ingester-s3": "ingester",
}

// designSettings is DESIGN.md's table, used only while a service has no Go source yet.
var designSettings = map[string][]string{
	"generator": {"DATABASE_URL", "LOG_LEVEL", "HTTP_ADDR", "OUTPUT_DIR", "MIN_RECORDS", "MAX_RECORDS", "SLEEP",
		"BAD_RATE", "DUPLICATE_RATE", "MAX_FILES", "DURATION", "INSTANCE", "SEED"},
	"ingester": {"DATABASE_URL", "LOG_LEVEL", "HTTP_ADDR", "INPUT_DIR", "ARCHIVE_DIR", "FAILED_DIR", "ON_SUCCESS",
		"TRIGGER_INTERVAL", "MAX_BATCH_RECORDS", "SETTLE", "WORKERS", "RESCAN_INTERVAL"},
	"collector": {"DATABASE_URL", "LOG_LEVEL", "HTTP_ADDR", "WATCH_DIR", "INTERVAL"},
}

var designDefaults = map[string]string{"generator": ":8081", "ingester": ":8082", "collector": ":8083"}

// readSettings parses services/<name> with go/ast (the config struct lives in package
// main, which cannot be imported) and returns every field tagged `envconfig:"..."`,
// with the prefix passed to config.Load.
func readSettings(t testing.TB, name string) settings {
	t.Helper()
	if st, ok := settingsCache.Load(name); ok {
		return st.(settings)
	}
	st := parseSettings(t, name)
	settingsCache.Store(name, st)
	return st
}

var settingsCache sync.Map

func parseSettings(t testing.TB, name string) settings {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "services", name)
	out := settings{Prefix: strings.ToUpper(name), Fields: map[string]setting{}}
	fset := token.NewFileSet()
	var goFiles int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		goFiles++
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot(t), path)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.StructType:
				for _, fld := range n.Fields.List {
					if fld.Tag == nil {
						continue
					}
					raw, err := strconv.Unquote(fld.Tag.Value)
					if err != nil {
						continue
					}
					tag := reflect.StructTag(raw)
					key, ok := tag.Lookup("envconfig")
					if !ok {
						continue
					}
					key = strings.Split(key, ",")[0]
					if key == "" && len(fld.Names) > 0 {
						key = strings.ToUpper(fld.Names[0].Name)
					}
					out.Fields[key] = setting{
						Key:      key,
						GoType:   exprString(fld.Type),
						Default:  tag.Get("default"),
						Required: tag.Get("required") == "true",
					}
					if !strings.Contains(out.Source, rel) {
						out.Source = strings.TrimPrefix(out.Source+", "+rel, ", ")
					}
				}
			case *ast.CallExpr:
				// config.Load("INGESTER", &cfg, ...) names the prefix.
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Load" && len(n.Args) >= 2 {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == "config" {
						if lit, ok := n.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if p, err := strconv.Unquote(lit.Value); err == nil {
								out.Prefix = p
							}
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatalf("reading services/%s: %v", name, err)
	}
	if len(out.Fields) > 0 {
		return out
	}
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err == nil {
		t.Fatalf("services/%s has a main.go but no struct field tagged `envconfig:\"...\"` "+
			"in its %d Go files; this test reads the settings from there", name, goFiles)
	}
	// Not written yet: check against the contract's table.
	t.Logf("services/%s has no config struct yet; checking against DESIGN.md's settings", name)
	for _, k := range designSettings[name] {
		out.Fields[k] = setting{Key: k, GoType: "?"}
	}
	out.Fields["HTTP_ADDR"] = setting{Key: "HTTP_ADDR", GoType: "string", Default: designDefaults[name]}
	out.Source = "DESIGN.md"
	return out
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	case *ast.ArrayType:
		return "[]" + exprString(e.Elt)
	}
	return "?"
}

// parses tells whether envconfig can decode value into a field of type goType.
func parses(goType, value string) error {
	var err error
	switch goType {
	case "int", "int8", "int16", "int32", "int64":
		_, err = strconv.ParseInt(value, 0, 64)
	case "uint", "uint8", "uint16", "uint32", "uint64":
		_, err = strconv.ParseUint(value, 0, 64)
	case "float32", "float64":
		_, err = strconv.ParseFloat(value, 64)
	case "bool":
		_, err = strconv.ParseBool(value)
	case "time.Duration":
		_, err = time.ParseDuration(value)
	}
	return err
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
// a setting that service has, with a value of the setting's type; every required setting
// is set.
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
				if err := parses(f.GoType, value); err != nil {
					t.Errorf("%s sets %s=%q, not a valid %s: %v", svcName, name, value, f.GoType, err)
				}
			}
			for _, f := range st.Fields {
				if !f.Required {
					continue
				}
				set := false
				for _, n := range st.names(f) {
					_, ok := env[n]
					set = set || ok
				}
				if !set {
					t.Errorf("%s does not set %v, which %s requires", svcName, st.names(f), prog)
				}
			}
		})
	}
}

// TestDatabaseURLPointsAtPostgres: the services that read PostgreSQL reach the compose
// postgres service, with the credentials it was created with.
func TestDatabaseURLPointsAtPostgres(t *testing.T) {
	p := loadProject(t, allProfiles...)
	pg := envOf(service(t, p, "postgres"))
	want := "postgres://" + pg["POSTGRES_USER"] + ":" + pg["POSTGRES_PASSWORD"] + "@postgres:5432/" + pg["POSTGRES_DB"]
	for _, name := range []string{"migrate", "ingester", "collector"} {
		got := envOf(service(t, p, name))["DATABASE_URL"]
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s: DATABASE_URL=%q, want it to start with %q", name, got, want)
		}
	}
	exp := envOf(service(t, p, "postgres-exporter"))["DATA_SOURCE_NAME"]
	if !strings.HasPrefix(exp, want) {
		t.Errorf("postgres-exporter: DATA_SOURCE_NAME=%q, want it to start with %q", exp, want)
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
