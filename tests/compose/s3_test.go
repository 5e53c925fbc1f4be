package compose

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// volumeAt is the named volume a service mounts at target ("" if none).
func volumeAt(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return v.Source
		}
	}
	return ""
}

// flagValue is the argument after flag in a command ("" if absent).
func flagValue(cmd []string, flag string) string {
	if i := slices.Index(cmd, flag); i >= 0 && i+1 < len(cmd) {
		return cmd[i+1]
	}
	return ""
}

// TestS3ProfileWiring: in the s3 profile the generators write where the ingesters read,
// each service reaches the S3 server with an account of its own that s3-access makes
// (with the root keys, which no service has) and the bucket policy limits to its rights,
// the ingesters listen on the NATS subject the server publishes to, the servers' volumes
// are prepared, and nothing but the bucket and PostgreSQL is shared: no data volume (they
// may run on different hosts).
func TestS3ProfileWiring(t *testing.T) {
	p := loadProject(t, "s3")
	gen, ing := envOf(service(t, p, "generator-s3")), envOf(service(t, p, "ingester-s3"))
	vgwSvc, natsSvc, initSvc := service(t, p, "versitygw"), service(t, p, "nats"), service(t, p, "s3-init")
	vgw := envOf(vgwSvc)

	out, in := gen["GENERATOR_OUTPUT"], ing["INGESTER_SOURCE"]
	if !strings.HasPrefix(in, "s3://") || out != in {
		t.Fatalf("generator-s3 writes to %q, ingester-s3 reads %q: want one s3://BUCKET/PREFIX", out, in)
	}
	bucket, _, _ := strings.Cut(strings.TrimPrefix(in, "s3://"), "/")

	// The bucket: a directory under versitygw's posix root, made by s3-init on that volume.
	cmd := []string(vgwSvc.Command)
	if len(cmd) != 2 || cmd[0] != "posix" {
		t.Fatalf("versitygw command %v, want [posix ROOT]", cmd)
	}
	root := cmd[1]
	if volumeAt(vgwSvc, root) == "" || volumeAt(initSvc, root) != volumeAt(vgwSvc, root) {
		t.Errorf("s3-init mounts %q at %s, versitygw serves %q from there", volumeAt(initSvc, root), root, volumeAt(vgwSvc, root))
	}
	script := strings.Join(initSvc.Command, " ")
	natsStore := flagValue(natsSvc.Command, "--store_dir")
	// versitygw keeps the services' accounts in its IAM directory, on a volume of its own
	// (they outlive a restart of the gateway), which s3-init hands over too.
	iamDir := vgw["VGW_IAM_DIR"]
	if iamDir == "" || volumeAt(vgwSvc, iamDir) == "" || volumeAt(vgwSvc, iamDir) == volumeAt(vgwSvc, root) ||
		volumeAt(initSvc, iamDir) != volumeAt(vgwSvc, iamDir) {
		t.Errorf("versitygw's IAM directory %q is not on a volume of its own that s3-init prepares (versitygw %q, s3-init %q)",
			iamDir, volumeAt(vgwSvc, iamDir), volumeAt(initSvc, iamDir))
	}
	for _, dir := range []string{root, iamDir, "/nats"} {
		if !strings.Contains(script, " "+dir) {
			t.Errorf("s3-init does not hand %s to the servers' user: %q", dir, script)
		}
	}
	if volumeAt(natsSvc, natsStore) == "" || volumeAt(initSvc, "/nats") != volumeAt(natsSvc, natsStore) {
		t.Errorf("nats stores JetStream in %s (volume %q); s3-init prepares volume %q", natsStore, volumeAt(natsSvc, natsStore), volumeAt(initSvc, "/nats"))
	}
	if !slices.Contains([]string(natsSvc.Command), "--jetstream") {
		t.Errorf("nats runs without JetStream: %v", natsSvc.Command)
	}
	for _, name := range []string{"nats", "versitygw"} {
		if u := service(t, p, name).User; u == "" || strings.HasPrefix(u, "0") || u == "root" {
			t.Errorf("%s runs as %q, want the non-root user s3-init hands the volumes to", name, u)
		}
	}

	// The bucket's backlog is measured where the ingesters read, by a collector that
	// Prometheus' collector job finds (the alias), while the default collector keeps
	// measuring the directory.
	colSvc := service(t, p, "collector-s3")
	col := envOf(colSvc)
	if col["COLLECTOR_SOURCE"] != in {
		t.Errorf("collector-s3 measures the backlog of %q, ingester-s3 reads %q", col["COLLECTOR_SOURCE"], in)
	}
	if net, ok := colSvc.Networks["default"]; !ok || net == nil || !slices.Contains(net.Aliases, "collector") {
		t.Errorf("collector-s3 does not answer to the alias collector (Prometheus' collector job): %v", colSvc.Networks)
	}
	// Counted by the ingesters' rule: the same archive and failed prefixes (settings or defaults).
	for _, k := range []string{"S3_ARCHIVE_PREFIX", "S3_FAILED_PREFIX"} {
		if c, i := settingValue(t, "collector-s3", k), settingValue(t, "ingester-s3", k); c != i {
			t.Errorf("collector-s3 leaves out %s %q, ingester-s3 puts objects under %q", k, c, i)
		}
	}
	if src := envOf(service(t, p, "collector"))["COLLECTOR_SOURCE"]; src != "" {
		t.Errorf("the default collector measures %q, want its directory", src)
	}

	// s3-access, with the server's root account, makes the bucket, each service's account
	// and the policy; each service reaches the server with its own account, and no
	// container but versitygw and s3-access knows the root secret.
	accSvc := service(t, p, "s3-access")
	acc := envOf(accSvc)
	if acc["S3_BUCKET"] != bucket {
		t.Errorf("s3-access makes bucket %q, the services use %q", acc["S3_BUCKET"], bucket)
	}
	for svc, env := range map[string]map[string]string{"generator-s3": gen, "ingester-s3": ing, "collector-s3": col, "s3-access": acc} {
		u, err := url.Parse(env["AWS_ENDPOINT_URL"])
		if err != nil || u.Hostname() != "versitygw" || ":"+u.Port() != vgw["VGW_PORT"] || !slices.Contains([]string(vgwSvc.Expose), u.Port()) {
			t.Errorf("%s: AWS_ENDPOINT_URL=%q, but versitygw listens on %q (expose %v)", svc, env["AWS_ENDPOINT_URL"], vgw["VGW_PORT"], vgwSvc.Expose)
		}
		if env["AWS_REGION"] == "" || env["AWS_REGION"] != vgw["VGW_REGION"] {
			t.Errorf("%s: AWS_REGION=%q, versitygw VGW_REGION=%q", svc, env["AWS_REGION"], vgw["VGW_REGION"])
		}
	}
	if acc["AWS_ACCESS_KEY_ID"] != vgw["ROOT_ACCESS_KEY_ID"] || acc["AWS_SECRET_ACCESS_KEY"] != vgw["ROOT_SECRET_ACCESS_KEY"] || vgw["ROOT_SECRET_ACCESS_KEY"] == "" {
		t.Errorf("s3-access does not use versitygw's root account (its admin API takes no other)")
	}
	roles := map[string]map[string]string{"GENERATOR": gen, "INGESTER": ing, "COLLECTOR": col}
	keys := map[string]string{vgw["ROOT_ACCESS_KEY_ID"]: "root"}
	for role, env := range roles {
		svc := strings.ToLower(role) + "-s3"
		if env["AWS_ACCESS_KEY_ID"] == "" || env["AWS_ACCESS_KEY_ID"] != acc["S3_"+role+"_ACCESS_KEY"] ||
			env["AWS_SECRET_ACCESS_KEY"] == "" || env["AWS_SECRET_ACCESS_KEY"] != acc["S3_"+role+"_SECRET_KEY"] {
			t.Errorf("%s: AWS_ACCESS_KEY_ID=%q (and its secret) is not the account s3-access makes for it (S3_%s_ACCESS_KEY=%q)",
				svc, env["AWS_ACCESS_KEY_ID"], role, acc["S3_"+role+"_ACCESS_KEY"])
		}
		if other, taken := keys[env["AWS_ACCESS_KEY_ID"]]; taken {
			t.Errorf("%s uses the access key of %s", svc, other)
		}
		keys[env["AWS_ACCESS_KEY_ID"]] = svc
		if d, ok := service(t, p, svc).DependsOn["s3-access"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s does not wait for s3-access to complete (its account does not exist before)", svc)
		}
	}
	for name, s := range p.Services {
		for k, v := range envOf(s) {
			if v == vgw["ROOT_SECRET_ACCESS_KEY"] && name != "versitygw" && name != "s3-access" {
				t.Errorf("%s: %s is versitygw's root secret", name, k)
			}
		}
	}
	checkBucketPolicy(t, accSvc, bucket, map[string]string{
		"input":   strings.TrimPrefix(in, "s3://"+bucket+"/"),
		"archive": settingValue(t, "ingester-s3", "S3_ARCHIVE_PREFIX"),
		"failed":  settingValue(t, "ingester-s3", "S3_FAILED_PREFIX"),
		"listed":  strings.TrimPrefix(col["COLLECTOR_SOURCE"], "s3://"+bucket+"/"),
	})
	for _, svc := range []string{"generator-s3", "ingester-s3", "collector-s3"} {
		for _, v := range service(t, p, svc).Volumes {
			if v.Type == types.VolumeTypeVolume {
				t.Errorf("%s mounts volume %s: across machines only the bucket is shared", svc, v.Source)
			}
		}
	}

	// Notifications: the server publishes to the subject the ingesters read, on the NATS
	// the profile runs.
	natsURL := "nats://nats:" + flagValue(natsSvc.Command, "--port")
	if vgw["VGW_EVENT_NATS_URL"] != natsURL || ing["INGESTER_NATS_URL"] != natsURL {
		t.Errorf("versitygw publishes to %q, ingester-s3 reads %q; nats listens at %s", vgw["VGW_EVENT_NATS_URL"], ing["INGESTER_NATS_URL"], natsURL)
	}
	if s := ing["INGESTER_NATS_SUBJECT"]; s == "" || s != vgw["VGW_EVENT_NATS_TOPIC"] {
		t.Errorf("ingester-s3 reads subject %q, versitygw publishes to %q", s, vgw["VGW_EVENT_NATS_TOPIC"])
	}
	// The notifications wait in a JetStream stream while no ingester runs: a stream is
	// named (the durable consumer is named after the source when unset), and the server
	// keeps its store on a volume (above).
	if ing["INGESTER_NATS_STREAM"] == "" {
		t.Errorf("ingester-s3: INGESTER_NATS_STREAM is empty; want a stream (a plain subscription loses what is published while none runs)")
	}
	// Connections are kept alive: without it versitygw closes each after one request and
	// every GET, copy, delete and PUT dials anew.
	if vgw["VGW_KEEP_ALIVE"] != "true" {
		t.Errorf("versitygw: VGW_KEEP_ALIVE=%q, want \"true\" (it closes every connection after one request otherwise)", vgw["VGW_KEEP_ALIVE"])
	}
	// Only new objects are announced: the ingesters' archive copies and deletes are not.
	host, _ := hostPath(vgwSvc, vgw["VGW_EVENT_FILTER"])
	raw, err := os.ReadFile(host)
	if err != nil {
		t.Fatalf("versitygw's event filter %s: %v", vgw["VGW_EVENT_FILTER"], err)
	}
	var filter map[string]bool
	if err := json.Unmarshal(raw, &filter); err != nil {
		t.Fatalf("%s: %v", host, err)
	}
	if !filter["s3:ObjectCreated:*"] || filter["s3:ObjectCreated:Copy"] || filter["s3:ObjectRemoved:*"] {
		t.Errorf("%s: %v, want object-created events without copies and removals", host, filter)
	}
}

