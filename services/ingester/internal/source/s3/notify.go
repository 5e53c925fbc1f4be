package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// hint is what a notification says: a key was created (with its ETag and size when the
// record carries them) or removed.
type hint struct {
	key     string
	removed bool
	etag    string
	size    int64
	at      time.Time // the event's time
}

// record is the part of an S3 event notification record (AWS's format, which versitygw
// publishes as well) that says where to look.
type record struct {
	EventName string `json:"eventName"`
	EventTime string `json:"eventTime"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key  string  `json:"key"`
			Size int64   `json:"size"`
			ETag *string `json:"eTag"`
		} `json:"object"`
	} `json:"s3"`
}

// hintBuffer bounds the keys waiting to be looked at; beyond it notifications are
// dropped, which costs latency only (the listing finds those objects).
const hintBuffer = 4096

// subscribe follows the bucket's notifications: each object created or removed under the
// prefix becomes a key to look at. A plain NATS subscription, not a JetStream consumer:
// the gateway publishes without JetStream's acknowledgement, so a stream would add no
// delivery guarantee where the event is born, and none is needed here (a notification
// only says "look"; the listing is the backstop). A JetStream stream that captures the
// subject does not hide it from subscribers, so both setups work. The client connects in
// the background and reconnects forever, so NATS being down at start or later delays
// objects by at most one listing interval and stops nothing.
func (s *Source) subscribe(ctx context.Context) (<-chan hint, func(), error) {
	hints := make(chan hint, hintBuffer)
	nc, err := nats.Connect(s.o.NATSURL,
		nats.Name("ecomstream-ingester"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.m.errors.WithLabelValues(opNotify).Inc()
				s.log.Warn().Err(err).Msg("notifications: disconnected from NATS; listing every interval meanwhile")
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { s.log.Info().Msg("notifications: reconnected to NATS") }),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("notifications from %s: %w", redact(s.o.NATSURL), withoutURL(err))
	}
	sub, err := nc.Subscribe(s.o.NATSSubject, func(m *nats.Msg) {
		now := s.o.Now()
		var ev struct{ Records []record }
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return // not an event record (the gateway's s3:TestEvent at its start, say)
		}
		for _, r := range ev.Records {
			key, ok := s.notified(r)
			if !ok {
				continue
			}
			h := hint{key: key, removed: strings.Contains(r.EventName, "ObjectRemoved:"), at: now}
			if t, err := time.Parse(time.RFC3339Nano, r.EventTime); err == nil {
				s.m.lag.Observe(max(0, now.Sub(t).Seconds()))
				h.at = t
			}
			if r.S3.Object.ETag != nil {
				h.etag, h.size = strings.Trim(*r.S3.Object.ETag, `"`), r.S3.Object.Size
			}
			select {
			case hints <- h:
			case <-ctx.Done():
				return
			default: // full: the listing will find it
			}
		}
	})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("notifications from %s: subscribe %s: %w", redact(s.o.NATSURL), s.o.NATSSubject, err)
	}
	// Best effort: the subscription is on the server before the first listing, unless
	// NATS is down (then the client subscribes when it connects).
	_ = nc.FlushTimeout(2 * time.Second)
	return hints, func() { _ = sub.Unsubscribe(); nc.Close() }, nil
}

// notified returns the key a record is about, if it is an input object of this source.
func (s *Source) notified(r record) (string, bool) {
	if !strings.HasPrefix(r.EventName, "s3:ObjectCreated:") && !strings.HasPrefix(r.EventName, "s3:ObjectRemoved:") &&
		!strings.HasPrefix(r.EventName, "ObjectCreated:") && !strings.HasPrefix(r.EventName, "ObjectRemoved:") {
		return "", false
	}
	if r.S3.Bucket.Name != s.o.Location.Bucket {
		return "", false
	}
	key := r.S3.Object.Key
	// AWS sends keys URL-encoded (a space as '+'); versitygw sends them as they are.
	// Both forms are tried against the naming rule; a wrong guess is a HEAD that finds
	// nothing, and the listing has the right key anyway.
	if !s.accept(key) {
		if k, err := url.QueryUnescape(key); err == nil && s.accept(k) {
			return k, true
		}
		return "", false
	}
	return key, true
}

// withoutURL drops the URL that net/url's parse errors quote whole, password included
// (the NATS client returns them as they are), keeping what is wrong with it.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact drops a password from a NATS URL before it is logged or returned.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the NATS URL"
	}
	return p.Redacted()
}
