// Package httpserver builds the one HTTP server every service runs: /healthz (alive),
// /readyz (dependencies reachable) and /metrics, on a chi router with request ids,
// panic recovery and structured access logs.
package httpserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// ReadyFunc reports whether the service's dependencies are reachable. Wrap the error
// of each dependency with Down so /readyz can name it.
type ReadyFunc func(ctx context.Context) error

// AliveFunc reports whether the process still does its work (not merely answers HTTP);
// its message is the service's own words, shown by /healthz.
type AliveFunc func() error

// DownError names the dependency that is down. /readyz answers with the name only: the
// error itself (a database error names the user, host and database) goes to the log,
// never to an anonymous caller.
type DownError struct {
	Dependency string
	Err        error
}

func (e *DownError) Error() string { return e.Dependency + ": " + e.Err.Error() }
func (e *DownError) Unwrap() error { return e.Err }

// Down returns err as the failure of the named dependency.
func Down(dependency string, err error) error { return &DownError{Dependency: dependency, Err: err} }

// Router returns the chi router with the three standard endpoints; services may mount
// more routes on it.
func Router(log zerolog.Logger, reg *prometheus.Registry, ready ReadyFunc) chi.Router {
	return RouterWithAlive(log, reg, nil, ready)
}

// RouterWithAlive is Router with a liveness check: /healthz answers 503 with alive's
// message while it fails.
func RouterWithAlive(log zerolog.Logger, reg *prometheus.Registry, alive AliveFunc, ready ReadyFunc) chi.Router {
	r := chi.NewRouter()
	// No RealIP: it would log whatever a caller puts in X-Forwarded-For as its address.
	r.Use(middleware.RequestID, accessLog(log), middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if alive != nil {
			if err := alive(); err != nil {
				log.Warn().Err(err).Msg("not healthy")
				http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	r.Get("/readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		if ready != nil {
			if err := ready(ctx); err != nil {
				log.Warn().Err(err).Msg("not ready")
				msg := "not ready"
				var down *DownError
				if errors.As(err, &down) {
					msg += ": " + down.Dependency + " is down"
				}
				http.Error(w, msg, http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	return r
}

// accessLog logs each request at debug level: scrapes every few seconds would drown
// the info log.
func accessLog(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			start := time.Now()
			next.ServeHTTP(ww, r)
			log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", ww.Status()).
				Dur("duration", time.Since(start)).Str("request_id", middleware.GetReqID(r.Context())).Msg("http request")
		})
	}
}

// Serve listens on addr and serves h until ctx ends, then shuts down gracefully. The
// listener is bound before Serve returns its address so callers (and tests) can use
// port 0.
func Serve(ctx context.Context, log zerolog.Logger, addr string, h http.Handler) (net.Addr, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("http server listening")
	return ln.Addr(), done, nil
}

// Healthcheck asks a running service's /healthz and returns nil when it answers 200.
// The binaries expose it as a `healthcheck` subcommand so distroless images need no
// shell or curl for their Docker healthcheck.
func Healthcheck(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("healthz answered " + resp.Status)
	}
	return nil
}
