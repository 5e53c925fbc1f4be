package compose

import (
	"encoding/json"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// listenPorts is every port a compose service listens on, as seen from the network:
// ours from their HTTP address setting, the others from expose: and ports:.
func listenPorts(t testing.TB, p *types.Project, name string) []string {
	t.Helper()
	s := service(t, p, name)
	var out []string
	prog := name
	if p, ok := programOf[name]; ok {
		prog = p
	}
	if slices.Contains(ourServices, prog) {
		// What the program binds, whatever expose: says (TestExposeMatchesSettings).
		return []string{portOf(settingValue(t, name, "HTTP_ADDR"))}
	}
	for _, e := range s.Expose {
		out = append(out, strings.Split(e, "/")[0])
	}
	for _, port := range s.Ports {
		out = append(out, strconv.Itoa(int(port.Target)))
	}
	return out
}

// TestExposeMatchesSettings: each of our services exposes the port its settings bind.
func TestExposeMatchesSettings(t *testing.T) {
	p := loadProject(t, allProfiles...)
	for _, name := range []string{"generator", "ingester", "collector", "loadgen", "generator-s3", "ingester-s3"} {
		port := listenPorts(t, p, name)[0]
		if got := service(t, p, name).Expose; !slices.Equal([]string(got), []string{port}) {
			t.Errorf("%s: expose %v, but it listens on %s", name, got, port)
		}
	}
}

// dnsNames maps every name Docker's DNS answers on the default network to the services
// behind it: the service names and their aliases.
func dnsNames(p *types.Project) map[string][]string {
	out := map[string][]string{}
	for name, s := range p.Services {
		out[name] = append(out[name], name)
		for _, n := range s.Networks {
			if n == nil {
				continue
			}
			for _, a := range n.Aliases {
				out[a] = append(out[a], name)
			}
		}
	}
	return out
}

// promTargets is how Prometheus finds targets: scrape targets and Alertmanagers alike.
type promTargets struct {
	StaticConfigs []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
	DNSSDConfigs []struct {
		Names []string `yaml:"names"`
		Type  string   `yaml:"type"`
		Port  int      `yaml:"port"`
	} `yaml:"dns_sd_configs"`
}

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName     string `yaml:"job_name"`
		promTargets `yaml:",inline"`
	} `yaml:"scrape_configs"`
	Alerting struct {
		Alertmanagers []promTargets `yaml:"alertmanagers"`
	} `yaml:"alerting"`
}

// readPrometheus finds the config file the prometheus container is started with, on the
// host through its bind mount, and parses it; it skips while it has not been written.
func readPrometheus(t *testing.T) (promConfig, string) {
	t.Helper()
	s := service(t, loadProject(t), "prometheus")
	containerPath := ""
	for _, a := range s.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			containerPath = v
		}
	}
	if containerPath == "" {
		t.Fatal("prometheus: no --config.file in its command")
	}
	host, _ := hostPath(s, containerPath)
	if host == "" {
		t.Fatalf("prometheus: %s is not on a bind mount", containerPath)
	}
	raw, err := os.ReadFile(host)
	if os.IsNotExist(err) {
		t.Skipf("%s not written yet", host)
	}
	if err != nil {
		t.Fatal(err)
	}
	var c promConfig
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s: %v", host, err)
	}
	return c, host
}

