// Package objstore is how ecomstream reaches an S3-compatible bucket: the s3://BUCKET/PREFIX
// form of a source or an output, and a client configured from the AWS SDKs' standard
// variables, so the same settings work with AWS S3 and with any S3-compatible server.
//
// Client: minio-go v7, not aws-sdk-go-v2. It is one module (the AWS SDK is a dozen), it
// speaks every call we need (ListObjectsV2 with pagination, GetObject with If-Match,
// CopyObject, RemoveObjects in batches, PutObject streaming with multipart), retries
// transient errors with backoff itself, and defaults to path-style addressing for custom
// endpoints, which S3-compatible servers need. It does not read AWS_ENDPOINT_URL or
// AWS_REGION by itself; FromEnv does.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ecomstream/ecomstream/services/common/event"
)

// Scheme is the prefix of a bucket location.
const Scheme = "s3://"

// Location is a bucket and a key prefix in it ("" or ending in "/").
type Location struct {
	Bucket, Prefix string
}

// String is the s3:// form.
func (l Location) String() string { return Scheme + l.Bucket + "/" + l.Prefix }

// URL is the s3:// form of one key of the bucket (the ledger's name of an object).
func (l Location) URL(key string) string { return Scheme + l.Bucket + "/" + key }

// IsURL tells whether s names a bucket location rather than a directory.
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// Parse reads s3://BUCKET[/PREFIX]. The prefix, if any, is made to end in "/", so a
// prefix names a folder of keys, never part of a key's name.
func Parse(s string) (Location, error) {
	if !IsURL(s) {
		return Location{}, fmt.Errorf("%q is not an s3://BUCKET/PREFIX location", s)
	}
	rest := strings.TrimPrefix(s, Scheme)
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return Location{}, fmt.Errorf("%q names no bucket", s)
	}
	// Bucket names: 3-63 characters of lower-case letters, digits, '.', '-' (S3's rule).
	if len(bucket) < 3 || len(bucket) > 63 || strings.Trim(bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return Location{}, fmt.Errorf("%q: bucket name %q is not valid (3-63 lower-case letters, digits, '.', '-')", s, bucket)
	}
	prefix = strings.TrimLeft(prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	// A prefix is folder names: no ".", ".." or empty one. S3 keeps such keys as they
	// are, but a gateway over a file system resolves them (versitygw stores a/../b.csv
	// as b.csv), so s3://bucket/../x would not name the keys it seems to.
	if prefix != "" {
		for _, part := range strings.Split(strings.TrimSuffix(prefix, "/"), "/") {
			if part == "" || part == "." || part == ".." {
				return Location{}, fmt.Errorf("%q: the prefix must be folder names, without '.', '..' or an empty one", s)
			}
		}
	}
	return Location{Bucket: bucket, Prefix: prefix}, nil
}

// Settings are the standard variables of the AWS SDKs that a client needs.
type Settings struct {
	Endpoint string // AWS_ENDPOINT_URL; empty: AWS S3
	Region   string // AWS_REGION (or AWS_DEFAULT_REGION)
	// Creds, when set, replaces the credential chain: tests and the one-shot s3-access
	// command hold several accounts' keys in one process, where one environment cannot.
	Creds *credentials.Credentials
}

// SettingsFromEnv reads AWS_ENDPOINT_URL, AWS_REGION and AWS_DEFAULT_REGION. The keys
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) are read by the client's
// credential chain, never copied into a struct that could be logged.
func SettingsFromEnv() Settings {
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	return Settings{Endpoint: os.Getenv("AWS_ENDPOINT_URL"), Region: region}
}

// New returns a client for s. Credentials come from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY), then the shared credentials file, then the instance's or pod's
// IAM role; a custom endpoint is addressed path-style.
func New(s Settings) (*minio.Client, error) {
	host, secure, custom := "s3.amazonaws.com", true, false
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, errors.New("AWS_ENDPOINT_URL must be http://HOST[:PORT] or https://HOST[:PORT]")
		}
		if u.User != nil {
			// Keys in the URL are not used (minio-go takes them from the credential
			// chain only): refuse them rather than drop them, and never echo them.
			return nil, errors.New("AWS_ENDPOINT_URL must not carry credentials (user:password@); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		if u.Path != "" && u.Path != "/" {
			return nil, errors.New("AWS_ENDPOINT_URL must not have a path (the bucket is named by the s3:// location)")
		}
		host, secure, custom = u.Host, u.Scheme == "https", true
	}
	creds := s.Creds
	if creds == nil {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	opts := &minio.Options{
		Creds:  creds,
		Secure: secure,
		Region: s.Region,
	}
	if custom {
		opts.BucketLookup = minio.BucketLookupPath
	}
	base, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	opts.Transport = conditionalDelete{base}
	c, err := minio.New(host, opts)
	if err != nil {
		// minio's errors name the endpoint, never the keys.
		return nil, fmt.Errorf("S3 client for %s: %w", host, err)
	}
	return c, nil
}

type ifMatchKey struct{}

// DeleteIfMatch makes a DeleteObject sent with the returned context conditional on the
// object still having etag (S3's conditional delete: 412 Precondition Failed otherwise),
// so a finished object is removed only while its key holds the version that was read,
// never a newer one written over it a moment before. minio-go has no option for it; the
// client's transport adds the header (If-Match is not an x-amz- header: SigV4 lets it
// travel unsigned).
func DeleteIfMatch(ctx context.Context, etag string) context.Context {
	return context.WithValue(ctx, ifMatchKey{}, etag)
}

type conditionalDelete struct{ base http.RoundTripper }

func (c conditionalDelete) RoundTrip(r *http.Request) (*http.Response, error) {
	if etag, ok := r.Context().Value(ifMatchKey{}).(string); ok && etag != "" && r.Method == http.MethodDelete {
		r = r.Clone(r.Context())
		r.Header.Set("If-Match", `"`+strings.Trim(etag, `"`)+`"`)
	}
	return c.base.RoundTrip(r)
}

// Takes tells whether key is an input object of a source on l whose archive and failed
// prefixes are archive and failed (keys of the bucket, not of l's prefix: with the
// defaults, a folder named archive/ under the input prefix is input): under l's prefix,
// under neither of the others, named as the CSV contract says. One rule for the
// ingesters' listing and for what the collector and `ingester status` count as backlog.
func (l Location) Takes(archive, failed, key string) bool {
	return strings.HasPrefix(key, l.Prefix) && !strings.HasPrefix(key, archive) && !strings.HasPrefix(key, failed) &&
		event.IsInputFileName(path.Base(key))
}
