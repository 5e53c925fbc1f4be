// Package s3access gives each service of compose's s3 profile an account of its own on
// the versitygw gateway, and the bucket a policy that lets each account do only what its
// service needs (deploy/versitygw/bucket-policy.json): the generators put under the input
// prefix, the collector lists it, the ingesters list, read, copy aside and delete. The
// gateway's root keys stay with the gateway and the one-shot job that runs Apply, so a
// leaked service key can no longer delete every object.
//
// Apply is idempotent: every `docker compose up` runs it again. An account that exists
// gets the secret and role it is given now; the bucket is created once; the policy is
// replaced whole.
//
// Accounts are made through versitygw's admin API (served on the S3 port when the gateway
// has no --admin-port; only root or an admin account may call it), signed with SigV4 like
// `versitygw admin create-user`. The bucket and its policy go through the S3 API.
package s3access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/ecomstream/ecomstream/services/common/objstore"
)

// PolicyFile is the policy template compose mounts into the s3-access job, relative to
// the repository's root.
const PolicyFile = "deploy/versitygw/bucket-policy.json"

// Roles are the services that get an account, each with its keys in S3_<ROLE>_ACCESS_KEY
// and S3_<ROLE>_SECRET_KEY.
var Roles = []string{"generator", "ingester", "collector"}

// AccessVar and SecretVar name a role's key variables (S3_GENERATOR_ACCESS_KEY, ...).
func AccessVar(role string) string { return "S3_" + strings.ToUpper(role) + "_ACCESS_KEY" }
func SecretVar(role string) string { return "S3_" + strings.ToUpper(role) + "_SECRET_KEY" }

// BucketVar is the template's variable for the bucket's name.
const BucketVar = "S3_BUCKET"

// Account is one service's keys.
type Account struct {
	Role           string
	Access, Secret string
}

// Options of Apply.
type Options struct {
	Endpoint, Region       string // the gateway (its S3 and admin API) and its region
	RootAccess, RootSecret string // the gateway's root account
	Bucket                 string
	Accounts               []Account
	Policy                 []byte // the template (PolicyFile)
	HTTP                   *http.Client
}

// FromEnv reads the options the way compose's s3-access job is configured: the AWS SDKs'
// variables with the root keys, S3_BUCKET, and each role's S3_<ROLE>_ACCESS_KEY and
// S3_<ROLE>_SECRET_KEY. The template is read from policyFile.
func FromEnv(getenv func(string) string, policyFile string) (Options, error) {
	s := Options{Endpoint: getenv("AWS_ENDPOINT_URL"), Region: getenv("AWS_REGION"),
		RootAccess: getenv("AWS_ACCESS_KEY_ID"), RootSecret: getenv("AWS_SECRET_ACCESS_KEY"), Bucket: getenv(BucketVar)}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	var missing []string
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": s.Endpoint, "AWS_ACCESS_KEY_ID": s.RootAccess,
		"AWS_SECRET_ACCESS_KEY": s.RootSecret, BucketVar: s.Bucket} {
		if v == "" {
			missing = append(missing, k)
		}
	}
	for _, r := range Roles {
		a := Account{Role: r, Access: getenv(AccessVar(r)), Secret: getenv(SecretVar(r))}
		if a.Access == "" {
			missing = append(missing, AccessVar(r))
		}
		if a.Secret == "" {
			missing = append(missing, SecretVar(r))
		}
		s.Accounts = append(s.Accounts, a)
	}
	if len(missing) > 0 {
		return Options{}, fmt.Errorf("not set: %s", strings.Join(missing, ", "))
	}
	raw, err := os.ReadFile(policyFile)
	if err != nil {
		return Options{}, fmt.Errorf("the bucket policy template: %w", err)
	}
	s.Policy = raw
	return s, nil
}

// Render fills the template: ${S3_BUCKET} and each role's ${S3_<ROLE>_ACCESS_KEY}, as JSON
// string content. Any other variable is refused, so no secret can be written into a
// policy, and the result must be JSON.
func Render(tmpl []byte, bucket string, accounts []Account) ([]byte, error) {
	vars := map[string]string{BucketVar: bucket}
	for _, a := range accounts {
		vars[AccessVar(a.Role)] = a.Access
	}
	var unknown []string
	out := os.Expand(string(tmpl), func(name string) string {
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, name)
			return ""
		}
		q, _ := json.Marshal(v)
		return string(q[1 : len(q)-1])
	})
	if len(unknown) > 0 {
		return nil, fmt.Errorf("the policy template names %s; only %s and the accounts' access keys may be used", strings.Join(unknown, ", "), BucketVar)
	}
	if !json.Valid([]byte(out)) {
		return nil, errors.New("the policy template is not JSON once filled in")
	}
	return []byte(out), nil
}

