package s3access_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/s3access"
	"github.com/ecomstream/ecomstream/services/common/s3test"
)

const bucket = "ecomstream"

// op is one S3 request an account may or may not make.
type op struct {
	name string
	do   func(ctx context.Context, c *minio.Client) error
}

func put(key string) op {
	return op{"put " + key, func(ctx context.Context, c *minio.Client) error {
		_, err := c.PutObject(ctx, bucket, key, strings.NewReader("x\n"), 2, minio.PutObjectOptions{})
		return err
	}}
}

func get(key string) op {
	return op{"get " + key, func(ctx context.Context, c *minio.Client) error {
		o, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer o.Close()
		_, err = o.Stat()
		return err
	}}
}

func head(key string) op {
	return op{"head " + key, func(ctx context.Context, c *minio.Client) error {
		_, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		return err
	}}
}

func del(key string) op {
	return op{"delete " + key, func(ctx context.Context, c *minio.Client) error {
		return c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
	}}
}

func list(prefix string) op {
	return op{"list " + prefix + "*", func(ctx context.Context, c *minio.Client) error {
		for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				return o.Err
			}
		}
		return nil
	}}
}

func cp(src, dst string) op {
	return op{"copy " + src + " to " + dst, func(ctx context.Context, c *minio.Client) error {
		_, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: dst}, minio.CopySrcOptions{Bucket: bucket, Object: src})
		return err
	}}
}

var headBucket = op{"head the bucket", func(ctx context.Context, c *minio.Client) error {
	ok, err := c.BucketExists(ctx, bucket)
	if err == nil && !ok {
		return minio.ErrorResponse{Code: "NoSuchBucket"}
	}
	return err
}}

// seeds are the objects every check finds in place (put again before each, as root).
var seeds = []string{"incoming/seed.csv", "archive/seed.csv", "failed/seed.csv", "failed/seed.csv.reason.txt", "other/seed.csv", "seed.csv"}

// rights: what each service's account must be able to do (its service's requests, on
// the prefixes compose configures) and what it must not.
var rights = map[string]struct{ can, cannot []op }{
	"generator": {
		can: []op{put("incoming/g.csv"), put("incoming/sub/g.csv.gz")},
		cannot: []op{put("archive/g.csv"), put("failed/g.csv"), put("other/g.csv"), put("g.csv"),
			del("incoming/seed.csv"), get("incoming/seed.csv"), head("incoming/seed.csv"),
			list("incoming/"), list(""), headBucket, cp("incoming/seed.csv", "incoming/copy.csv")},
	},
	"collector": {
		can: []op{list("incoming/")},
		cannot: []op{list(""), list("archive/"), list("failed/"), get("incoming/seed.csv"), head("incoming/seed.csv"),
			put("incoming/c.csv"), del("incoming/seed.csv"), cp("incoming/seed.csv", "archive/seed.x.csv")},
	},
	"ingester": {
		// The source: list, notifications' HEAD, GET, archive and fail (copy, reason),
		// delete; /readyz's HEAD of the bucket; `ingester status|failed|retry`: list the
		// failed and archive prefixes, read failed objects, put one back, delete it.
		can: []op{headBucket, list(""), list("incoming/"), list("failed/"), list("archive/"),
			head("incoming/seed.csv"), get("incoming/seed.csv"), cp("incoming/seed.csv", "archive/seed.x.csv"),
			cp("incoming/seed.csv", "failed/seed.x.csv"), put("failed/seed.x.csv.reason.txt"),
			get("failed/seed.csv"), get("failed/seed.csv.reason.txt"), put("incoming/seed.retry1.csv"),
			del("failed/seed.csv.reason.txt"), del("failed/seed.csv"), del("incoming/seed.csv")},
		cannot: []op{get("archive/seed.csv"), del("archive/seed.csv"), get("other/seed.csv"), del("other/seed.csv"),
			put("other/i.csv"), put("i.csv"), del("seed.csv"), cp("incoming/seed.csv", "other/seed.csv"),
			cp("archive/seed.csv", "incoming/back.csv")},
	},
}

func denied(err error) bool { return minio.ToErrorResponse(err).Code == "AccessDenied" }

