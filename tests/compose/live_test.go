package compose

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLiveStack runs against a stack that scripts/e2e-compose.sh (`make e2e`) brought up
// with `docker compose up`; without ECOMSTREAM_E2E_PROMETHEUS_URL it is skipped. It polls
// Prometheus until every job's targets are up (as many as the replicas started), it has
// found Alertmanager and rows are committed, then asks Grafana for its health, its
// dashboards and its home page.
func TestLiveStack(t *testing.T) {
	prom := os.Getenv("ECOMSTREAM_E2E_PROMETHEUS_URL")
	graf := os.Getenv("ECOMSTREAM_E2E_GRAFANA_URL")
	if prom == "" || graf == "" {
		t.Skip("no running stack: `make e2e` sets ECOMSTREAM_E2E_PROMETHEUS_URL and ECOMSTREAM_E2E_GRAFANA_URL")
	}
	timeout := 5 * time.Minute
	if v := os.Getenv("ECOMSTREAM_E2E_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ECOMSTREAM_E2E_TIMEOUT: %v", err)
		}
		timeout = d
	}
	replicas := map[string]int{"generator": 1, "ingester": 1, "collector": 1,
		"postgres-exporter": 1, "node-exporter": 1, "cadvisor": 1, "alertmanager": 1, "prometheus": 1}
	for _, svc := range []string{"generator", "ingester"} {
		if v := os.Getenv("ECOMSTREAM_E2E_" + strings.ToUpper(svc) + "S"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			replicas[svc] = n
		}
	}
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 5 * time.Second}

	query := func(q string) (float64, error) {
		resp, err := client.Get(prom + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, err
		}
		if r.Status != "success" || len(r.Data.Result) == 0 {
			return 0, fmt.Errorf("no data for %s", q)
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	waitFor := func(what string, ok func() (bool, string)) {
		t.Helper()
		start, last := time.Now(), ""
		for {
			good, state := ok()
			if good {
				t.Logf("%s after %s: %s", what, time.Since(start).Round(time.Second), state)
				return
			}
			if state != last {
				t.Logf("waiting for %s: %s", what, state)
				last = state
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached in %s (last: %s)", what, timeout, state)
			}
			time.Sleep(3 * time.Second)
		}
	}

	for job, n := range replicas {
		waitFor(fmt.Sprintf("%d %s target(s) up", n, job), func() (bool, string) {
			v, err := query(fmt.Sprintf(`count(up{job=%q} == 1)`, job))
			if err != nil {
				return false, err.Error()
			}
			return int(v) >= n, fmt.Sprintf("%g up", v)
		})
	}
	waitFor("Prometheus sends alerts to Alertmanager", func() (bool, string) {
		v, err := query(`prometheus_notifications_alertmanagers_discovered`)
		if err != nil {
			return false, err.Error()
		}
		return v >= 1, fmt.Sprintf("%g Alertmanager(s) discovered", v)
	})
	waitFor("rows committed", func() (bool, string) {
		v, err := query(`sum(ecomstream_ingester_records_total{outcome="inserted"})`)
		if err != nil {
			return false, err.Error()
		}
		return v > 0, fmt.Sprintf("%g rows inserted", v)
	})

	get := func(path string, into any) {
		t.Helper()
		resp, err := client.Get(graf + path)
		if err != nil {
			t.Fatalf("grafana %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("grafana %s: %s %s", path, resp.Status, body)
		}
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("grafana %s: %v: %s", path, err, body)
		}
	}
	var health struct {
		Database string `json:"database"`
	}
	waitFor("grafana healthy", func() (bool, string) {
		resp, err := client.Get(graf + "/api/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	get("/api/health", &health)
	if health.Database != "ok" {
		t.Errorf("grafana /api/health: database %q", health.Database)
	}
	// Anonymous viewer access: no credentials on these requests.
	var found []struct {
		UID string `json:"uid"`
	}
	get("/api/search?type=dash-db", &found)
	have := map[string]bool{}
	for _, d := range found {
		have[d.UID] = true
	}
	for _, uid := range repoDashboardUIDs(t) {
		if !have[uid] {
			t.Errorf("dashboard %s is not provisioned (grafana has %v)", uid, keys(have))
		}
	}
	var home struct {
		Dashboard struct {
			UID string `json:"uid"`
		} `json:"dashboard"`
	}
	get("/api/dashboards/home", &home)
	if want := slaDashboardUID(t); home.Dashboard.UID != want {
		t.Errorf("grafana's home dashboard is %q, want %q", home.Dashboard.UID, want)
	}
}

func repoDashboardUIDs(t *testing.T) []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "grafana", "dashboards", "*.json"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID string `json:"uid"`
		}
		if json.Unmarshal(raw, &d) == nil && d.UID != "" {
			out = append(out, d.UID)
		}
	}
	return out
}

// slaDashboardUID is the uid of the Pipeline SLA dashboard, the home page: ecomstream-sla,
// else the one dashboard whose uid mentions "sla".
func slaDashboardUID(t *testing.T) string {
	var sla []string
	for _, uid := range repoDashboardUIDs(t) {
		if uid == "ecomstream-sla" {
			return uid
		}
		if strings.Contains(uid, "sla") {
			sla = append(sla, uid)
		}
	}
	if len(sla) != 1 {
		return ""
	}
	return sla[0]
}
