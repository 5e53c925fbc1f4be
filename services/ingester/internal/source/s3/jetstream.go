package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Notifications through JetStream. The gateway publishes plainly (no JetStream
// acknowledgement), but a stream whose subjects include the subject stores what it
// publishes, whether or not an ingester is running; a durable consumer that every
// ingester of the bucket shares remembers where they all are. So notifications published
// while no ingester runs (a deploy, a crash loop, a scale to zero) are delivered when one
// starts instead of costing a listing interval, and each is handed to one ingester
// rather than to all of them (removals, which every replica's queue needs, reach each
// one through a plain subscription as well: notify.go).
//
// The stream. Limits retention rather than WorkQueue: a work queue allows one consumer
// per subject, so a second deployment reading another prefix of the same bucket (its own
// consumer name) or an operator's tap would be refused; under Limits each consumer keeps
// its own position and the stream is bounded by age, count and bytes, old messages
// discarded first, so a flood of PUTs can never fill NATS's disk. A stream that already
// exists is used as it is (an operator may have tuned it, replicated it, or made it
// capture a wildcard); it is created only when missing.
//
// When to ack. A message is acknowledged once its keys are in the hint queue, not once
// their objects are committed: a notification only says "look", the ledger decides what
// is done, and the listing finds every object anyway. Acking later would hold a message
// for the length of a batch and redeliver, after an ingester's crash, hints that the
// ledger makes no-ops. A message whose hints do not fit in the queue is negatively
// acknowledged with a delay and comes back; one received by an ingester that dies
// before it acks comes back after ackWait to another (or the same, restarted) one. Either
// way a duplicate hint is a HEAD or an If-Match GET at most, never a row.
//
// Fallback. A server without JetStream (or an account without it), a stream or
// consumer the server refuses (permissions, a subject another stream already holds, no
// room), a consumer of the name that does not deliver the subject (another deployment's,
// which this one must not drain), or no answer to JetStream's API while connected: a
// warning, and the plain subscription. JetStream is tried again every rejoinWait (a
// server restarted with it, a cluster that elected its leader, a permission granted), and
// once the stream is consumed again the plain subscription ends. Ingesting never stops on
// it; the listing is the backstop in every case.

// Limits of a stream the ingester creates, and of its consumer.
const (
	streamMaxAge   = 24 * time.Hour
	streamMaxMsgs  = 1_000_000
	streamMaxBytes = 1 << 30 // 1 GiB: about a million notifications of ~1 KB
	maxAckPending  = 1024    // below hintBuffer: what is delivered and not acked fits in the queue
	maxDeliver     = 10      // a notification is only a hint; after that the listing has it
	// attempts while connected before falling back: a server that never answers
	// JetStream's API (no permission to it, or a cluster without JetStream) times out.
	attachAttempts = 3
)

// Package variables so that tests need not wait for the defaults.
var (
	ackWait       = 10 * time.Second // a delivered, unacknowledged notification comes back after this
	attachTimeout = 5 * time.Second  // one attempt to find or create the stream and consumer
	retryWait     = 2 * time.Second  // between two attempts
	rejoinWait    = time.Minute      // between two attempts at JetStream once fallen back to the plain subscription
)

func streamConfig(name, subject string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: "S3 bucket event notifications for ecomstream's ingesters (each one a hint to look; listing is the backstop)",
		Subjects:    []string{subject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      streamMaxAge,
		MaxMsgs:     streamMaxMsgs,
		MaxBytes:    streamMaxBytes,
		Replicas:    1,
	}
}

func consumerConfig(name, subject string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:     name,
		Description: "ecomstream ingesters of one bucket prefix, sharing the work",
		// New: a consumer created today does not replay a day of old notifications
		// (objects long archived, each a wasted GET); from then on, it is durable.
		DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: maxAckPending,
		MaxDeliver:    maxDeliver,
	}
}

// refused tells whether err is the server's answer (JetStream disabled, a request it
// refused) rather than a transient failure to reach it.
func refused(err error) bool {
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return true
	}
	if errors.Is(err, errForeignConsumer) {
		return true
	}
	var je jetstream.JetStreamError
	return errors.As(err, &je) && je.APIError() != nil
}