// checkBucketPolicy: the policy s3-access puts is the repository's template
// (deploy/versitygw/bucket-policy.json, mounted where --policy points), and filled in
// with compose's values it gives each account exactly its service's rights on the
// prefixes the services are configured with, nothing more (services/common/s3access's
// tests prove the gateway enforces them).
func checkBucketPolicy(t *testing.T, accSvc types.ServiceConfig, bucket string, prefix map[string]string) {
	t.Helper()
	target := flagValue(accSvc.Command, "--policy")
	if accSvc.Command[0] != "s3-access" || target == "" {
		t.Fatalf("s3-access runs %v, want [s3-access --policy FILE]", accSvc.Command)
	}
	host, ok := hostPath(accSvc, target)
	if want := filepath.Join(repoRoot(t), "deploy", "versitygw", "bucket-policy.json"); !ok || host != want {
		t.Fatalf("s3-access reads the policy %s from %q, want %s", target, host, want)
	}
	raw, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	env := envOf(accSvc)
	text := os.Expand(string(raw), func(k string) string {
		if k == "S3_BUCKET" || strings.HasSuffix(k, "_ACCESS_KEY") {
			return env[k]
		}
		t.Errorf("the policy template names ${%s}", k)
		return ""
	})
	var pol struct {
		Statement []struct {
			Effect    string
			Principal struct{ AWS []string }
			Action    []string
			Resource  []string
			Condition map[string]map[string][]string
		}
	}
	if err := json.Unmarshal([]byte(text), &pol); err != nil {
		t.Fatalf("%s: %v (principals, actions and resources are lists here)", host, err)
	}
	who := map[string]string{env["S3_GENERATOR_ACCESS_KEY"]: "generator", env["S3_INGESTER_ACCESS_KEY"]: "ingester",
		env["S3_COLLECTOR_ACCESS_KEY"]: "collector"}
	got := map[string][]string{}
	for _, st := range pol.Statement {
		if st.Effect != "Allow" {
			continue
		}
		for _, p := range st.Principal.AWS {
			for _, a := range st.Action {
				for _, r := range st.Resource {
					g := who[p] + " " + a + " " + strings.TrimPrefix(r, "arn:aws:s3:::")
					for op, kv := range st.Condition {
						for k, vs := range kv {
							g += " if " + op + " " + k + "=" + strings.Join(vs, ",")
						}
					}
					got[who[p]] = append(got[who[p]], g)
				}
			}
		}
	}
	in, ar, fa, li := bucket+"/"+prefix["input"]+"*", bucket+"/"+prefix["archive"]+"*", bucket+"/"+prefix["failed"]+"*", prefix["listed"]
	want := map[string][]string{
		"generator": {"generator s3:PutObject " + in, "generator s3:AbortMultipartUpload " + in},
		"collector": {"collector s3:ListBucket " + bucket + " if StringLike s3:prefix=" + li + "*"},
		"ingester": {"ingester s3:ListBucket " + bucket,
			"ingester s3:GetObject " + in, "ingester s3:GetObject " + fa, "ingester s3:DeleteObject " + in, "ingester s3:DeleteObject " + fa,
			"ingester s3:PutObject " + ar, "ingester s3:PutObject " + fa, "ingester s3:PutObject " + in},
	}
	for role, w := range want {
		slices.Sort(w)
		g := got[role]
		slices.Sort(g)
		if !slices.Equal(g, w) {
			t.Errorf("the bucket policy gives the %s:\n  %s\nwant:\n  %s", role, strings.Join(g, "\n  "), strings.Join(w, "\n  "))
		}
		delete(got, role)
	}
	if len(got) > 0 {
		t.Errorf("the bucket policy gives rights to others: %v", got)
	}
}