// TestEachServiceAccountCanDoItsWorkAndNothingElse: on a gateway set up as compose's
// s3-access job sets it up (the same code, the same policy file), each service's account
// makes every request its service makes, and each request it must not make is refused
// with AccessDenied. Each refusal is then made with the root keys, which the services had
// before, and succeeds: the assertion would fail if the service were given them.
func TestEachServiceAccountCanDoItsWorkAndNothingElse(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	g.Restrict(t, bucket) // creates the bucket, as compose's job does
	ctx := context.Background()
	root := g.ClientAs(t, s3test.Root)
	seed := func() {
		t.Helper()
		for _, k := range seeds {
			if err := put(k).do(ctx, root); err != nil {
				t.Fatalf("seed %s: %v", k, err)
			}
		}
	}
	for _, role := range s3access.Roles {
		c := g.ClientAs(t, s3test.Accounts[role])
		r := rights[role]
		for _, o := range r.can {
			seed()
			if err := o.do(ctx, c); err != nil {
				t.Errorf("%s cannot %s: %v", role, o.name, err)
			}
		}
		for _, o := range r.cannot {
			seed()
			if err := o.do(ctx, c); !denied(err) {
				t.Errorf("%s may %s (err %v), want AccessDenied", role, o.name, err)
			}
			seed()
			if err := o.do(ctx, root); err != nil {
				t.Errorf("with the root keys, %s fails (%v): the refusal above would not tell the accounts apart", o.name, err)
			}
		}
	}
}

// TestApplyIsIdempotentAndTakesNewSecrets: the job runs at every `compose up`; a second run
// changes nothing, a secret changed in .env replaces the old one, and the accounts outlive
// a restart of the gateway (they are in its IAM directory).
func TestApplyIsIdempotentAndTakesNewSecrets(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	g.Restrict(t, bucket)
	ctx := context.Background()
	if err := put("incoming/a.csv").do(ctx, g.ClientAs(t, s3test.Accounts["generator"])); err != nil {
		t.Fatal(err)
	}
	g.Restrict(t, bucket) // again: accounts exist, the bucket exists, the policy is replaced
	if err := list("incoming/").do(ctx, g.ClientAs(t, s3test.Accounts["collector"])); err != nil {
		t.Fatalf("after a second run: %v", err)
	}

	tmpl, err := os.ReadFile(filepath.Join(maintest.RepoRoot(t), s3access.PolicyFile))
	if err != nil {
		t.Fatal(err)
	}
	o := s3access.Options{Endpoint: g.Endpoint(), Region: "us-east-1", RootAccess: s3test.AccessKey, RootSecret: s3test.SecretKey,
		Bucket: bucket, Policy: tmpl}
	gen := s3test.Accounts["generator"]
	newGen := gen
	newGen.Secret = "rotated-secret"
	o.Accounts = []s3access.Account{newGen, s3test.Accounts["ingester"], s3test.Accounts["collector"]}
	if err := s3access.Apply(ctx, o); err != nil {
		t.Fatal(err)
	}
	// versitygw caches accounts for up to --iam-cache-ttl (120 s) and may serve the old
	// secret that long (versity/versitygw#2325); a restart reads the IAM directory afresh,
	// which also shows the accounts live there, not only in the gateway's memory.
	g.Kill()
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	if err := put("incoming/b.csv").do(ctx, g.ClientAs(t, newGen)); err != nil {
		t.Errorf("the new secret: %v", err)
	}
	if err := put("incoming/c.csv").do(ctx, g.ClientAs(t, gen)); err == nil {
		t.Error("the old secret still works")
	}
}

