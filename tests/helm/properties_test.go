package helm

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const componentLabel = "app.kubernetes.io/component"

// deployments decodes the rendered Deployments by component.
func deployments(t testing.TB, ms []manifest) map[string]*appsv1.Deployment {
	t.Helper()
	out := map[string]*appsv1.Deployment{}
	for _, m := range find(ms, "Deployment") {
		d := decodeAs[appsv1.Deployment](t, m)
		out[d.Spec.Template.Labels[componentLabel]] = d
	}
	return out
}

// envValue is what a container's variable is set to by the chart, or def.
func envValue(t testing.TB, ms []manifest, c corev1.Container, name, def string) string {
	t.Helper()
	for _, e := range containerEnv(t, ms, c) {
		if e.Name == name {
			return e.Value
		}
	}
	return def
}

// TestPodsRunHardened: every pod the chart renders runs as a non-root user under
// seccomp RuntimeDefault without an API token, and every container has a read-only root
// file system, no capabilities and no privilege escalation (compose's read_only,
// cap_drop ALL and no-new-privileges).
func TestPodsRunHardened(t *testing.T) {
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		for where, p := range podSpecs(t, ms) {
			sc := p.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
				t.Errorf("%s: pod may run as root: %+v", where, sc)
			}
			if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: no seccomp RuntimeDefault", where)
			}
			if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
				t.Errorf("%s: mounts a service account token", where)
			}
			if p.HostNetwork || p.HostPID || p.HostIPC {
				t.Errorf("%s: shares a host namespace", where)
			}
			for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
				cs := c.SecurityContext
				switch {
				case cs == nil:
					t.Errorf("%s/%s: no securityContext", where, c.Name)
				case cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem:
					t.Errorf("%s/%s: writable root file system", where, c.Name)
				case cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation:
					t.Errorf("%s/%s: may escalate privileges", where, c.Name)
				case cs.Privileged != nil && *cs.Privileged:
					t.Errorf("%s/%s: privileged", where, c.Name)
				case cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cs.Capabilities.Add) > 0:
					t.Errorf("%s/%s: capabilities %+v, want all dropped and none added", where, c.Name, cs.Capabilities)
				}
			}
		}
	})
}

// slaThreshold reads one target from deploy/prometheus/rules/sla-thresholds.rules.yml,
// the one place the report's SLA lives.
func slaThreshold(t testing.TB, sla string) float64 {
	t.Helper()
	var file struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}
	if err := decodeStrict(mustRead(t, filepath.Join(repoRoot(t), "deploy", "prometheus", "rules", "sla-thresholds.rules.yml")), &file); err != nil {
		t.Fatal(err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Record == "ecomstream:sla_threshold:value" && r.Labels["sla"] == sla {
				m := regexp.MustCompile(`^vector\(([0-9.e+]+)\)$`).FindStringSubmatch(r.Expr.String())
				if m == nil {
					t.Fatalf("threshold %s: %q is not vector(N)", sla, r.Expr.String())
				}
				v, err := strconv.ParseFloat(m[1], 64)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
	}
	t.Fatalf("no SLA threshold %s", sla)
	return 0
}

// TestServicesHaveProbesAndBoundedMemory: each service's container is probed on
// /healthz (startup, liveness) and /readyz (readiness) at the port its HTTP_ADDR
// listens on, requests CPU and memory, and has a memory limit; the ingester's is below
// the report's memory target.
func TestServicesHaveProbesAndBoundedMemory(t *testing.T) {
	limitSLA := slaThreshold(t, "ingester_memory")
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		deps := deployments(t, ms)
		if deps["ingester"] == nil {
			t.Fatal("no ingester Deployment")
		}
		for comp, d := range deps {
			c := d.Spec.Template.Spec.Containers[0]
			addr := envValue(t, ms, c, strings.ToUpper(comp)+"_HTTP_ADDR", "")
			port, err := strconv.Atoi(strings.TrimPrefix(addr, ":"))
			if err != nil {
				t.Fatalf("%s: HTTP_ADDR %q is not :PORT", comp, addr)
			}
			if len(c.Ports) != 1 || c.Ports[0].ContainerPort != int32(port) || c.Ports[0].Name != "http" {
				t.Errorf("%s: ports %+v, want http on %d", comp, c.Ports, port)
			}
			for name, pr := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				want := "/healthz"
				if name == "readiness" {
					want = "/readyz"
				}
				if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != want || pr.HTTPGet.Port.String() != "http" {
					t.Errorf("%s: %s probe %+v, want GET %s on port http", comp, name, pr, want)
				}
			}
			mem, ok := c.Resources.Limits[corev1.ResourceMemory]
			if !ok {
				t.Errorf("%s: no memory limit", comp)
			}
			if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
				t.Errorf("%s: no CPU request", comp)
			}
			if req, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok || req.Cmp(mem) > 0 {
				t.Errorf("%s: memory request %v missing or above its limit %v", comp, req.String(), mem.String())
			}
			if comp == "ingester" && mem.Cmp(*resource.NewQuantity(int64(limitSLA), resource.BinarySI)) >= 0 {
				t.Errorf("ingester memory limit %s is not below the report's target of %.0f bytes", mem.String(), limitSLA)
			}
		}
	})
}

