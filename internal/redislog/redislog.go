// Package redislog keeps the Redis client's own log lines out of stderr.
//
// go-redis writes some events, such as a failed dial from its connection
// pool, with the standard log package straight to stderr: in a format of
// its own they would break JSON logs, and they repeat what the callers
// already report (the issuer's store warns when Redis becomes unreachable,
// with the error, and notes when it is back; a request whose session
// cannot be read fails with that error). Install sends them to
// [slog.Default] at debug level instead, where a process that wants them
// can still see them.
package redislog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
)

var once sync.Once

// Install routes go-redis's log lines to slog.Default at debug level. The
// Redis client's logger is global to the process; Install sets it once, and
// later calls do nothing.
func Install() {
	once.Do(func() { redis.SetLogger(logger{}) })
}

// logger is go-redis's internal.Logging, writing to slog.Default.
type logger struct{}

func (logger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	l := slog.Default()
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.DebugContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
