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
// prefix becomes a key to look at. With a stream named (NATSStream), through a JetStream
// durable consumer shared by every ingester of the bucket (jetstream.go), so that
// notifications published while no ingester runs wait in the stream; without one, or
// where the server has no JetStream, through a plain subscription. The client connects
// in the background and reconnects forever, so NATS being down at start or later delays
// objects by at most one listing interval and stops nothing.
func (s *Source) subscribe(ctx context.Context) (<-chan hint, func(), error) {
	if s.o.NATSStream != "" && s.o.NATSConsumer == "" {
		return nil, nil, errors.New("notifications: a consumer name is required with a JetStream stream")
	}
	hints := make(chan hint, hintBuffer)
	reconnected := make(chan struct{}, 1)
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
		nats.ReconnectHandler(func(*nats.Conn) {
			s.log.Info().Msg("notifications: reconnected to NATS")
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("notifications from %s: %w", redact(s.o.NATSURL), withoutURL(err))
	}
	ctx, cancel := context.WithCancel(ctx)
	if s.o.NATSStream != "" {
		// The stream hands each notification to one ingester: right for a creation (one
		// look is enough), wrong for a removal, which every replica's queue must hear.
		// The replicas list the same objects, and one that never hears another's archive
		// of an object still holds it: it claims it once that replica lets go, finds it
		// in the ledger and GETs it to compare its bytes, only to find it gone (three
		// replicas draining one bucket: 30-80 GETs answered 404 per 120 objects). So
		// removals come through a plain subscription too, to every replica; a removal
		// also delivered by the stream is dropped from the queue twice, which is nothing.
		rm, err := s.subscribeCore(ctx, nc, hints, true)
		if err != nil {
			s.log.Warn().Err(err).Msg("notifications: no subscription to removals; another replica's archives are found by the listing")
		}
		done := s.follow(ctx, nc, hints, reconnected)
		return hints, func() {
			cancel()
			<-done
			if rm != nil {
				_ = rm.Unsubscribe()
			}
			nc.Close()
		}, nil
	}
	sub, err := s.subscribeCore(ctx, nc, hints, false)
	if err != nil {
		cancel()
		nc.Close()
		return nil, nil, err
	}
	return hints, func() { cancel(); _ = sub.Unsubscribe(); nc.Close() }, nil
}

// subscribeCore is a plain NATS subscription: it receives what is published while it is
// subscribed, nothing from before. The gateway publishes without JetStream's
// acknowledgement either way; a stream that captures the subject does not hide it from
// plain subscribers. With removals, it hands out only the removals.
func (s *Source) subscribeCore(ctx context.Context, nc *nats.Conn, hints chan<- hint, removals bool) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(s.o.NATSSubject, func(m *nats.Msg) { s.notice(ctx, m.Data, hints, removals) })
	if err != nil {
		return nil, fmt.Errorf("notifications from %s: subscribe %s: %w", redact(s.o.NATSURL), s.o.NATSSubject, err)
	}
	// Best effort: the subscription is on the server before the first listing, unless
	// NATS is down (then the client subscribes when it connects).
	_ = nc.FlushTimeout(2 * time.Second)
	return sub, nil
}

// notice turns one notification into hints (only its removals, with removals), and
// tells whether all of them fit in the queue. A hint that does not is dropped: the
// listing finds that object (and a stream delivers the message again).
func (s *Source) notice(ctx context.Context, data []byte, hints chan<- hint, removals bool) (fit bool) {
	now := s.o.Now()
	var ev struct{ Records []record }
	if err := json.Unmarshal(data, &ev); err != nil {
		return true // not an event record (the gateway's s3:TestEvent at its start, say)
	}
	fit = true
	for _, r := range ev.Records {
		keys := s.notified(r)
		if len(keys) == 0 {
			continue
		}
		h := hint{removed: strings.Contains(r.EventName, "ObjectRemoved:"), at: now}
		if removals && !h.removed {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, r.EventTime); err == nil {
			if !removals { // measured once, where the stream delivers it
				s.m.lag.Observe(max(0, now.Sub(t).Seconds()))
			}
			h.at = t
		}
		if r.S3.Object.ETag != nil {
			h.etag, h.size = strings.Trim(*r.S3.Object.ETag, `"`), r.S3.Object.Size
		}
		for _, key := range keys {
			h.key = key
			select {
			case hints <- h:
			case <-ctx.Done():
				return false
			default: // full: the listing will find it
				fit = false
			}
		}
	}
	return fit
}

// notified returns the keys a record may be about, if it is about input objects of this
// source. AWS and MinIO send keys URL-encoded (a space as '+'); versitygw sends them as
// they are; the record does not say which. A key that passes the naming rule either way
// ("a+b.csv" is a name as good as "a b.csv") is a creation hinted in both forms: the
// wrong one is a HEAD or a GET that finds nothing (the source's ErrGone: no error
// counted, nothing rejected), where guessing wrong alone would leave the object to the
// listing. A removal takes the raw form only when it passes, the decoded one otherwise:
// dropping the wrong key from the queue would only delay that object to the listing.
func (s *Source) notified(r record) []string {
	created := strings.HasPrefix(r.EventName, "s3:ObjectCreated:") || strings.HasPrefix(r.EventName, "ObjectCreated:")
	if !created && !strings.HasPrefix(r.EventName, "s3:ObjectRemoved:") && !strings.HasPrefix(r.EventName, "ObjectRemoved:") {
		return nil
	}
	if r.S3.Bucket.Name != s.o.Location.Bucket {
		return nil
	}
	var keys []string
	raw := r.S3.Object.Key
	if s.accept(raw) {
		keys = append(keys, raw)
	}
	if k, err := url.QueryUnescape(raw); err == nil && k != raw && s.accept(k) && (created || len(keys) == 0) {
		keys = append(keys, k)
	}
	return keys
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
