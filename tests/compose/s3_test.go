package compose

import (
	"encoding/json"
	"net/url"
	"os"
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
// both reach the S3 server with the account it was started with, the ingesters listen on
// the NATS subject the server publishes to, the bucket exists on the volume the server
// serves, and nothing but the bucket and PostgreSQL is shared: no data volume (they may
// run on different hosts).
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
	if envOf(initSvc)["S3_BUCKET"] != bucket || !strings.Contains(script, "mkdir -p "+root+"/${S3_BUCKET}") {
		t.Errorf("s3-init (S3_BUCKET=%q, %q) does not create bucket %q under %s", envOf(initSvc)["S3_BUCKET"], script, bucket, root)
	}
	natsStore := flagValue(natsSvc.Command, "--store_dir")
	for _, dir := range []string{root, "/nats"} {
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

	// The clients reach the server with its own account and region.
	for svc, env := range map[string]map[string]string{"generator-s3": gen, "ingester-s3": ing, "collector-s3": col} {
		u, err := url.Parse(env["AWS_ENDPOINT_URL"])
		if err != nil || u.Hostname() != "versitygw" || ":"+u.Port() != vgw["VGW_PORT"] || !slices.Contains([]string(vgwSvc.Expose), u.Port()) {
			t.Errorf("%s: AWS_ENDPOINT_URL=%q, but versitygw listens on %q (expose %v)", svc, env["AWS_ENDPOINT_URL"], vgw["VGW_PORT"], vgwSvc.Expose)
		}
		for client, server := range map[string]string{
			"AWS_ACCESS_KEY_ID": "ROOT_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "ROOT_SECRET_ACCESS_KEY", "AWS_REGION": "VGW_REGION",
		} {
			if env[client] == "" || env[client] != vgw[server] {
				t.Errorf("%s: %s=%q, versitygw %s=%q", svc, client, env[client], server, vgw[server])
			}
		}
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