// TestIngesterOutlivesItsShutdownGrace: the kubelet's SIGKILL comes after the ingester
// has had its whole INGESTER_SHUTDOWN_GRACE to commit or roll back the batch in flight.
func TestIngesterOutlivesItsShutdownGrace(t *testing.T) {
	f, ok := readSettings(t, "ingester")["INGESTER_SHUTDOWN_GRACE"]
	if !ok || f.Type != reflect.TypeFor[time.Duration]() {
		t.Fatalf("the ingester has no INGESTER_SHUTDOWN_GRACE duration setting (%+v)", f)
	}
	def := f.Default // what the ingester runs with where the chart sets nothing
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		d := deployments(t, ms)["ingester"]
		grace, err := time.ParseDuration(envValue(t, ms, d.Spec.Template.Spec.Containers[0], "INGESTER_SHUTDOWN_GRACE", def))
		if err != nil {
			t.Fatal(err)
		}
		term := d.Spec.Template.Spec.TerminationGracePeriodSeconds
		if term == nil || time.Duration(*term)*time.Second <= grace {
			t.Errorf("terminationGracePeriodSeconds %v is not longer than the shutdown grace %v", term, grace)
		}
	})
}

// TestMigrationIsAHookBeforeTheServices: `ingester migrate` runs as a pre-install and
// pre-upgrade hook Job, so Helm creates the Deployments only after it succeeded; it
// references nothing that is created after hooks (the release's Secret, ConfigMaps,
// service account), and a hook Secret it reads comes first.
func TestMigrationIsAHookBeforeTheServices(t *testing.T) {
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		jobs := find(ms, "Job")
		if len(jobs) != 1 {
			t.Fatalf("%d Jobs, want the migration", len(jobs))
		}
		jm := jobs[0]
		if jm.Metadata.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" {
			t.Errorf("migration hook %q, want pre-install,pre-upgrade", jm.Metadata.Annotations["helm.sh/hook"])
		}
		job := decodeAs[batchv1.Job](t, jm)
		p := job.Spec.Template.Spec
		if len(p.Containers) != 1 || programOf(p.Containers[0].Image) != "ingester" || !slices.Equal(p.Containers[0].Args, []string{"migrate"}) {
			t.Fatalf("the Job runs %+v, want the ingester image with args [migrate]", p.Containers)
		}
		if p.ServiceAccountName != "" || len(p.Containers[0].EnvFrom) > 0 || len(p.Volumes) > 0 {
			t.Errorf("the Job uses a service account, ConfigMap or volume the release creates after its hooks")
		}
		hooks := map[string]manifest{}
		for _, m := range ms {
			if m.Metadata.Annotations["helm.sh/hook"] != "" {
				hooks[m.Kind+"/"+m.Metadata.Name] = m
			}
		}
		jobWeight, _ := strconv.Atoi(jm.Metadata.Annotations["helm.sh/hook-weight"])
		for _, e := range p.Containers[0].Env {
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			name := e.ValueFrom.SecretKeyRef.Name
			for _, s := range find(ms, "Secret") {
				if s.Metadata.Name != name {
					continue
				}
				h, ok := hooks["Secret/"+name]
				if !ok {
					t.Errorf("the Job reads Secret %s, which is created after the hooks", name)
					continue
				}
				w, _ := strconv.Atoi(h.Metadata.Annotations["helm.sh/hook-weight"])
				if w >= jobWeight || !strings.Contains(h.Metadata.Annotations["helm.sh/hook"], "pre-install") {
					t.Errorf("hook Secret %s (weight %d) is not created before the Job (weight %d)", name, w, jobWeight)
				}
			}
		}
	})
}

