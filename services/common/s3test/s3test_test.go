package s3test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestGatewayKeepsObjectsAcrossAKill(t *testing.T) {
	g := StartGateway(t, Options{}, "bkt")
	c := g.Client(t)
	ctx := context.Background()
	info, err := c.PutObject(ctx, "bkt", "a/b.csv", bytes.NewReader([]byte("x,y\n")), 4, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.ETag == "" {
		t.Fatal("no ETag")
	}
	g.Kill()
	if _, err := c.StatObject(ctx, "bkt", "a/b.csv", minio.StatObjectOptions{}); err == nil {
		t.Fatal("a killed gateway answered")
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	o, err := c.GetObject(ctx, "bkt", "a/b.csv", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(o)
	if err != nil || string(b) != "x,y\n" {
		t.Fatalf("after restart: %q, %v", b, err)
	}
	st, _ := o.Stat()
	if st.ETag != info.ETag {
		t.Fatalf("ETag changed across a restart: %s then %s", info.ETag, st.ETag)
	}
}

func TestNATSRestartsOnItsPort(t *testing.T) {
	n := StartNATS(t)
	u := n.URL()
	n.Kill()
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if n.URL() != u {
		t.Fatal("port changed")
	}
}
