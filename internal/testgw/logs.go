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

// LogWriter passes each write, a log line, to the test's log, and to a
// copy too when there is one. Lines written after the test has ended are
// kept from the test's log: a stopped gateway's background work (a key set
// fetch that was in flight, say) may still log, and a testing.T must not
// be used once its test is over.
type LogWriter struct {
	t    testing.TB
	copy io.Writer

	mu    sync.Mutex
	ended bool
}

// NewLogWriter returns a LogWriter for t, copying to copy unless it is nil.
func NewLogWriter(t testing.TB, copy io.Writer) *LogWriter {
	w := &LogWriter{t: t, copy: copy}
	t.Cleanup(func() {
		w.mu.Lock()
		w.ended = true
		w.mu.Unlock()
	})
	return w
}

// Write logs p without its final newline.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if !w.ended {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	w.mu.Unlock()
	if w.copy != nil {
		_, _ = w.copy.Write(p)
	}
	return len(p), nil
}

// Logger is a text logger at level writing to the test's log, and to tee
// too unless it is nil.
func Logger(t testing.TB, level slog.Level, tee io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(NewLogWriter(t, tee), &slog.HandlerOptions{Level: level}))
}
