package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// newBrowser starts headless Chromium, a browser of its own (another
// person: its own localStorage), and returns a context for its tab.
func newBrowser(t *testing.T, width, height int) context.Context {
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
		chromedp.WindowSize(width, height),
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

// poll waits until the JavaScript expression expr is true in tab.
func poll(t *testing.T, tab context.Context, expr string) {
	t.Helper()
	value(t, tab, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond)))
}

// waitStatus waits until the page's status says "connected", or, for
// !connected, something else.
func waitStatus(t *testing.T, tab context.Context, connected bool) {
	t.Helper()
	op := "==="
	if !connected {
		op = "!=="
	}
	poll(t, tab, `document.getElementById("status").textContent `+op+` "connected"`)
}

// linesWith is the JavaScript for the lines of #messages that contain
// want and match the CSS selector sel ("" for any).
func linesWith(sel, want string) string {
	return `[...document.querySelectorAll("#messages > div` + sel + `")].filter(d => d.textContent.includes(` + strconv.Quote(want) + `))`
}

// waitLine waits until a line of the page's #messages, matching sel,
// contains want.
func waitLine(t *testing.T, tab context.Context, sel, want string) {
	t.Helper()
	poll(t, tab, linesWith(sel, want)+`.length > 0`)
}

// countLines counts the lines of #messages that contain want.
func countLines(t *testing.T, tab context.Context, want string) int {
	t.Helper()
	return value(t, tab, chromedp.Evaluate[int](linesWith("", want)+`.length`))
}

// waitMembers waits until the members panel lists exactly names, in
// order.
func waitMembers(t *testing.T, tab context.Context, names ...string) {
	t.Helper()
	want, err := json.Marshal(names)
	require.NoError(t, err)
	poll(t, tab, `JSON.stringify([...document.querySelectorAll("#members li")].map(li => li.textContent.replace(/^[@+]/, ""))) === `+strconv.Quote(string(want)))
}

// waitRoom waits until the page shows room.
func waitRoom(t *testing.T, tab context.Context, room string) {
	t.Helper()
	poll(t, tab, `document.getElementById("room-name").textContent === `+strconv.Quote(room))
}

// say types line into the page and presses Enter.
func say(t *testing.T, tab context.Context, line string) {
	t.Helper()
	run(t, tab, chromedp.SendKeys(chromedp.ID("line"), line+kb.Enter))
}

