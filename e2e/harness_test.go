package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// actionTimeout bounds one browser step (a click, a page load, a wait).
const actionTimeout = 20 * time.Second

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// gatehouseBinary builds the gatehouse binary once per test run.
func gatehouseBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-e2e")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "gatehouse")
		if out, err := exec.Command("go", "build", "-o", binaryPath, "gatehouse").CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// chromiumPath returns the installed chromium. Without one the test skips,
// except under CI=true, where it fails: CI installs chromium on purpose.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no chromium (or chromium-browser) in PATH: install Debian's chromium to run the browser tests"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the browser tests must run)")
	}
	t.Skip(msg)
	return ""
}

// undecodedRE matches an event chromedp could not decode. For the domains
// the tests listen to, that would hide console errors or CSP violations.
var undecodedRE = regexp.MustCompile(`could not unmarshal event: .*Go (log|runtime|page)\.`)

// logBuffer keeps a process's output lines for a failure report.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, line)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// server is a running `gatehouse serve` with its own data directory on a
// free loopback port.
type server struct {
	URL   string // http://127.0.0.1:PORT
	Data  string
	pid   int
	bin   string
	log   *logBuffer
	setup chan string
}

var (
	listeningRE = regexp.MustCompile(`msg="gatehouse listening" addr=(http://\S+)`)
	setupRE     = regexp.MustCompile(`setup_url="?([^"\s]+)`)
)

// startServer runs the real binary with args (and env, GATEHOUSE_* settings)
// in a fresh data directory and waits until it listens. Its log is printed
// when the test fails.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	s := &server{Data: filepath.Join(t.TempDir(), "data"), bin: gatehouseBinary(t), log: &logBuffer{}, setup: make(chan string, 1)}
	cmd := exec.Command(s.bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", s.Data}, args...)...)
	cmd.Env = append(cleanEnv(), "GATEHOUSE_LOG_FORMAT=text")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr // the demo's users are printed to stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pid = cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			s.log.add(line)
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				listening <- m[1]
			}
			if m := setupRE.FindStringSubmatch(line); m != nil {
				s.setup <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case s.URL = <-listening:
		return s
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not start within 30s; its log:\n%s", s.log)
	}
	return nil
}

// cleanEnv is the test's environment without GATEHOUSE_* settings, so a
// developer's own configuration cannot leak into the server under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	return env
}

// setupURL returns the one-time setup link the server logged at start,
// pointed at the address it actually listens on.
func (s *server) setupURL(t *testing.T) string {
	t.Helper()
	select {
	case raw := <-s.setup:
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("setup link %q: %v", raw, err)
		}
		base, _ := url.Parse(s.URL)
		u.Scheme, u.Host = base.Scheme, base.Host
		return u.String()
	case <-time.After(10 * time.Second):
		t.Fatalf("the server logged no setup link; its log:\n%s", s.log)
	}
	return ""
}

// cli runs a gatehouse command against the server's database, as an
// operator would beside the running server.
func (s *server) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, append(args, "--data", s.Data)...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// browser is one headless chromium with a fresh profile.
type browser struct {
	ctx context.Context
	log *logBuffer // chromedp's own errors (for example events it could not decode)
}

// newBrowser starts Debian's chromium headless, as the CI runs it.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath(t)
	b := &browser{log: &logBuffer{}}
	// Not t.TempDir: chromium's helper processes may still be writing to the
	// profile for a moment after the browser exits, which made the test
	// fail on "directory not empty". Removing it is best effort, retried.
	profile, err := os.MkdirTemp("", "gatehouse-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 20; i++ {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the chromium profile %s", profile)
	})
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Two tabs poll at once; neither may be throttled as a background tab.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-features", "Translate,PasswordLeakDetection,OptimizationHints,MediaRouter"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if strings.Contains(msg, "into Go network.") {
			// This chromium is newer than the pinned cdproto; the network
			// events the tests do not read may carry values it does not know.
			return
		}
		b.log.add(msg)
	}))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for chromium to exit before t.TempDir is removed
		if t.Failed() {
			if l := b.log.String(); l != "" {
				t.Logf("chromedp errors:\n%s", l)
			}
		}
	})
	// The first Run starts chromium and binds it to ctx, so it must not run
	// under a shorter-lived context. Chromedp bounds the start itself.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	b.ctx = ctx
	return b
}

// tab is a page in its own browser context (its own cookies, like a
// separate browser profile) that records every console error, uncaught
// exception, error log entry and Content-Security-Policy violation.
type tab struct {
	name    string
	ctx     context.Context
	browser *browser

	mu       sync.Mutex
	problems []string
	dialogs  []string
}

