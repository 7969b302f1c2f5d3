package testserver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium (Debian's chromium package) driven with
// chromedp. Without one the browser tests skip, unless
// BRIGHTRUN_REQUIRE_BROWSER=1 (CI), which makes them fail.
type Browser struct {
	Ctx context.Context
	t   testing.TB
	dir string
}

func chromiumPath() string {
	if p := os.Getenv("BRIGHTRUN_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// NewBrowser starts Chromium with the given viewport for the test.
func NewBrowser(t testing.TB, width, height int) *Browser {
	t.Helper()
	exe := chromiumPath()
	if exe == "" {
		if os.Getenv("BRIGHTRUN_REQUIRE_BROWSER") == "1" {
			t.Fatal("Chromium not found (apt-get install chromium) but BRIGHTRUN_REQUIRE_BROWSER=1")
		}
		t.Skip("browser tests skipped: Chromium not found (apt-get install chromium, or set BRIGHTRUN_CHROMIUM)")
	}
	profile, err := os.MkdirTemp("", "brightrun-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile), chromedp.WindowSize(width, height),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 8*time.Minute) // a real trainer on a busy machine can take minutes
	t.Cleanup(func() {
		cancelT()
		cancelC()
		cancelA()
		// Chromium may still be flushing its profile: best effort.
		_ = os.RemoveAll(profile)
	})
	// Headless Chromium's windows are at least 500 px wide: emulate the
	// viewport so that a 390 px phone really is 390 px.
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &Browser{Ctx: ctx, t: t, dir: ArtifactsDir(t)}
}

// ArtifactsDir is where screenshots go: $BRIGHTRUN_ARTIFACTS or
// test-artifacts/screenshots at the repository root.
func ArtifactsDir(t testing.TB) string {
	dir := os.Getenv("BRIGHTRUN_ARTIFACTS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "test-artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Run runs chromedp actions, failing the test on error.
func (b *Browser) Run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.Ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Screenshot saves a full-page PNG named after the test and name.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	var buf []byte
	b.Run(chromedp.FullScreenshot(&buf, 100))
	safe := strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name() + "-" + name)
	p := filepath.Join(b.dir, safe+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// Text returns the text content of the first node matching sel.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	var s string
	b.Run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// SignIn submits the login (page "/login") or sign-up ("/signup") form at
// base and waits for the dashboard.
func (b *Browser) SignIn(base, page, email, password string) {
	b.t.Helper()
	b.Run(chromedp.Navigate(base+page), chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.SetValue(`#email`, email, chromedp.ByQuery), chromedp.SetValue(`#password`, password, chromedp.ByQuery),
		chromedp.Submit(`form`, chromedp.ByQuery), chromedp.WaitVisible(`[data-stat=datasets]`, chromedp.ByQuery))
}
