package testgw

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// LogBuffer collects log output from many goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// LogWriter passes each write, a log line, to the test's log, and to Copy
// too when it is set.
type LogWriter struct {
	T    testing.TB
	Copy io.Writer
}

// Write logs p without its final newline.
func (w LogWriter) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimSuffix(string(p), "\n"))
	if w.Copy != nil {
		_, _ = w.Copy.Write(p)
	}
	return len(p), nil
}

// Logger is a text logger at level writing to the test's log, and to tee
// too unless it is nil.
func Logger(t testing.TB, level slog.Level, tee io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(LogWriter{T: t, Copy: tee}, &slog.HandlerOptions{Level: level}))
}