// TestPrometheusTargets: every scrape target is a compose service (or an alias of one)
// on a port it listens on; every exporter and every one of our services is scraped, the
// scaled ones through DNS so that each replica is a target.
func TestPrometheusTargets(t *testing.T) {
	c, file := readPrometheus(t)
	p := loadProject(t, allProfiles...)
	names := dnsNames(p)
	scraped := map[string]string{} // service -> how
	check := func(job, host, port, how string) {
		if host == "localhost" || host == "127.0.0.1" {
			if !slices.Contains(listenPorts(t, p, "prometheus"), port) {
				t.Errorf("%s: job %s scrapes %s:%s, not Prometheus' own port", file, job, host, port)
			}
			scraped["prometheus"] = how
			return
		}
		svcs, ok := names[host]
		if !ok {
			t.Errorf("%s: job %s scrapes %s:%s, but no compose service is called %s", file, job, host, port, host)
			return
		}
		for _, svc := range svcs {
			if !slices.Contains(listenPorts(t, p, svc), port) {
				t.Errorf("%s: job %s scrapes %s:%s, but %s listens on %v", file, job, host, port, svc, listenPorts(t, p, svc))
			}
			scraped[svc] = how
		}
	}
	for _, sc := range c.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, err := net.SplitHostPort(target)
				if err != nil {
					t.Errorf("%s: job %s: target %q: %v", file, sc.JobName, target, err)
					continue
				}
				check(sc.JobName, host, port, "static")
			}
		}
		for _, d := range sc.DNSSDConfigs {
			if d.Type != "A" && d.Type != "AAAA" {
				t.Errorf("%s: job %s: dns_sd type %q; Docker's DNS answers A records (SRV is the default)", file, sc.JobName, d.Type)
			}
			for _, n := range d.Names {
				check(sc.JobName, n, strconv.Itoa(d.Port), "dns")
			}
		}
	}
	for _, svc := range []string{"generator", "ingester", "collector", "postgres-exporter", "node-exporter", "cadvisor", "alertmanager"} {
		if _, ok := scraped[svc]; !ok {
			t.Errorf("%s: no job scrapes %s", file, svc)
		}
	}
	for _, svc := range []string{"generator", "ingester", "loadgen", "generator-s3", "ingester-s3"} {
		if scraped[svc] != "dns" {
			t.Errorf("%s: %s scales, so it must be found with dns_sd_configs (each replica a target), got %q",
				file, svc, scraped[svc])
		}
	}
}

// TestPrometheusRuleFiles: the rule files the config names are there, inside the mount.
func TestPrometheusRuleFiles(t *testing.T) {
	c, file := readPrometheus(t)
	dir := filepath.Dir(file)
	for _, rf := range c.RuleFiles {
		if path.IsAbs(rf) {
			host, _ := hostPath(service(t, loadProject(t), "prometheus"), rf)
			if host == "" {
				t.Errorf("%s: rule_files %s is outside the mounted directory", file, rf)
				continue
			}
			rf = host
		} else {
			rf = filepath.Join(dir, filepath.FromSlash(rf))
		}
		if !strings.HasPrefix(rf, dir+string(filepath.Separator)) {
			t.Errorf("%s: rule_files %s is outside the mounted directory %s", file, rf, dir)
		}
		m, err := filepath.Glob(rf)
		if err != nil || len(m) == 0 {
			t.Errorf("%s: rule_files %s matches no file", file, rf)
		}
	}
}

