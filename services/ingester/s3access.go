package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ecomstream/ecomstream/services/common/s3access"
)

// defaultPolicyFile is where compose mounts deploy/versitygw/bucket-policy.json.
const defaultPolicyFile = "/etc/ecomstream/bucket-policy.json"

// s3Access is `ingester s3-access`: compose's one-shot job of the s3 profile. With the
// gateway's root keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) it gives the generators,
// the ingesters and the collector accounts of their own (S3_<ROLE>_ACCESS_KEY,
// S3_<ROLE>_SECRET_KEY), creates the bucket S3_BUCKET if missing and puts the policy of
// --policy (services/common/s3access). Run again, it changes nothing but what changed.
func s3Access(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ingester s3-access", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policy := fs.String("policy", defaultPolicyFile, "the bucket policy template (deploy/versitygw/bucket-policy.json)")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ingester s3-access [--policy FILE]\n\n"+
			"Creates the generator, ingester and collector accounts on a versitygw gateway and puts the\n"+
			"bucket policy that gives each only its rights. Reads AWS_ENDPOINT_URL, AWS_REGION, the root\n"+
			"keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, S3_BUCKET, and S3_GENERATOR_ACCESS_KEY,\n"+
			"S3_GENERATOR_SECRET_KEY and the same for INGESTER and COLLECTOR.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	o, err := s3access.FromEnv(os.Getenv, *policy)
	if err != nil {
		fmt.Fprintln(stderr, "ingester s3-access:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := s3access.Apply(ctx, o); err != nil {
		fmt.Fprintln(stderr, "ingester s3-access:", err)
		return 1
	}
	for _, a := range o.Accounts {
		fmt.Fprintf(stdout, "account %s: %s\n", a.Role, a.Access)
	}
	fmt.Fprintf(stdout, "bucket %s: policy of %s set\n", o.Bucket, *policy)
	return 0
}
