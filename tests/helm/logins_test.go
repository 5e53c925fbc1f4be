package helm

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestServicesLogInAsTheirOwnRolesWhenGiven: database.ingester and database.collector
// give each service a login of its own (least privilege: its role's rights only). Then
// that service connects with it, does not migrate at start-up (its role cannot; the Job
// does, with database.url), and, once neither service needs it, the administrator's URL
// is in no Secret but the migration Job's hook Secret. Without them (the defaults and
// every value set), both services connect with database.url and migrate as before.
func TestServicesLogInAsTheirOwnRolesWhenGiven(t *testing.T) {
	const admin = "postgres://ecomstream@postgresql:5432/ecomstream?sslmode=require" // values.yaml
	dbURL := func(ms []manifest, component string) (string, *corev1.SecretKeySelector) {
		t.Helper()
		d := deployments(t, ms)[component]
		if d == nil {
			t.Fatalf("no %s Deployment", component)
		}
		c := d.Spec.Template.Spec.Containers[0]
		for _, e := range c.Env {
			if e.Name == "DATABASE_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				return envValue(t, ms, c, "DATABASE_URL", ""), e.ValueFrom.SecretKeyRef
			}
		}
		t.Fatalf("%s: no DATABASE_URL from a Secret", component)
		return "", nil
	}
	migrates := func(ms []manifest, component, variable string) bool {
		t.Helper()
		c := deployments(t, ms)[component].Spec.Template.Spec.Containers[0]
		return envValue(t, ms, c, variable, "true") != "false"
	}
	jobURL := func(ms []manifest) string {
		t.Helper()
		jobs := find(ms, "Job")
		if len(jobs) != 1 {
			t.Fatalf("%d Jobs, want the migration", len(jobs))
		}
		return envValue(t, ms, decodeAs[batchv1.Job](t, jobs[0]).Spec.Template.Spec.Containers[0], "DATABASE_URL", "")
	}
	// adminKept lists the non-hook Secrets holding the administrator's URL.
	adminKept := func(ms []manifest) (in []string) {
		for _, m := range find(ms, "Secret") {
			if m.Metadata.Annotations["helm.sh/hook"] != "" {
				continue
			}
			for _, v := range decodeAs[corev1.Secret](t, m).StringData {
				if v == admin {
					in = append(in, m.Metadata.Name)
				}
			}
		}
		return in
	}

	t.Run("defaults", func(t *testing.T) {
		ms := render(t, "default")
		for _, c := range []string{"ingester", "collector"} {
			if got, _ := dbURL(ms, c); got != admin {
				t.Errorf("%s connects with %q, want database.url", c, got)
			}
		}
		if !migrates(ms, "ingester", "INGESTER_MIGRATE_AT_START") || !migrates(ms, "collector", "COLLECTOR_MIGRATE_AT_START") {
			t.Error("a service on database.url does not migrate at start-up")
		}
	})

	t.Run("both", func(t *testing.T) {
		const ingesterURL = "postgres://shop_ingester:ingPW@postgresql:5432/ecomstream"
		vals := readValues(t, "")
		vals["database"] = map[string]any{
			"url":       admin,
			"ingester":  map[string]any{"url": ingesterURL},
			"collector": map[string]any{"existingSecret": "collector-db", "existingSecretKey": "uri"},
		}
		ms, err := renderValues(t, vals)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := dbURL(ms, "ingester"); got != ingesterURL {
			t.Errorf("the ingester connects with %q, want its own login", got)
		}
		if _, ref := dbURL(ms, "collector"); ref.Name != "collector-db" || ref.Key != "uri" {
			t.Errorf("the collector reads DATABASE_URL from %s/%s, want collector-db/uri", ref.Name, ref.Key)
		}
		if migrates(ms, "ingester", "INGESTER_MIGRATE_AT_START") || migrates(ms, "collector", "COLLECTOR_MIGRATE_AT_START") {
			t.Error("a service on its own login still migrates at start-up (its role cannot)")
		}
		if got := jobURL(ms); got != admin {
			t.Errorf("the migration Job connects with %q, want database.url", got)
		}
		if in := adminKept(ms); len(in) > 0 {
			t.Errorf("no service uses the administrator's URL, yet Secrets %v keep it", in)
		}
		for _, m := range ms {
			if m.Kind != "Secret" && strings.Contains(m.YAML, "ingPW") {
				t.Errorf("%s holds the ingester's password", m)
			}
		}
	})

	t.Run("ingester only", func(t *testing.T) {
		vals := readValues(t, "")
		vals["database"] = map[string]any{"url": admin, "ingester": map[string]any{"existingSecret": "ingester-db"}}
		ms, err := renderValues(t, vals)
		if err != nil {
			t.Fatal(err)
		}
		if _, ref := dbURL(ms, "ingester"); ref.Name != "ingester-db" || ref.Key != "DATABASE_URL" {
			t.Errorf("the ingester reads %s/%s, want ingester-db/DATABASE_URL (the default key)", ref.Name, ref.Key)
		}
		if got, _ := dbURL(ms, "collector"); got != admin {
			t.Errorf("the collector connects with %q, want database.url", got)
		}
		if !migrates(ms, "collector", "COLLECTOR_MIGRATE_AT_START") || migrates(ms, "ingester", "INGESTER_MIGRATE_AT_START") {
			t.Error("want the collector (database.url) to migrate and the ingester (own login) not")
		}
	})
}
