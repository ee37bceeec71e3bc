package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// stepTimeout bounds every browser step, so a test fails instead of hanging.
func stepTimeout() time.Duration {
	if raceEnabled {
		return 60 * time.Second
	}
	return 30 * time.Second
}

// chromiumPath finds the browser. Without one the test skips, or fails in
// CI, whose script installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; .ci/run installs it")
	}
	t.Skip("chromium not found on PATH")
	return ""
}

// browser is a headless Chromium with a fresh profile, closed when the test
// ends. Its methods fail the test on error; each step has its own timeout.
type browser struct {
	t       *testing.T
	root    context.Context // the first tab; it owns the browser process
	timeout time.Duration
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// The machine may have no network at all: nothing but the page's
		// own requests may leave the browser, or they would fail or hang.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		_ = chromedp.Cancel(root) // closes the browser and waits for it
		cancel()
		acancel()
	})
	b := &browser{t: t, root: root, timeout: stepTimeout()}
	start := time.Now()
	b.open(root)
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	return b
}

// open makes the tab of ctx exist. The first action on a context creates
// its tab (and, on the root, the browser) for the life of the context it is
// given, so it gets ctx itself and is bounded by a timer instead.
func (b *browser) open(ctx context.Context) {
	b.t.Helper()
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			b.t.Fatalf("open tab: %v", err)
		}
	case <-timer.C:
		_ = chromedp.Cancel(ctx)
		b.t.Fatalf("open tab: no answer in %v", b.timeout)
	}
}

// tab opens another tab in the same browser, sharing its cookies.
func (b *browser) tab() context.Context {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.root)
	b.t.Cleanup(cancel)
	b.open(ctx)
	return ctx
}

// do runs steps in tab within one step timeout.
func (b *browser) do(tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(tab, b.timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action with a value in tab within one step timeout.
func get[T any](b *browser, tab context.Context, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(tab, b.timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// location is the tab's current URL.
func (b *browser) location(tab context.Context) string {
	b.t.Helper()
	return get(b, tab, "location", chromedp.Location())
}

// loginPage waits for the issuer's login form in tab.
func (b *browser) loginPage(tab context.Context) {
	b.t.Helper()
	b.do(tab, "wait for the login page", chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	if loc := b.location(tab); !strings.Contains(loc, "/idp/authorize") {
		b.t.Fatalf("login form at %s, want the issuer's /idp/authorize", loc)
	}
}

// logIn fills the login form shown in tab and submits it.
func (b *browser) logIn(tab context.Context) {
	b.t.Helper()
	b.do(tab, "log in",
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), username),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
}

// user waits for the upstream page in tab and returns who it says is
// signed in.
func (b *browser) user(tab context.Context) string {
	b.t.Helper()
	b.do(tab, "wait for the upstream page", chromedp.WaitVisible(chromedp.CSS(`#user`)))
	return get(b, tab, "read #user", chromedp.Text(chromedp.CSS(`#user`)))
}

// screenshot saves a full-page PNG of tab as a test artefact.
func (b *browser) screenshot(tab context.Context, name string) {
	b.t.Helper()
	png := get(b, tab, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := os.Getenv("PORTCULLIS_ARTIFACTS")
	if dir == "" {
		dir = b.t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	file := filepath.Join(dir, strings.ReplaceAll(b.t.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", file)
}
