package httpserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "ecomstream_test_things_total", Help: "t"})
	reg.MustRegister(c)
	c.Inc()
	var ready, alive error
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, err := Serve(ctx, zerolog.Nop(), "127.0.0.1:0", RouterWithAlive(zerolog.Nop(), reg,
		func() error { return alive }, func(context.Context) error { return ready }))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz %d while ready", code)
	}
	// The dependency is named; its error text (user, host, database) is not shown.
	ready = Down("database", errors.New(`failed to connect to user=ecomstream database=ecomstream host=db: password authentication failed`))
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "database is down") ||
		strings.Contains(body, "user=") || strings.Contains(body, "host=") || strings.Contains(body, "password") {
		t.Errorf("/readyz %d %q while not ready; want 503 naming the database and nothing of its error", code, body)
	}
	ready = errors.New("something with a secret inside")
	if code, body := get("/readyz"); code != 503 || strings.Contains(body, "secret") {
		t.Errorf("/readyz %d %q for an unnamed failure", code, body)
	}
	ready = nil
	alive = errors.New("worker 1 has made no progress on its claim for 6m0s")
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "no progress") {
		t.Errorf("/healthz %d %q while a worker is stuck; want 503 with why", code, body)
	}
	alive = nil
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "ecomstream_test_things_total 1") {
		t.Errorf("/metrics %d %q", code, body)
	}
	if err := Healthcheck(addr.String()); err != nil {
		t.Errorf("healthcheck of a live server: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := Healthcheck(addr.String()); err == nil {
		t.Error("healthcheck of a stopped server succeeded")
	}
}