// ensure finds or creates the stream and the consumer; created says whether either was
// made now (then a running Consume, if any, follows a consumer that is gone).
func (s *Source) ensure(ctx context.Context, js jetstream.JetStream) (c jetstream.Consumer, created bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, attachTimeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return nil, false, err
	}
	stream, name, subject := s.o.NATSStream, s.o.NATSConsumer, s.o.NATSSubject
	if _, err = js.Stream(ctx, stream); errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, streamConfig(stream, subject))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // another ingester made it first
		} else if err == nil {
			created = true
			s.log.Info().Str("stream", stream).Str("subject", subject).Msg("notifications: created the JetStream stream")
		}
	}
	if err != nil {
		return nil, false, err
	}
	c, err = js.Consumer(ctx, stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = js.CreateConsumer(ctx, stream, consumerConfig(name, subject))
		if errors.Is(err, jetstream.ErrConsumerExists) {
			c, err = js.Consumer(ctx, stream, name)
		} else if err == nil {
			created = true
		}
	}
	if err != nil {
		return nil, false, err
	}
	if cfg := c.CachedInfo().Config; !filters(cfg.FilterSubject, cfg.FilterSubjects, subject) {
		// Another deployment's consumer (the default names, another subject) or an
		// operator's: it never delivers this subject, and consuming it would take and
		// acknowledge what is meant for the other.
		return nil, false, fmt.Errorf("%w: consumer %s of stream %s filters %q, not %s (give this deployment its own INGESTER_NATS_CONSUMER)",
			errForeignConsumer, name, stream, strings.Join(append([]string{cfg.FilterSubject}, cfg.FilterSubjects...), " "), subject)
	}
	return c, created, nil
}

// errForeignConsumer is a consumer of the name that does not deliver the subject.
var errForeignConsumer = errors.New("the consumer exists for another subject")

// filters tells whether a consumer with these filters delivers subject (no filter: the
// stream's every subject). A filter's '*' matches one token and '>' the rest, as the
// server matches them.
func filters(filter string, more []string, subject string) bool {
	all := append([]string{filter}, more...)
	if filter == "" && len(more) == 0 {
		return true
	}
	for _, f := range all {
		if f != "" && covers(f, subject) {
			return true
		}
	}
	return false
}

func covers(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, t := range ft {
		switch {
		case t == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case t != "*" && t != st[i]:
			return false
		}
	}
	return len(ft) == len(st)
}

