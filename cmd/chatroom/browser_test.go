package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The page in a real browser: headless Chromium driven by chromedp against
// the demo program. It skips, saying so, where Chromium is not installed;
// .ci/run installs Debian's chromium package.

// chromium returns the path of a Chromium binary, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("drives a browser")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("skipping: Chromium is not installed (apt-get install chromium)")
	return ""
}

// newBrowser starts headless Chromium and returns a context for its tab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(900, 640),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(ctx)) // start the browser
	return ctx
}

// run runs steps in tab, bounded by waitLimit.
func run(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitLimit)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// value runs action in tab, bounded by waitLimit, and returns its value.
func value[T any](t *testing.T, tab context.Context, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	require.NoError(t, err)
	return v
}

// waitStatus waits until the page's status says want ("connected").
func waitStatus(t *testing.T, tab context.Context, connected bool) {
	t.Helper()
	expr := `document.getElementById("status").textContent === "connected"`
	if !connected {
		expr = `document.getElementById("status").textContent !== "connected"`
	}
	value(t, tab, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond)))
}

// waitLine waits until a line of the page's #messages contains want.
func waitLine(t *testing.T, tab context.Context, want string) {
	t.Helper()
	q := strconv.Quote(want)
	value(t, tab, chromedp.Poll[bool](`[...document.querySelectorAll("#messages > div")].some(d => d.textContent.includes(`+q+`))`,
		chromedp.WithPollingInterval(20*time.Millisecond)))
}

// say types line into the page and presses Enter.
func say(t *testing.T, tab context.Context, line string) {
	t.Helper()
	run(t, tab, chromedp.SendKeys(chromedp.ID("line"), line+kb.Enter))
}

// freePort returns a loopback address nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// webAddr returns the address the demo serves its page on.
func (d *demo) webAddr() string {
	d.t.Helper()
	m := regexp.MustCompile(`addr=http://(\S+)/`).FindStringSubmatch(d.logLine("serving the web page"))
	require.NotNil(d.t, m)
	return m[1]
}

// TestBrowser: a browser user and a raw TCP client chat both ways; a line
// holding a script, an image with an onerror handler and a javascript:
// link shows as text and runs nothing; the server restarts and the page
// rejoins by itself. With CHATROOM_SCREENSHOT=FILE it also writes a
// screenshot of the page with two browser users and a terminal user.
func TestBrowser(t *testing.T) {
	t.Parallel()
	tab := newBrowser(t)
	site := freePort(t)
	d := startDemo(t, "-http", site)
	require.Equal(t, site, d.webAddr())

	run(t, tab, chromedp.Navigate("http://"+site+"/"))
	waitStatus(t, tab, true)
	waitLine(t, tab, "* welcome 127.0.0.1:")
	say(t, tab, "/nick ada")
	waitLine(t, tab, "* you are now ada")

	term := joinDemo(t, d.addr, nil)
	waitLine(t, tab, " joined")
	term.Send("/nick linus\n")
	term.WaitForPart("* you are now linus")
	say(t, tab, "hello from a browser")
	term.WaitForPart("ada say: hello from a browser")
	term.Send("hello from a terminal\n")
	waitLine(t, tab, "linus say: hello from a terminal")

	hostile := `<script>window.pwned = 1</script> <img src=x onerror="window.pwned = 2"> <a href="javascript:window.pwned = 3">click</a>`
	term.Send(hostile + "\n")
	waitLine(t, tab, "linus say: "+hostile)
	safe := value(t, tab, chromedp.Evaluate[bool](`window.pwned === undefined &&
		document.querySelectorAll("#messages script, #messages img, #messages a").length === 0`))
	assert.True(t, safe, "the page ran or built what a message held")

	if path := os.Getenv("CHATROOM_SCREENSHOT"); path != "" {
		screenshot(t, tab, site, term, path)
	}

	// The server goes away and comes back on the same address: the page
	// says so, and rejoins by itself.
	d.stop()
	waitStatus(t, tab, false)
	d2 := startDemo(t, "-http", site)
	waitStatus(t, tab, true)
	term2 := joinDemo(t, d2.addr, nil)
	say(t, tab, "/nick ada")
	term2.WaitForPart("is now ada")
	say(t, tab, "back again")
	term2.WaitForPart("ada say: back again")
	d2.stop()
}

// screenshot adds a second browser user, lets the three talk, and writes a
// PNG of the first user's page to path.
func screenshot(t *testing.T, tab context.Context, site string, term *chattest.Client, path string) {
	t.Helper()
	second := newBrowser(t) // a browser of its own: another person
	run(t, second, chromedp.Navigate("http://"+site+"/"))
	waitStatus(t, second, true)
	say(t, second, "/nick grace")
	waitLine(t, tab, "is now grace")
	say(t, second, "hi ada, hi linus: I'm in a browser too")
	waitLine(t, tab, "grace say: hi ada")
	say(t, tab, "/me waves at grace")
	term.Send("/msg ada the terminal can whisper too\n")
	waitLine(t, tab, "linus whispers:")
	say(t, tab, "/who")
	waitLine(t, tab, "3 online:")
	png := value(t, tab, chromedp.CaptureScreenshot())
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("wrote %s", path)

}