type grafanaProvisioning struct {
	Datasources []struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
		UID  string `yaml:"uid"`
		URL  string `yaml:"url"`
	} `yaml:"datasources"`
	Providers []struct {
		Name    string `yaml:"name"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

func readYAMLDir(t *testing.T, dir string) map[string]grafanaProvisioning {
	t.Helper()
	out := map[string]grafanaProvisioning{}
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		t.Skipf("%s not written yet", dir)
	}
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yml") || strings.HasSuffix(e.Name(), ".yaml")) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var g grafanaProvisioning
		if err := yaml.Unmarshal(raw, &g); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out[filepath.Join(dir, e.Name())] = g
	}
	if len(out) == 0 {
		t.Skipf("%s has no provisioning YAML yet", dir)
	}
	return out
}

// dashboardRefs collects every datasource reference in a dashboard: uids of
// {"datasource": {"uid": ...}} and the older {"datasource": "name"}.
func dashboardRefs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "datasource" {
				switch d := x.(type) {
				case string:
					*out = append(*out, d)
				case map[string]any:
					if uid, ok := d["uid"].(string); ok {
						*out = append(*out, uid)
					}
				}
				continue
			}
			dashboardRefs(x, out)
		}
	case []any:
		for _, x := range v {
			dashboardRefs(x, out)
		}
	}
}

// datasourceVariableDefault is the default value of a dashboard's $datasource variable.
func datasourceVariableDefault(d map[string]any) string {
	templating, _ := d["templating"].(map[string]any)
	list, _ := templating["list"].([]any)
	for _, v := range list {
		v, _ := v.(map[string]any)
		if v["name"] == "datasource" && v["type"] == "datasource" {
			current, _ := v["current"].(map[string]any)
			value, _ := current["value"].(string)
			return value
		}
	}
	return ""
}

// TestGrafanaProvisioning: the provisioning directories compose mounts exist, the
// datasource reaches the prometheus service with the fixed uid, the dashboards provider
// reads a mounted directory, every dashboard there has a fixed uid and names only the
// provisioned datasource, and the home dashboard is the SLA one.
func TestGrafanaProvisioning(t *testing.T) {
	p := loadProject(t)
	g := service(t, p, "grafana")
	const provisioning = "/etc/grafana/provisioning"
	provHost, ro := hostPath(g, provisioning)
	if provHost == "" {
		t.Fatalf("grafana: nothing is mounted at %s", provisioning)
	}
	if !ro {
		t.Errorf("grafana: %s is mounted read-write; provisioning is read-only", provisioning)
	}
	for _, v := range g.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if _, err := os.Stat(v.Source); os.IsNotExist(err) {
			t.Skipf("grafana mounts %s, not written yet", v.Source)
		}
		if !v.ReadOnly {
			t.Errorf("grafana: bind mount %s -> %s is read-write", v.Source, v.Target)
		}
	}
	const wantUID = "ecomstream-prometheus"
	dsUID, dsName := "", ""
	for file, y := range readYAMLDir(t, filepath.Join(provHost, "datasources")) {
		for _, ds := range y.Datasources {
			if ds.Type != "prometheus" {
				continue
			}
			dsUID, dsName = ds.UID, ds.Name
			if ds.UID != wantUID {
				t.Errorf("%s: datasource uid %q, want %q", file, ds.UID, wantUID)
			}
			host, port := ds.URL, ""
			if i := strings.Index(host, "://"); i >= 0 {
				host = host[i+3:]
			}
			host = strings.SplitN(host, "/", 2)[0]
			host, port, _ = net.SplitHostPort(host)
			if !slices.Contains(dnsNames(p)[host], "prometheus") || !slices.Contains(listenPorts(t, p, "prometheus"), port) {
				t.Errorf("%s: datasource url %q is not the prometheus service on a port it listens on", file, ds.URL)
			}
		}
	}
	if dsUID == "" {
		t.Fatalf("%s/datasources: no prometheus datasource", provHost)
	}
	dashboards := map[string]string{} // uid -> host file
	var dirs []string
	for file, y := range readYAMLDir(t, filepath.Join(provHost, "dashboards")) {
		for _, pr := range y.Providers {
			host, _ := hostPath(g, pr.Options.Path)
			if host == "" {
				t.Errorf("%s: provider %q reads %s, which no bind mount of grafana covers", file, pr.Name, pr.Options.Path)
				continue
			}
			dirs = append(dirs, host)
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("%s/dashboards: no dashboard provider", provHost)
	}
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(f string, e os.DirEntry, err error) error {
			if err != nil {
				t.Errorf("dashboards directory: %v", err)
				return err
			}
			if e.IsDir() || !strings.HasSuffix(f, ".json") {
				return nil
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var d map[string]any
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Errorf("%s: %v", f, err)
				return nil
			}
			uid, _ := d["uid"].(string)
			if uid == "" {
				t.Errorf("%s: no fixed uid", f)
			} else if prev, dup := dashboards[uid]; dup {
				t.Errorf("%s and %s share uid %q", prev, f, uid)
			}
			dashboards[uid] = f
			var refs []string
			dashboardRefs(d, &refs)
			for _, r := range refs {
				switch {
				case r == dsUID || r == dsName:
				case (r == "${datasource}" || r == "$datasource") && datasourceVariableDefault(d) == dsUID:
					// the dashboards' $datasource variable, defaulting to the provisioned one
				case strings.HasPrefix(r, "-- ") || r == "grafana": // built-in annotations
				default:
					t.Errorf("%s: a panel names datasource %q, not the provisioned %q", f, r, dsUID)
				}
			}
			return nil
		})
	}
	if len(dashboards) == 0 {
		t.Errorf("no dashboard JSON under %v", dirs)
	}
	home := envOf(g)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	homeHost, _ := hostPath(g, home)
	want := dashboards[slaDashboardUID(t)]
	switch {
	case want == "":
		t.Errorf("no SLA dashboard (uid ecomstream-sla, or the one uid with \"sla\"): uids %v", keys(dashboards))
	case homeHost != want:
		t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH=%q is %q on the host; the SLA dashboard is %s", home, homeHost, want)
	}
	t.Logf("datasource %q; dashboards %v", dsUID, keys(dashboards))
}
