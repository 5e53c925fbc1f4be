package objstore

import (
	"strings"
	"testing"
)

func TestParseMakesThePrefixAFolder(t *testing.T) {
	cases := map[string]Location{
		"s3://events":                {Bucket: "events"},
		"s3://events/":               {Bucket: "events"},
		"s3://events/incoming":       {Bucket: "events", Prefix: "incoming/"},
		"s3://events/a/b/":           {Bucket: "events", Prefix: "a/b/"},
		"s3://my.bucket-1//incoming": {Bucket: "my.bucket-1", Prefix: "incoming/"},
	}
	for in, want := range cases {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if got := (Location{Bucket: "b", Prefix: "in/"}).URL("in/x.csv"); got != "s3://b/in/x.csv" {
		t.Errorf("URL = %q", got)
	}
}

func TestParseRefusesWhatIsNotABucketLocation(t *testing.T) {
	for _, in := range []string{"/data/incoming", "s3://", "s3:///prefix", "s3://UPPER/x", "s3://ab", "s3://a_b/x", "http://bucket/x",
		"s3://bucket/../x", "s3://bucket/a/./b", "s3://bucket/a//b", "s3://bucket/a/..", "s3://bucket/.."} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestNewRefusesAnEndpointItCannotAddressAndNeverEchoesKeys(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
	for _, ep := range []string{"localhost:9000", "ftp://host", "http://host/bucket", "http://", "http://user:s3cr3t@host:7070", "https://s3cr3t@host"} {
		_, err := New(Settings{Endpoint: ep})
		if err == nil {
			t.Errorf("endpoint %q accepted", ep)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	c, err := New(Settings{Endpoint: "http://127.0.0.1:7070", Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.EndpointURL().Host != "127.0.0.1:7070" || c.EndpointURL().Scheme != "http" {
		t.Errorf("endpoint %v", c.EndpointURL())
	}
}

func TestSettingsFromEnvFallsBackToTheDefaultRegion(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "eu-west-1")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:7070")
	if s := SettingsFromEnv(); s.Region != "eu-west-1" || s.Endpoint != "http://127.0.0.1:7070" {
		t.Errorf("%+v", s)
	}
}