// metricExported tells whether services/<program> registers the metric: its name less
// the ecomstream_<program>_ prefix (BuildFQName's namespace and subsystem) is a string
// literal in the service's Go source.
func metricExported(t testing.TB, program, name string) bool {
	t.Helper()
	suffix, ok := strings.CutPrefix(name, "ecomstream_"+program+"_")
	if !ok {
		return false
	}
	found := false
	err := filepath.WalkDir(filepath.Join(repoRoot(t), "services", program), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			found = found || strings.Contains(string(mustRead(t, p)), strconv.Quote(suffix))
		}
		return err
	})
	if err != nil {
		t.Fatalf("reading services/%s: %v", program, err)
	}
	return found
}

// TestAutoscalersTargetTheIngester: the KEDA set scales the ingester Deployment on
// metrics the ingester exports, the HPA set on CPU, the default set on neither; an
// autoscaled Deployment leaves its replica count to the autoscaler.
func TestAutoscalersTargetTheIngester(t *testing.T) {
	want := map[string]string{"default": "", "s3-keda": "ScaledObject", "volume-hpa": "HorizontalPodAutoscaler"}
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		w, ok := want[set]
		if !ok {
			t.Skipf("no expectation for value set %s", set)
		}
		ing := deployments(t, ms)["ingester"]
		so, hpa := find(ms, "ScaledObject"), find(ms, "HorizontalPodAutoscaler")
		var target string
		switch {
		case len(so)+len(hpa) == 0:
			if w != "" || ing.Spec.Replicas == nil {
				t.Errorf("no autoscaler (want %q), replicas %v", w, ing.Spec.Replicas)
			}
			return
		case len(so)+len(hpa) > 1:
			t.Fatalf("%d autoscalers", len(so)+len(hpa))
		case len(so) == 1:
			s := decodeAs[kedav1alpha1.ScaledObject](t, so[0])
			target = s.Spec.ScaleTargetRef.Kind + "/" + s.Spec.ScaleTargetRef.Name
			if s.Spec.MinReplicaCount == nil || *s.Spec.MinReplicaCount < 1 {
				t.Errorf("KEDA may scale the ingesters to zero, where their backlog metric disappears")
			}
			for _, tr := range s.Spec.Triggers {
				for _, name := range regexp.MustCompile(`ecomstream_[a-z_]+`).FindAllString(tr.Metadata["query"], -1) {
					if !metricExported(t, "ingester", name) {
						t.Errorf("trigger %s queries %s, which services/ingester does not export", tr.Name, name)
					}
				}
				if _, err := strconv.ParseFloat(tr.Metadata["threshold"], 64); err != nil {
					t.Errorf("trigger %s: threshold %q: %v", tr.Name, tr.Metadata["threshold"], err)
				}
			}
		default:
			h := decodeAs[autoscalingv2.HorizontalPodAutoscaler](t, hpa[0])
			target = h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
		}
		if target != "Deployment/"+ing.Name {
			t.Errorf("the autoscaler targets %s, want Deployment/%s", target, ing.Name)
		}
		if ing.Spec.Replicas != nil {
			t.Errorf("the autoscaled ingester Deployment sets replicas=%d, which every upgrade would reset", *ing.Spec.Replicas)
		}
	})
}