// openPage opens the page at site and, asked for a name, gives name.
func openPage(t *testing.T, tab context.Context, site, name string) {
	t.Helper()
	run(t, tab, chromedp.Navigate("http://"+site+"/"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name+kb.Enter))
	waitStatus(t, tab, true)
	poll(t, tab, `document.getElementById("me").textContent === `+strconv.Quote(name))
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

// TestBrowser: two pages and a terminal in two rooms. The name is asked
// once; a line typed appears at once, marked as the typer's; the members
// panel follows joins, moves, renames and departures; unread lines are
// counted per room; /me and whispers show as such; a line holding markup
// shows as text and runs nothing. With CHATROOM_SCREENSHOT=FILE it also
// writes a screenshot of the page.
func TestBrowser(t *testing.T) {
	t.Parallel()
	ada := newBrowser(t, 1100, 700)
	grace := newBrowser(t, 1100, 700)
	site := freePort(t)
	d := startDemo(t, "-http", site)
	require.Equal(t, site, d.webAddr())

	openPage(t, ada, site, "ada")
	waitRoom(t, ada, "lobby")
	waitLine(t, ada, "", "you are in lobby")
	waitMembers(t, ada, "ada")

	term := joinDemo(t, d.addr, nil)
	term.Send("/nick linus\n")
	term.WaitForPart("* you are now linus")
	waitMembers(t, ada, "ada", "linus")
	openPage(t, grace, site, "grace")
	waitMembers(t, ada, "ada", "grace", "linus")
	waitMembers(t, grace, "ada", "grace", "linus")
	term.WaitForPart("* grace joined")

	// What you type appears at once, marked as yours.
	say(t, ada, "hello from a browser")
	waitLine(t, ada, ".own", "ada: hello from a browser")
	waitLine(t, grace, ":not(.own)", "ada: hello from a browser")
	term.WaitForPart("ada say: hello from a browser")
	term.Send("hello from a terminal\n")
	waitLine(t, ada, ":not(.own)", "linus: hello from a terminal")

	// A second room: the pages join it and switch to it; the terminal
	// moves there, leaving lobby.
	say(t, ada, "/join games")
	waitRoom(t, ada, "games")
	waitMembers(t, ada, "ada")
	say(t, grace, "/join games")
	waitRoom(t, grace, "games")
	waitMembers(t, ada, "ada", "grace")
	term.Send("/join games\n")
	term.WaitForPart("* you are in games")
	waitMembers(t, ada, "ada", "grace", "linus")
	term.Send("hi games\n")
	waitLine(t, ada, "", "linus: hi games")
	poll(t, ada, `[...document.querySelectorAll("#rooms button.room")].map(b => b.textContent).join() === "lobby,games"`)

	// Unread lines are counted in the room not shown, and read on the
	// way back; the terminal is gone from lobby's members.
	run(t, grace, chromedp.Click(`#rooms li:first-child button.room`))
	waitRoom(t, grace, "lobby")
	waitMembers(t, grace, "ada", "grace")
	term.Send("one\n")
	term.Send("two\n")
	poll(t, grace, `document.querySelector("#rooms li:nth-child(2) .unread")?.textContent === "2"`)
	run(t, grace, chromedp.Click(`#rooms li:nth-child(2) button.room`))
	waitLine(t, grace, "", "linus: two")
	poll(t, grace, `document.querySelector("#rooms .unread") === null`)

	// /me and whispers show as such.
	say(t, grace, "/me waves")
	waitLine(t, ada, ".action", "* grace waves")
	term.WaitForPart("* grace waves")
	term.Send("/msg ada the terminal can whisper too\n")
	waitLine(t, ada, ".whisper", "linus → you: the terminal can whisper too")
	say(t, ada, "/msg grace psst")
	waitLine(t, ada, ".whisper.own", "you → grace: psst")
	waitLine(t, grace, ".whisper", "ada → you: psst")

	// A rename and a departure reach the members panel.
	say(t, grace, "/nick gracie")
	waitMembers(t, ada, "ada", "gracie", "linus")
	waitLine(t, ada, "", "grace is now gracie")
	poll(t, grace, `localStorage.getItem("chatroom.name") === "gracie"`)
	say(t, grace, "/part")
	waitMembers(t, ada, "ada", "linus")
	waitRoom(t, grace, "lobby")

	// Markup shows as text and runs nothing.
	hostile := `<script>window.pwned = 1</script> <img src=x onerror="window.pwned = 2"> <a href="javascript:window.pwned = 3">click</a>`
	term.Send(hostile + "\n")
	waitLine(t, ada, "", "linus: "+hostile)
	safe := value(t, ada, chromedp.Evaluate[bool](`window.pwned === undefined &&
		document.querySelectorAll("#messages script, #messages img, #messages a").length === 0`))
	assert.True(t, safe, "the page ran or built what a message held")

	if path := os.Getenv("CHATROOM_SCREENSHOT"); path != "" {
		screenshot(t, ada, grace, term, path)
	}
}

// screenshot has the three meet in a room of their own, talk, and writes
// a PNG of ada's page to path.
func screenshot(t *testing.T, ada, grace context.Context, term *chattest.Client, path string) {
	t.Helper()
	say(t, ada, "/join lounge")
	waitRoom(t, ada, "lounge")
	say(t, ada, "/topic the new page: rooms, members, recovery")
	say(t, grace, "/join lounge")
	term.Send("/join lounge\n")
	waitMembers(t, ada, "ada", "gracie", "linus")
	term.Send("hello from a terminal: nc works as it always did\n")
	waitLine(t, grace, "", "nc works")
	say(t, grace, "hi both! I'm in a browser too, and this line is long enough to wrap under its own start rather than under the time, as a chat line should")
	waitLine(t, ada, "", "as a chat line should")
	say(t, ada, "/me waves at gracie and linus")
	term.Send("/msg ada lines said while your page reconnects come back, once each\n")
	waitLine(t, ada, ".whisper", "once each")
	say(t, ada, "and my own lines show at once, marked as mine")
	waitLine(t, ada, ".own", "marked as mine")
	png := value(t, ada, chromedp.CaptureScreenshot())
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("wrote %s", path)
}

// gate is a TCP proxy in front of the demo's web address, which the test
// can close to new connections: the page reconnects only when the test
// lets it.
type gate struct {
	ln     net.Listener
	target atomic.Pointer[string]
	open   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// newGate listens on addr and forwards to target while open.
func newGate(t *testing.T, addr, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	g := &gate{ln: ln, conns: make(map[net.Conn]struct{})}
	g.target.Store(&target)
	g.open.Store(true)
	g.wg.Add(1)
	go g.serve()
	t.Cleanup(func() {
		ln.Close()
		g.closeAll()
		g.wg.Wait()
	})
	return g
}

func (g *gate) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.open.Load() {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", *g.target.Load(), waitLimit)
		if err != nil {
			c.Close()
			continue
		}
		g.mu.Lock()
		g.conns[c], g.conns[up] = struct{}{}, struct{}{}
		g.mu.Unlock()
		g.wg.Add(2)
		go g.pipe(c, up)
		go g.pipe(up, c)
	}
}

func (g *gate) pipe(dst, src net.Conn) {
	defer g.wg.Done()
	io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// closeAll closes every connection through the gate.
func (g *gate) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		c.Close()
	}
	clear(g.conns)
}

