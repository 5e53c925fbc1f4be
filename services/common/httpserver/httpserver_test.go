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
	var ready error
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done, err := Serve(ctx, zerolog.Nop(), "127.0.0.1:0", Router(zerolog.Nop(), reg, func(context.Context) error { return ready }))
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
	ready = errors.New("database: connection refused")
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz %d %q while not ready; want 503 with the reason", code, body)
	}
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