// TestDisruptionBudgetCoversOnlyIngesters: the PodDisruptionBudget selects the ingester
// pods and no other.
func TestDisruptionBudgetCoversOnlyIngesters(t *testing.T) {
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		pdbs := find(ms, "PodDisruptionBudget")
		if len(pdbs) != 1 {
			t.Fatalf("%d PodDisruptionBudgets, want 1", len(pdbs))
		}
		sel, err := metav1.LabelSelectorAsSelector(decodeAs[policyv1.PodDisruptionBudget](t, pdbs[0]).Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		for comp, d := range deployments(t, ms) {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) != (comp == "ingester") {
				t.Errorf("the budget's selector %s and the %s pods: matches=%v", sel, comp, comp != "ingester")
			}
		}
	})
}

// TestSecretsStayOutOfConfigMaps: the database URL and the S3 keys are only ever in a
// Secret.
func TestSecretsStayOutOfConfigMaps(t *testing.T) {
	secret := "s3cr3t" // the password in ci/volume-hpa-values.yaml
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		for _, m := range find(ms, "ConfigMap") {
			for k, v := range decodeAs[corev1.ConfigMap](t, m).Data {
				if k == "DATABASE_URL" || strings.HasPrefix(k, "AWS_") || strings.Contains(v, secret) {
					t.Errorf("%s holds %s", m, k)
				}
			}
		}
		for _, m := range ms {
			if m.Kind != "Secret" && strings.Contains(m.YAML, secret) {
				t.Errorf("%s holds the database password", m)
			}
		}
	})
}

// TestPodMonitorJobsAreTheRulesJobs: scraped through the PodMonitor, each service's
// job label is the job the rules expect (ecomstream:scrape_job:expected).
func TestPodMonitorJobsAreTheRulesJobs(t *testing.T) {
	ms := render(t, "s3-keda")
	pms := find(ms, "PodMonitor")
	if len(pms) != 1 {
		t.Fatalf("%d PodMonitors, want 1", len(pms))
	}
	pm := decodeAs[monitoringv1.PodMonitor](t, pms[0])
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	expected := map[string]bool{}
	for _, m := range find(ms, "PrometheusRule") {
		for _, g := range decodeAs[monitoringv1.PrometheusRule](t, m).Spec.Groups {
			for _, r := range g.Rules {
				if r.Record == "ecomstream:scrape_job:expected" {
					expected[r.Labels["job"]] = true
				}
			}
		}
	}
	for comp, d := range deployments(t, ms) {
		l := d.Spec.Template.Labels
		if !sel.Matches(labels.Set(l)) {
			t.Errorf("the PodMonitor does not select the %s pods", comp)
		}
		if job := l[pm.Spec.JobLabel]; !expected[job] {
			t.Errorf("the %s pods' job would be %q; the rules expect one of %v", comp, job, slices.Sorted(maps.Keys(expected)))
		}
		if ep := pm.Spec.PodMetricsEndpoints; len(ep) != 1 || ep[0].Port == nil || *ep[0].Port != d.Spec.Template.Spec.Containers[0].Ports[0].Name {
			t.Errorf("the PodMonitor does not scrape the %s container's port", comp)
		}
	}
}