// TestBrowserAfterRestart: the server restarts while a page is in two
// rooms. The page reconnects by itself under its name, into its rooms,
// and shows the lines said meanwhile once each (the demo keeps 100 lines
// a room by default, -history), and, in the room where more were said
// than that, a note that lines were missed, then the last 100.
func TestBrowserAfterRestart(t *testing.T) {
	t.Parallel()
	tab := newBrowser(t, 1000, 700)
	page := freePort(t)
	d := startDemo(t, "-http", "127.0.0.1:0", "-rate", "0")
	g := newGate(t, page, d.webAddr())

	openPage(t, tab, page, "ada")
	waitRoom(t, tab, "lobby")
	say(t, tab, "/join games")
	waitRoom(t, tab, "games")
	run(t, tab, chromedp.Click(`#rooms li:first-child button.room`))
	waitRoom(t, tab, "lobby")
	term := joinDemo(t, d.addr, nil)
	term.Send("/nick linus\nbefore\n")
	waitLine(t, tab, "", "linus: before")

	// The server goes; a new one comes on the same addresses, but the
	// page may not reach it until the lines are said.
	g.open.Store(false)
	d.stop()
	g.closeAll()
	waitStatus(t, tab, false)
	d2 := startDemo(t, "-http", "127.0.0.1:0", "-rate", "0")
	web2 := d2.webAddr()
	g.target.Store(&web2)
	lobby := joinDemo(t, d2.addr, nil)
	lobby.Send("/nick linus\n")
	lobby.WaitForPart("* you are now linus")
	games := joinDemo(t, d2.addr, nil)
	games.Send("/nick grace\n/join games\n")
	games.WaitForPart("* you are in games")
	for i := range 3 {
		lobby.Send(fmt.Sprintf("meanwhile %d\n", i))
	}
	var lines strings.Builder
	for i := range 120 {
		fmt.Fprintf(&lines, "missed %d\n", i)
	}
	games.Send(lines.String())
	games.Send("/who\n")
	games.WaitForPart("* 1 online: grace") // every line is in

	g.open.Store(true)
	waitStatus(t, tab, true)
	poll(t, tab, `document.getElementById("me").textContent === "ada"`)
	lobby.WaitForPart("* ada joined")
	waitLine(t, tab, "", "linus: meanwhile 2")
	for _, line := range []string{"linus: before", "linus: meanwhile 0", "linus: meanwhile 1", "linus: meanwhile 2"} {
		assert.Equal(t, 1, countLines(t, tab, line), "%q once", line)
	}
	waitLine(t, tab, "", "reconnected")
	waitMembers(t, tab, "ada", "linus")

	poll(t, tab, `document.querySelector("#rooms li:nth-child(2) .unread")?.textContent === "100"`)
	run(t, tab, chromedp.Click(`#rooms li:nth-child(2) button.room`))
	waitRoom(t, tab, "games")
	waitLine(t, tab, ".gap", "more was said while you were away than this room keeps")
	waitLine(t, tab, "", "grace: missed 119")
	assert.Zero(t, countLines(t, tab, "grace: missed 19"), "before the last 100")
	for _, i := range []int{20, 21, 70, 119} {
		assert.Equal(t, 1, countLines(t, tab, fmt.Sprintf("grace: missed %d", i)), "line %d once", i)
	}
	assert.Equal(t, 100, countLines(t, tab, "grace: missed "))
	waitMembers(t, tab, "ada", "grace")

	// Typed after the reconnect, under the kept name.
	say(t, tab, "back again")
	games.WaitForPart("ada say: back again")
	d2.stop()
}