// follow consumes the stream until ctx ends, re-attaching when NATS comes back or the
// consumer is lost, and falling back to the plain subscription when JetStream is not
// there. The first attempt is made before it returns, so that a consumer created now
// exists before the first listing begins. done closes once it has stopped.
func (s *Source) follow(ctx context.Context, nc *nats.Conn, hints chan<- hint, reconnected <-chan struct{}) (done <-chan struct{}) {
	js, err := jetstream.New(nc)
	d := make(chan struct{})
	if err != nil { // only for bad options; there are none
		s.log.Warn().Err(err).Msg("notifications: no JetStream client; plain subscription instead")
		wait := s.fallback(ctx, nc, hints)
		go func() { defer close(d); wait() }()
		return d
	}
	recheck := make(chan struct{}, 1)
	poke := func() {
		select {
		case recheck <- struct{}{}:
		default:
		}
	}
	var cc jetstream.ConsumeContext
	failures := 0
	// sub is the plain subscription while JetStream is left: tried again every rejoinWait,
	// and given up once consuming the stream again.
	var sub *nats.Subscription
	// attach returns whether JetStream is to be left for the plain subscription.
	attach := func() (fallback bool) {
		if !nc.IsConnected() {
			return false // reconnected says when to try
		}
		c, created, err := s.ensure(ctx, js)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			failures++
			if refused(err) || failures >= attachAttempts {
				if sub != nil {
					s.log.Debug().Err(err).Msg("notifications: JetStream still not available; staying on the plain subscription")
					return true
				}
				s.m.errors.WithLabelValues(opNotify).Inc()
				s.log.Warn().Err(err).Str("stream", s.o.NATSStream).Str("consumer", s.o.NATSConsumer).
					Msg("notifications: JetStream not available (not enabled, or the stream or consumer refused); " +
						"following the subject with a plain subscription instead: notifications published while no ingester runs are lost, the listing finds those objects")
				return true
			}
			s.log.Debug().Err(err).Msg("notifications: JetStream not reached; trying again")
			return false
		}
		failures = 0
		if cc != nil && !created {
			select {
			case <-cc.Closed():
			default:
				return false // still consuming the same consumer
			}
		}
		if cc != nil {
			cc.Stop()
		}
		cc, err = c.Consume(func(m jetstream.Msg) { s.receive(ctx, m, hints) },
			jetstream.PullMaxMessages(256),
			// Any trouble (the consumer deleted, no responder to a pull because the stream
			// is gone, missing heartbeats) is a reason to look: if the stream and the
			// consumer are still there, that look is three API requests and nothing else.
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				s.log.Debug().Err(err).Msg("notifications: consuming reported an error; checking the stream and the consumer")
				poke()
			}))
		if err != nil {
			cc = nil
			s.log.Debug().Err(err).Msg("notifications: consuming did not start; trying again")
		}
		return false
	}
	plain := func() {
		if sub != nil {
			return
		}
		var err error
		if sub, err = s.subscribeCore(ctx, nc, hints, false); err != nil {
			s.log.Warn().Err(err).Msg("notifications: no subscription either; listing only until JetStream is tried again")
		}
	}
	if attach() {
		plain() // as for the stream: before the first listing
	}
	go func() {
		defer close(d)
		defer func() {
			if sub != nil {
				_ = sub.Unsubscribe()
			}
			if cc != nil {
				cc.Stop()
				select { // unsubscribed, so no handler runs after stop returns
				case <-cc.Closed():
				case <-time.After(attachTimeout): // a connection gone: nothing more arrives anyway
				}
			}
		}()
		// settle lets the server finish first after an error: a stream being deleted ends
		// its consumers before itself, and a consumer made again in between would be lost
		// with it (seen with nats-server 2.9). False: ctx ended.
		settle := func() bool {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(retryWait):
				return true
			}
		}
		t := time.NewTicker(retryWait)
		defer t.Stop()
		rejoin := time.NewTicker(rejoinWait)
		defer rejoin.Stop()
		for {
			var closed <-chan struct{}
			if cc != nil {
				closed = cc.Closed()
			}
			select {
			case <-ctx.Done():
				return
			case <-reconnected:
			case <-recheck:
				if !settle() {
					return
				}
			case <-closed:
				if !settle() {
					return
				}
			case <-t.C:
				if sub != nil || (cc != nil && failures == 0) {
					continue // fallen back (rejoin's turn), or consuming: nothing to retry
				}
			case <-rejoin.C:
				if sub == nil {
					continue
				}
				// A server restarted with JetStream, a leader elected, a permission granted:
				// try the stream again, quietly (the warning was given when leaving it).
				failures = 0
			}
			if attach() {
				if cc != nil {
					cc.Stop()
					cc = nil
				}
				plain()
				continue
			}
			if sub != nil && cc != nil {
				// Consuming the stream first, unsubscribing second: a notification published
				// in between is received twice (a duplicate hint is harmless), never not at all.
				_ = sub.Unsubscribe()
				sub = nil
				s.log.Info().Str("stream", s.o.NATSStream).Str("consumer", s.o.NATSConsumer).
					Msg("notifications: JetStream available again; consuming the stream instead of the plain subscription")
			}
		}
	}()
	return d
}

// receive hands a message's hints to the queue and acknowledges it; one whose hints do
// not all fit comes back later. A message received while stopping is left unacknowledged
// for another ingester.
func (s *Source) receive(ctx context.Context, m jetstream.Msg, hints chan<- hint) {
	fit := s.notice(ctx, m.Data(), hints, false)
	if ctx.Err() != nil {
		return
	}
	var err error
	if fit {
		err = m.Ack()
	} else {
		err = m.NakWithDelay(retryWait)
	}
	if err != nil { // it comes back after ackWait: a duplicate hint, nothing more
		s.m.errors.WithLabelValues(opNotify).Inc()
		s.log.Debug().Err(err).Msg("notifications: acknowledgement not sent")
	}
}

// fallback subscribes plainly to the subject; wait blocks until ctx ends, then unsubscribes.
func (s *Source) fallback(ctx context.Context, nc *nats.Conn, hints chan<- hint) (wait func()) {
	sub, err := s.subscribeCore(ctx, nc, hints, false)
	if err != nil {
		s.log.Warn().Err(err).Msg("notifications: no subscription either; listing only")
		return func() {}
	}
	return func() { <-ctx.Done(); _ = sub.Unsubscribe() }
}