// TestVolumeModeSharesOneClaim: in volume mode every service mounts the one
// ReadWriteMany claim at /data; in S3 mode no pod has a volume.
func TestVolumeModeSharesOneClaim(t *testing.T) {
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		pvcs := find(ms, "PersistentVolumeClaim")
		for comp, d := range deployments(t, ms) {
			p := d.Spec.Template.Spec
			if len(pvcs) == 0 {
				if len(p.Volumes) > 0 {
					t.Errorf("%s has volumes %+v in S3 mode", comp, p.Volumes)
				}
				continue
			}
			if len(p.Volumes) != 1 || p.Volumes[0].PersistentVolumeClaim == nil || p.Volumes[0].PersistentVolumeClaim.ClaimName != pvcs[0].Metadata.Name {
				t.Errorf("%s does not mount claim %s: %+v", comp, pvcs[0].Metadata.Name, p.Volumes)
			}
			if m := p.Containers[0].VolumeMounts; len(m) != 1 || m[0].MountPath != "/data" {
				t.Errorf("%s mounts %+v, want /data", comp, m)
			}
		}
		if len(pvcs) == 1 {
			pvc := decodeAs[corev1.PersistentVolumeClaim](t, pvcs[0])
			if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
				t.Errorf("claim access modes %v, want ReadWriteMany", pvc.Spec.AccessModes)
			}
		}
	})
}

// TestCollectorMeasuresTheBacklogWhereTheIngestersRead: in S3 mode the collector lists
// the ingesters' bucket prefix (COLLECTOR_SOURCE = INGESTER_SOURCE, from the same
// values), so the backlog panels show the bucket; in volume mode it watches the
// ingesters' input directory.
func TestCollectorMeasuresTheBacklogWhereTheIngestersRead(t *testing.T) {
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		ds := deployments(t, ms)
		ing, col := ds["ingester"], ds["collector"]
		if ing == nil || col == nil {
			t.Fatalf("no ingester or collector Deployment: %v", slices.Collect(maps.Keys(ds)))
		}
		ic, cc := ing.Spec.Template.Spec.Containers[0], col.Spec.Template.Spec.Containers[0]
		source := envValue(t, ms, ic, "INGESTER_SOURCE", "")
		if got := envValue(t, ms, cc, "COLLECTOR_SOURCE", ""); got != source {
			t.Errorf("the collector measures the backlog of %q, the ingesters read %q", got, source)
		}
		if source == "" {
			dir := envValue(t, ms, ic, "INGESTER_INPUT_DIR", "")
			if got := envValue(t, ms, cc, "COLLECTOR_WATCH_DIR", ""); got != dir {
				t.Errorf("the collector watches %q, the ingesters read %q", got, dir)
			}
			return
		}
		// The same archive and failed prefixes: what is under them is not backlog.
		for _, p := range []string{"S3_ARCHIVE_PREFIX", "S3_FAILED_PREFIX"} {
			if a, b := envValue(t, ms, ic, "INGESTER_"+p, "archive/ or failed/ (default)"), envValue(t, ms, cc, "COLLECTOR_"+p, "archive/ or failed/ (default)"); a != b {
				t.Errorf("%s: ingester %q, collector %q", p, a, b)
			}
		}
		// The same endpoint, region and keys as the ingesters.
		for _, v := range []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID"} {
			if a, b := envValue(t, ms, ic, v, "-"), envValue(t, ms, cc, v, "-"); a != b {
				t.Errorf("%s: ingester %q, collector %q", v, a, b)
			}
		}
	})
}