// A bucket made as a bare directory (what compose's s3-init did before) has no ACL, and
// versitygw then fails every copy a non-root account asks for; Apply makes it private.
func TestApplyRepairsABucketMadeAsADirectory(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	if err := os.Mkdir(filepath.Join(g.Root, bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	g.Restrict(t, bucket)
	ctx := context.Background()
	if err := put("incoming/a.csv").do(ctx, g.ClientAs(t, s3test.Accounts["generator"])); err != nil {
		t.Fatal(err)
	}
	if err := cp("incoming/a.csv", "archive/a.x.csv").do(ctx, g.ClientAs(t, s3test.Accounts["ingester"])); err != nil {
		t.Fatalf("the ingester's archive copy: %v", err)
	}
}

func TestApplyRefusesCollidingKeys(t *testing.T) {
	base := s3access.Options{Endpoint: "http://127.0.0.1:1", RootAccess: "root", RootSecret: "s", Bucket: bucket, Policy: []byte(`{}`)}
	for name, accs := range map[string][]s3access.Account{
		"root's key": {{Role: "generator", Access: "root", Secret: "x"}},
		"shared key": {{Role: "generator", Access: "k", Secret: "x"}, {Role: "collector", Access: "k", Secret: "y"}},
		"no secret":  {{Role: "generator", Access: "k"}},
	} {
		o := base
		o.Accounts = accs
		if err := s3access.Apply(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRenderEscapesAndRefusesOtherVariables(t *testing.T) {
	accs := []s3access.Account{{Role: "generator", Access: `a"b`, Secret: "s"}}
	out, err := s3access.Render([]byte(`{"p": "${S3_GENERATOR_ACCESS_KEY}", "b": "${S3_BUCKET}"}`), "bk", accs)
	if err != nil || string(out) != `{"p": "a\"b", "b": "bk"}` {
		t.Errorf("Render = %s, %v", out, err)
	}
	if _, err := s3access.Render([]byte(`{"p": "${S3_GENERATOR_SECRET_KEY}"}`), "bk", accs); err == nil {
		t.Error("a secret's variable was expanded")
	}
	if _, err := s3access.Render([]byte(`{"p": ${S3_BUCKET}}`), "bk", accs); err == nil {
		t.Error("a template that is not JSON once filled in was accepted")
	}
}

// An access key is a principal of the policy, and versitygw's principal "*" is everyone,
// signed or anonymous: S3_INGESTER_ACCESS_KEY=* in .env would give the whole network,
// without a key, the ingester's rights (read and delete the input). Apply refuses a key
// that is not a plain name, before the gateway is touched.
func TestApplyRefusesAWildcardAccessKey(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	g.Restrict(t, bucket)
	ctx := context.Background()
	root := g.ClientAs(t, s3test.Root)
	if err := put("incoming/a.csv").do(ctx, root); err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join(maintest.RepoRoot(t), s3access.PolicyFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a*", "arn:aws:iam::*:root", "a b", "*"} {
		ing := s3test.Accounts["ingester"]
		ing.Access = key
		o := s3access.Options{Endpoint: g.Endpoint(), Region: "us-east-1", RootAccess: s3test.AccessKey, RootSecret: s3test.SecretKey,
			Bucket: bucket, Policy: tmpl, Accounts: []s3access.Account{s3test.Accounts["generator"], ing, s3test.Accounts["collector"]}}
		if err := s3access.Apply(ctx, o); err == nil {
			t.Errorf("access key %q accepted", key)
		}
	}
	// Whatever was accepted, no one without a key may read the input.
	resp, err := http.Get(g.Endpoint() + "/" + bucket + "/incoming/a.csv")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an anonymous GET of the input: %s, want 403", resp.Status)
	}
}

// An access key renamed in .env leaves the old account behind (s3-access deletes no
// account it did not make this time) but without any right on the bucket: the policy,
// replaced whole, names the new key only.
func TestApplyWithARenamedKeyLeavesTheOldAccountNoRight(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	g.Restrict(t, bucket)
	tmpl, err := os.ReadFile(filepath.Join(maintest.RepoRoot(t), s3access.PolicyFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old, renamed := s3test.Accounts["ingester"], s3test.Accounts["ingester"]
	renamed.Access = "test-ingester-2"
	o := s3access.Options{Endpoint: g.Endpoint(), Region: "us-east-1", RootAccess: s3test.AccessKey, RootSecret: s3test.SecretKey,
		Bucket: bucket, Policy: tmpl, Accounts: []s3access.Account{s3test.Accounts["generator"], renamed, s3test.Accounts["collector"]}}
	if err := s3access.Apply(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := put("incoming/a.csv").do(ctx, g.ClientAs(t, s3test.Root)); err != nil {
		t.Fatal(err)
	}
	for _, op := range []op{list(""), get("incoming/a.csv"), put("archive/a.csv"), del("incoming/a.csv")} {
		if err := op.do(ctx, g.ClientAs(t, old)); !denied(err) {
			t.Errorf("the old key may %s (err %v), want AccessDenied", op.name, err)
		}
		if err := op.do(ctx, g.ClientAs(t, renamed)); err != nil {
			t.Errorf("the new key cannot %s: %v", op.name, err)
		}
	}
}