// TestBrowserOnAPhone: a phone-sized screen: nothing wider than it, the
// text box on it, long lines wrapped under their own start, and the
// members and rooms open over the lines.
func TestBrowserOnAPhone(t *testing.T) {
	t.Parallel()
	tab := newBrowser(t, 400, 800)
	site := freePort(t)
	d := startDemo(t, "-http", site)
	run(t, tab, chromedp.EmulateViewport(375, 667, chromedp.EmulateMobile))
	openPage(t, tab, site, "ada")
	term := joinDemo(t, d.addr, nil)
	term.Send("/nick linus\n")
	long := strings.Repeat("a long line that must wrap on a phone ", 8)
	term.Send(long + "\n")
	waitLine(t, tab, "", strings.TrimSpace(long))

	fits := value(t, tab, chromedp.Evaluate[bool](`(() => {
		const w = window.innerWidth, h = window.innerHeight;
		const box = document.getElementById("line").getBoundingClientRect();
		return document.documentElement.scrollWidth <= w && box.left >= 0 && box.right <= w && box.bottom <= h && box.top > 0;
	})()`))
	assert.True(t, fits, "the page fits the screen, the text box on it")
	wrapped := value(t, tab, chromedp.Evaluate[bool](`(() => {
		const line = [...document.querySelectorAll("#messages > div")].pop();
		const style = getComputedStyle(line);
		const rects = [...line.querySelector(".text").getClientRects()];
		return line.getBoundingClientRect().right <= window.innerWidth && rects.length > 1 &&
			parseFloat(style.textIndent) < 0 && parseFloat(style.paddingLeft) > 0;
	})()`))
	assert.True(t, wrapped, "a long line wraps within the screen, with a hanging indent")

	hidden := value(t, tab, chromedp.Evaluate[bool](`getComputedStyle(document.getElementById("members-panel")).display === "none"`))
	assert.True(t, hidden, "the members panel waits for its button")
	run(t, tab, chromedp.Click(chromedp.ID("show-members")))
	poll(t, tab, `getComputedStyle(document.getElementById("members-panel")).display !== "none"`)
	waitMembers(t, tab, "ada", "linus")
	run(t, tab, chromedp.Click(chromedp.ID("show-rooms")))
	poll(t, tab, `getComputedStyle(document.getElementById("rooms-panel")).display !== "none" &&
		getComputedStyle(document.getElementById("members-panel")).display === "none"`)
	say(t, tab, "typed on a phone")
	term.WaitForPart("ada say: typed on a phone")
}