// TestCollectorAndGeneratorTakeTheirOwnKeysWhenGiven: collector.s3.existingSecret gives
// the collector (which only lists) its own keys, generator.s3.existingSecret the generator
// (which only puts), and the ingesters keep theirs; without them both have the ingesters'
// (the defaults and every value set).
func TestCollectorAndGeneratorTakeTheirOwnKeysWhenGiven(t *testing.T) {
	keyRefs := func(ms []manifest, component string) map[string]string {
		t.Helper()
		d := deployments(t, ms)[component]
		if d == nil {
			t.Fatalf("no %s Deployment", component)
		}
		refs := map[string]string{}
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && strings.HasPrefix(e.Name, "AWS_") {
				refs[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
			}
		}
		return refs
	}
	eachSet(t, func(t *testing.T, set string, ms []manifest) {
		ing := keyRefs(ms, "ingester")
		for _, c := range []string{"collector", "generator"} {
			if _, ok := deployments(t, ms)[c]; !ok {
				continue
			}
			if own := keyRefs(ms, c); !maps.Equal(ing, own) {
				t.Errorf("without %s.s3.existingSecret: ingester's keys %v, %s's %v", c, ing, c, own)
			}
		}
	})
	vals := readValues(t, valueSets(t)["s3-keda"])
	for c, secret := range map[string]string{"collector": "collector-list-only", "generator": "generator-put-only"} {
		v, _ := vals[c].(map[string]any)
		if v == nil {
			v = map[string]any{}
			vals[c] = v
		}
		v["s3"] = map[string]any{"existingSecret": secret, "accessKeyIdKey": "id", "secretAccessKeyKey": "secret"}
	}
	ms, err := renderValues(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	for c, secret := range map[string]string{"collector": "collector-list-only", "generator": "generator-put-only"} {
		want := map[string]string{"AWS_ACCESS_KEY_ID": secret + "/id", "AWS_SECRET_ACCESS_KEY": secret + "/secret"}
		if got := keyRefs(ms, c); !maps.Equal(got, want) {
			t.Errorf("%s's keys %v, want %v", c, got, want)
		}
	}
	if got := keyRefs(ms, "ingester"); got["AWS_ACCESS_KEY_ID"] != "minio-ecomstream/rootUser" {
		t.Errorf("the ingesters' keys changed with the collector's and the generator's: %v", got)
	}
}

// TestMigrationSetsTheIngestersRetentionAsThePolicy: the migration Job writes the
// database's retention policy (sql/0006) from the three retention settings, and an
// ingester whose window is shorter than the policy has that step of its maintenance
// refused. So the Job runs with exactly the ingesters' values, from ingester.settings: in
// every value set, and with windows set there.
func TestMigrationSetsTheIngestersRetentionAsThePolicy(t *testing.T) {
	keys := []string{"INGESTER_EVENTS_RETENTION", "INGESTER_LEDGER_RETENTION", "INGESTER_REJECTED_RETENTION"}
	check := func(t *testing.T, ms []manifest, want map[string]string) {
		t.Helper()
		jobs := find(ms, "Job")
		if len(jobs) != 1 {
			t.Fatalf("%d Jobs, want the migration", len(jobs))
		}
		job := decodeAs[batchv1.Job](t, jobs[0]).Spec.Template.Spec.Containers[0]
		ing := deployments(t, ms)["ingester"].Spec.Template.Spec.Containers[0]
		for _, k := range keys {
			// Unset, the ingester reads off (its settings' default).
			got, ingester := envValue(t, ms, job, k, "(unset)"), envValue(t, ms, ing, k, "off")
			if got != ingester || (want != nil && got != want[k]) {
				t.Errorf("%s: the migration Job runs with %q, the ingesters with %q (want %q)", k, got, ingester, want[k])
			}
		}
	}
	eachSet(t, func(t *testing.T, set string, ms []manifest) { check(t, ms, nil) })
	t.Run("windows set", func(t *testing.T) {
		want := map[string]string{"INGESTER_EVENTS_RETENTION": "31d", "INGESTER_LEDGER_RETENTION": "45d", "INGESTER_REJECTED_RETENTION": "36h"}
		vals := readValues(t, "")
		settings := map[string]any{}
		for k, v := range want {
			settings[k] = v
		}
		vals["ingester"] = map[string]any{"settings": settings}
		ms, err := renderValues(t, vals)
		if err != nil {
			t.Fatal(err)
		}
		check(t, ms, want)
	})
}
