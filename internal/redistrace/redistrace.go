// Package redistrace gives the Redis commands of a traced request client
// spans: a go-redis hook that starts a span for each command (or
// pipeline) whose context carries a recording span, named after the
// command, with the database system and operation but never the keys or
// values.
package redistrace

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Hook returns the hook for t; addr is the server's host:port.
func Hook(t trace.Tracer, addr string) redis.Hook {
	h := hook{t: t, attrs: []attribute.KeyValue{attribute.String("db.system.name", "redis")}}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		h.attrs = append(h.attrs, attribute.String("server.address", host))
		if n, err := strconv.Atoi(port); err == nil {
			h.attrs = append(h.attrs, attribute.Int("server.port", n))
		}
	}
	return h
}

type hook struct {
	t     trace.Tracer
	attrs []attribute.KeyValue
}

func (h hook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmd) // background work, or a request not sampled
		}
		op := strings.ToUpper(cmd.Name())
		ctx, span := h.t.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(h.attrs...),
			trace.WithAttributes(attribute.String("db.operation.name", op)))
		err := next(ctx, cmd)
		end(span, err)
		return err
	}
}

func (h hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmds)
		}
		ctx, span := h.t.Start(ctx, "PIPELINE", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(h.attrs...),
			trace.WithAttributes(attribute.String("db.operation.name", "PIPELINE"), attribute.Int("db.operation.batch.size", len(cmds))))
		err := next(ctx, cmds)
		end(span, err)
		return err
	}
}

func end(span trace.Span, err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		span.SetStatus(codes.Error, "redis error")
	}
	span.End()
}
