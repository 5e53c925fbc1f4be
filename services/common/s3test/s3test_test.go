package s3test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/objstore"
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

// The gateway keeps connections alive, as the S3 servers users run do: requests made one
// after another by the project's client (objstore) share one connection. Without it
// versitygw closes each after one request, and every GET, copy, delete and PUT dialled
// anew.
func TestGatewayKeepsConnectionsAlive(t *testing.T) {
	g := StartGateway(t, Options{}, "bkt")
	g.SetEnv(t)
	// A counting relay in front of the gateway: each connection the client opens is one
	// accept here.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			out, err := net.Dial("tcp", strings.TrimPrefix(g.Endpoint(), "http://"))
			if err != nil {
				in.Close()
				continue
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	c, err := objstore.New(objstore.Settings{Endpoint: "http://" + ln.Addr().String(), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 10
	for i := range n {
		key := fmt.Sprintf("in/%d.csv", i)
		if _, err := c.PutObject(ctx, "bkt", key, bytes.NewReader([]byte("x,y\n")), 4, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		body, _, _, err := minio.Core{Client: c}.GetObject(ctx, "bkt", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			t.Fatal(err)
		}
		body.Close()
		if _, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "bkt", Object: "archive/" + key},
			minio.CopySrcOptions{Bucket: "bkt", Object: key}); err != nil {
			t.Fatal(err)
		}
		if err := c.RemoveObject(ctx, "bkt", key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := accepted.Load(); got > 2 {
		t.Fatalf("%d requests made one after another opened %d connections, want 1 (the gateway closes them: no keep-alive)", 4*n, got)
	}
}

// A gateway given an event filter publishes only the events it lets through: with
// compose's (object-created events, not copies or removals), a PUT is announced and the
// copy and delete an ingester's archive makes are not.
func TestGatewayEventFilter(t *testing.T) {
	n := StartNATS(t)
	filter, err := filepath.Abs("../../../deploy/versitygw/event-filter.json")
	if err != nil {
		t.Fatal(err)
	}
	const subject = "s3test.events"
	// A plain NATS subscriber in the protocol's own words: each MSG is one event published.
	conn, err := net.Dial("tcp", strings.TrimPrefix(n.URL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := fmt.Fprintf(conn, "CONNECT {\"verbose\":false}\r\nSUB %s 1\r\nPING\r\n", subject); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "PONG") {
			break // subscribed
		}
	}
	g := StartGateway(t, Options{NATSURL: n.URL(), Subject: subject, EventFilter: filter}, "bkt")
	c := g.Client(t)
	ctx := context.Background()
	put := func(key string) {
		if _, err := c.PutObject(ctx, "bkt", key, bytes.NewReader([]byte("x,y\n")), 4, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("in/a.csv")
	if _, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "bkt", Object: "archive/a.csv"},
		minio.CopySrcOptions{Bucket: "bkt", Object: "in/a.csv"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveObject(ctx, "bkt", "in/a.csv", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	put("in/last.csv") // its event ends the count
	var events []string
	for len(events) == 0 || !strings.Contains(events[len(events)-1], "in/last.csv") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(line, "MSG ") {
			continue
		}
		payload, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(payload, "s3:TestEvent") {
			continue // the gateway's at its start
		}
		events = append(events, payload)
	}
	if len(events) != 2 || !strings.Contains(events[0], `"s3:ObjectCreated:Put"`) {
		t.Fatalf("%d events published, want the 2 PUTs only:\n%s", len(events), strings.Join(events, ""))
	}
}