// expectedErrorRE matches the network errors the contract asks for: a
// denied dashboard (403) or panel (403), and a panel polled after the
// session ended (401 with HX-Redirect).
var expectedErrorRE = regexp.MustCompile(`^/dashboards/[a-z0-9-]+(/panels/[a-z0-9-]+)?$`)

// cspProbe reports CSP violations as console errors too, in case the
// browser's own log entry for one is missed. It is installed through the
// DevTools protocol, which the page's CSP does not govern.
const cspProbe = `document.addEventListener("securitypolicyviolation", (e) =>
	console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline code") + " at " + e.sourceFile + ":" + e.lineNumber));`

// newTab opens a page in a new browser context of b.
func (b *browser) newTab(t *testing.T, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{name: name, ctx: ctx, browser: b}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				tb.problem("console.%s: %s", e.Type, consoleArgs(e.Args))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			tb.problem("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, msg)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.LevelError && !expectedError(e.Entry) {
				tb.problem("%s error: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		case *page.EventJavascriptDialogOpening:
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, e.Message)
			tb.mu.Unlock()
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})
	// As in newBrowser, the first Run opens the page for the life of ctx.
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(cspProbe).Do(ctx)
		return err
	})); err != nil {
		t.Fatalf("opening the %s tab: %v", name, err)
	}
	return tb
}

// expectedError reports whether a log entry is a 401 or 403 the contract
// asks for on a dashboard or panel address.
func expectedError(e *cdplog.Entry) bool {
	if e.Source != cdplog.SourceNetwork {
		return false
	}
	if !strings.Contains(e.Text, "status of 403") && !strings.Contains(e.Text, "status of 401") {
		return false
	}
	u, err := url.Parse(e.URL)
	return err == nil && expectedErrorRE.MatchString(u.Path)
}

func consoleArgs(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else {
				parts = append(parts, string(a.Value))
			}
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

func (tb *tab) problem(format string, args ...any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.problems = append(tb.problems, fmt.Sprintf(format, args...))
}

// assertClean fails t when the page logged a console error, threw, or
// reported a CSP violation since the last check.
func (tb *tab) assertClean(t *testing.T) {
	t.Helper()
	tb.mu.Lock()
	problems := tb.problems
	tb.problems = nil
	tb.mu.Unlock()
	for _, p := range problems {
		t.Errorf("%s tab: %s", tb.name, p)
	}
	for _, line := range strings.Split(tb.browser.log.String(), "\n") {
		if undecodedRE.MatchString(line) {
			t.Errorf("chromedp could not decode an event the tests watch, so errors may go unseen: %s", line)
		}
	}
}

// run runs browser actions, failing t with what was being done and where
// the page is.
func (tb *tab) run(t *testing.T, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s tab: %s: %v\n%s", tb.name, what, err, tb.where())
	}
}

// where describes the page for a failure message: its address and text.
func (tb *tab) where() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	var loc, text string
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`location.href`, &loc),
		chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &text),
	); err != nil {
		return "(page not readable: " + err.Error() + ")"
	}
	if len(text) > 1500 {
		text = text[:1500] + "…"
	}
	return "at " + loc + ":\n" + text
}

// open loads url and waits for the page to be ready.
func (tb *tab) open(t *testing.T, url string) {
	t.Helper()
	tb.run(t, "open "+url, chromedp.Navigate(url), chromedp.WaitReady("body", chromedp.ByQuery))
}

// click clicks the first visible element matching sel (CSS, or XPath when
// it starts with "/").
func (tb *tab) click(t *testing.T, sel string) {
	t.Helper()
	tb.run(t, "click "+sel, chromedp.Click(sel, by(sel)))
}

// typeInto types text into the field matching sel, key by key.
func (tb *tab) typeInto(t *testing.T, sel, text string) {
	t.Helper()
	tb.run(t, "type into "+sel, chromedp.SendKeys(sel, text, by(sel)))
}

// text returns the visible text of the element matching sel.
func (tb *tab) text(t *testing.T, sel string) string {
	t.Helper()
	var s string
	tb.run(t, "read "+sel, chromedp.Text(sel, &s, by(sel)))
	return strings.TrimSpace(s)
}

// eval evaluates a JavaScript expression into res.
func (tb *tab) eval(t *testing.T, expr string, res any) {
	t.Helper()
	tb.run(t, "evaluate "+expr, chromedp.Evaluate(expr, res))
}

// waitFor polls the JavaScript condition until it is true.
func (tb *tab) waitFor(t *testing.T, what, cond string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(cond, &ok))
		cancel()
		// An error here is a page being replaced (a navigation); try again.
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s tab: waited %s for %s (%s): %v\n%s", tb.name, timeout, what, cond, err, tb.where())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitPath waits until the page's path is path.
func (tb *tab) waitPath(t *testing.T, path string) {
	t.Helper()
	tb.waitFor(t, "the page "+path, fmt.Sprintf(`location.pathname === %q && document.readyState === "complete"`, path), actionTimeout)
}