// check refuses accounts that would collide: versitygw takes an account named like root
// for root itself, and two services sharing a key would share their rights. It refuses an
// access key that is not a plain name too: the key is the policy's principal, and
// versitygw reads a principal "*" as everyone, signed or anonymous (an ARN or a pattern
// is no account of its internal IAM either).
func (o Options) check() error {
	seen := map[string]string{o.RootAccess: "the root account"}
	for _, a := range o.Accounts {
		if a.Access == "" || a.Secret == "" {
			return fmt.Errorf("the %s account needs an access key and a secret", a.Role)
		}
		if !plainKey.MatchString(a.Access) {
			return fmt.Errorf("the %s account's access key %q: use letters, digits, '-', '_' and '.' only (up to 128)", a.Role, a.Access)
		}
		if who, ok := seen[a.Access]; ok {
			return fmt.Errorf("the %s account's access key is also %s's: give each its own", a.Role, who)
		}
		seen[a.Access] = "the " + a.Role + " account"
	}
	return nil
}

// plainKey is an access key that can be nothing but one account's name in a policy.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// Apply creates or updates the accounts, creates the bucket unless it exists (or makes an
// existing one private, owned by root: one made as a bare directory has no ACL, and
// versitygw then fails every copy a non-root account asks for) and puts the policy.
func Apply(ctx context.Context, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	policy, err := Render(o.Policy, o.Bucket, o.Accounts)
	if err != nil {
		return err
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	// The policy names the accounts, and the gateway refuses a policy naming one it does
	// not know: accounts first.
	for _, a := range o.Accounts {
		if err := o.account(ctx, a); err != nil {
			return err
		}
	}
	c, err := objstore.New(objstore.Settings{Endpoint: o.Endpoint, Region: o.Region,
		Creds: credentials.NewStaticV4(o.RootAccess, o.RootSecret, "")})
	if err != nil {
		return err
	}
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", o.Bucket, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, o.Bucket, minio.MakeBucketOptions{Region: o.Region}); err != nil {
			return fmt.Errorf("create bucket %s: %w", o.Bucket, err)
		}
	} else {
		// A bucket made as a bare directory (compose's s3-init did so before) has no ACL
		// and no owner: give it the private one, root its owner. minio-go has no call for
		// it: a signed PUT ?acl. A bucket the API made refuses ACLs (its objects' owner
		// is enforced) and has its owner already.
		code, err := o.send(ctx, http.MethodPut, "/"+o.Bucket, "acl", http.Header{"X-Amz-Acl": {"private"}}, nil)
		if err != nil && code != "AccessControlListNotSupported" {
			return fmt.Errorf("make bucket %s private: %w", o.Bucket, err)
		}
	}
	if err := c.SetBucketPolicy(ctx, o.Bucket, string(policy)); err != nil {
		return fmt.Errorf("put the policy of bucket %s: %w", o.Bucket, err)
	}
	return nil
}

// userXML is the admin API's account (versitygw's auth.Account; UserID and the others
// stay 0: the posix backend does not chown objects unless the gateway is told to).
type userXML struct {
	XMLName xml.Name `xml:"Account"`
	Access  string   `xml:"Access"`
	Secret  string   `xml:"Secret"`
	Role    string   `xml:"Role"`
}

// propsXML is the admin API's update (auth.MutableProps): the secret and the role.
type propsXML struct {
	XMLName xml.Name `xml:"MutableProps"`
	Secret  string   `xml:"Secret"`
	Role    string   `xml:"Role"`
}

// account creates a, or gives the existing account a's secret and the plain user role (no
// bucket creation, no admin API: what it may do is the policy's).
func (o Options) account(ctx context.Context, a Account) error {
	body, _ := xml.Marshal(userXML{Access: a.Access, Secret: a.Secret, Role: "user"})
	code, err := o.send(ctx, http.MethodPatch, "/create-user", "", nil, body)
	if err == nil {
		return nil
	}
	if code != "XAdminUserExists" {
		return fmt.Errorf("create the %s account: %w", a.Role, err)
	}
	body, _ = xml.Marshal(propsXML{Secret: a.Secret, Role: "user"})
	if _, err := o.send(ctx, http.MethodPatch, "/update-user", "access="+url.QueryEscape(a.Access), nil, body); err != nil {
		return fmt.Errorf("update the %s account: %w", a.Role, err)
	}
	return nil
}

// apiError is the gateway's XML error.
type apiError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// send makes one request signed with the root keys; an answer of 400 or above is an
// error, with the gateway's error code. Neither the keys nor the body are ever echoed.
func (o Options) send(ctx context.Context, method, path, query string, h http.Header, body []byte) (code string, err error) {
	u := strings.TrimSuffix(o.Endpoint, "/") + path
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req = signer.SignV4(*req, o.RootAccess, o.RootSecret, "", o.Region)
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 400 {
		return "", nil
	}
	var e apiError
	_ = xml.Unmarshal(raw, &e)
	if e.Code == "" {
		e.Code = resp.Status
	}
	return e.Code, fmt.Errorf("%s %s: %s: %s", method, path, e.Code, e.Message)
}