// by picks XPath (BySearch) for selectors starting with "/", CSS otherwise.
func by(sel string) chromedp.QueryOption {
	if strings.HasPrefix(sel, "/") {
		return chromedp.BySearch
	}
	return chromedp.ByQuery
}

// button is the XPath of a button with exactly this text, optionally
// inside the element XPath within.
func button(within, label string) string {
	if within == "" {
		within = "/"
	}
	return fmt.Sprintf(`%s/descendant::button[normalize-space(.)=%q]`, within, label)
}

// panelState is what one dashboard panel shows.
type panelState struct {
	ID      string `json:"id"`
	Loading bool   `json:"loading"`
	Denied  bool   `json:"denied"`
	// PanelDenied: the viewer may open the dashboard but not this panel.
	PanelDenied bool `json:"panelDenied"`
	Requested   bool `json:"requested"`
	Chart       bool `json:"chart"`
	Svg         bool `json:"svg"`
	Empty       bool `json:"empty"`
}

const panelsJS = `[...document.querySelectorAll(".panel .panel-body")].map((b) => ({
	id: b.closest(".panel").id,
	loading: !!b.querySelector(".panel-loading"),
	denied: b.textContent.includes("You cannot view this dashboard"),
	panelDenied: b.textContent.includes("You cannot view this dashboard panel"),
	requested: b.textContent.includes("Access requested"),
	chart: !!b.querySelector("figure"),
	svg: !!b.querySelector("figure svg.chart-svg"),
	empty: b.textContent.trim() === "" && !b.querySelector("svg"),
}))`

// panels reads the state of every panel on the dashboard page.
func (tb *tab) panels(t *testing.T) []panelState {
	t.Helper()
	var ps []panelState
	tb.eval(t, panelsJS, &ps)
	return ps
}

// waitPanels waits until ok holds for the dashboard's panels, and returns
// how long that took.
func (tb *tab) waitPanels(t *testing.T, what string, timeout time.Duration, ok func([]panelState) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var ps []panelState
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(panelsJS, &ps))
		cancel()
		if err == nil && len(ps) > 0 && ok(ps) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s tab: waited %s for %s; panels: %+v (%v)\n%s", tb.name, timeout, what, ps, err, tb.where())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageView is what a dashboard page shows as a whole.
type pageView struct {
	Panels  int    `json:"panels"`  // panels in the grid
	Denials int    `json:"denials"` // "You cannot view …" blocks, page or panel
	Forms   int    `json:"forms"`   // request-access forms
	News    string `json:"news"`    // the status line announcing access changes
}

const pageViewJS = `(() => {
	const body = document.querySelector("#dashboard-body");
	if (!body) return {panels: 0, denials: 0, forms: 0, news: ""};
	return {
		panels: body.querySelectorAll(".panel").length,
		denials: body.querySelectorAll(".denied").length,
		forms: body.querySelectorAll('form[action$="/request"]').length,
		news: (document.querySelector(".access-news") || {textContent: ""}).textContent.trim(),
	};
})()`

// view reads what the dashboard page shows.
func (tb *tab) view(t *testing.T) pageView {
	t.Helper()
	var v pageView
	tb.eval(t, pageViewJS, &v)
	return v
}

// waitView waits until ok holds for the dashboard page, polling every 10ms,
// and returns how long that took.
func (tb *tab) waitView(t *testing.T, what string, timeout time.Duration, ok func(pageView) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var v pageView
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(pageViewJS, &v))
		cancel()
		if err == nil && ok(v) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s tab: waited %s for %s; page: %+v (%v)\n%s", tb.name, timeout, what, v, err, tb.where())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// oneDenial: the page shows the dashboard's single denial and request form, no panels.
func oneDenial(v pageView) bool { return v.Panels == 0 && v.Denials == 1 && v.Forms == 1 }

func all(ps []panelState, f func(panelState) bool) bool {
	for _, p := range ps {
		if !f(p) {
			return false
		}
	}
	return true
}

// screenshot saves a PNG of the page (the whole page when full) to docs/screenshots.
func (tb *tab) screenshot(t *testing.T, name string, full bool) {
	t.Helper()
	var png []byte
	capture := chromedp.CaptureScreenshot(&png)
	if full {
		capture = chromedp.FullScreenshot(&png, 100)
	}
	tb.run(t, "screenshot "+name, capture)
	path := filepath.Join("..", "docs", "screenshots", name+".png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// nodeCount counts the elements matching a CSS selector.
func (tb *tab) nodeCount(t *testing.T, sel string) int {
	t.Helper()
	var n int
	tb.eval(t, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n)
	return n
}
