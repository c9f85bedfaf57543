package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hostile-client attacks of the engine's tests, run black-box against
// the demo program as a user runs it: built, started with flags, attacked
// over 127.0.0.1, stopped with SIGTERM. Each is bounded in time.

// demoDir holds the demo binary the tests build; TestMain removes it.
var demoDir string

var demoBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "chatroom-demo-")
	if err != nil {
		return "", err
	}
	demoDir = dir
	bin := filepath.Join(dir, "chatroom")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// demo is the demo program, serving.
type demo struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	stderr *bufio.Reader // what it logs, from the line after "serving" on: the log goroutine's alone once it runs
	logs   chan string   // the lines the log goroutine read that the test has not taken; closed at the log's end
	read   func()        // starts the log goroutine, once
	exited chan error
}

// logLines is how many lines of the log the log goroutine holds for the
// test; past that it drops them, so that the program never waits for it.
const logLines = 1 << 12

// startDemo builds (once) and starts the demo with args and -addr
// 127.0.0.1:0, reads its log up to the "serving" line, and stops it when
// the test ends. Nothing reads the rest of its log until the test asks for
// a line of it (logLine), or stops the program.
func startDemo(t *testing.T, args ...string) *demo {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the program")
	}
	bin, err := demoBinary()
	require.NoError(t, err)
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	d := &demo{t: t, cmd: cmd, stderr: bufio.NewReader(stderr), logs: make(chan string, logLines), exited: make(chan error, 1)}
	d.read = sync.OnceFunc(func() { go d.readLog() })
	addrRe := regexp.MustCompile(`msg=serving addr=(\S+)`)
	var logged strings.Builder // what it said before it served, for a failure
	for d.addr == "" {
		line, err := d.stderr.ReadString('\n')
		logged.WriteString(line)
		require.NoError(t, err, "the program logs where it serves; it said:\n%s", logged.String())
		if m := addrRe.FindStringSubmatch(line); m != nil {
			d.addr = m[1]
		}
	}
	go func() { d.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		d.read() // so that the program's last writes to its log end
		<-d.exited
	})
	return d
}

// readLog is the log goroutine: the only reader of d.stderr once it runs.
// It hands each line to d.logs, or drops it if the test has not taken
// logLines of them, and ends with the log.
func (d *demo) readLog() {
	defer close(d.logs)
	for {
		line, err := d.stderr.ReadString('\n')
		if err != nil {
			return
		}
		select {
		case d.logs <- line:
		default:
		}
	}
}

// stop sends SIGTERM and expects the program to exit 0 within waitLimit,
// reading its log meanwhile; it returns how long that took.
func (d *demo) stop() time.Duration {
	d.t.Helper()
	d.read()
	start := time.Now()
	require.NoError(d.t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.exited:
		d.exited <- err // for the cleanup
		assert.NoError(d.t, err, "exit status 0")
	case <-time.After(waitLimit):
		d.t.Fatal("the program did not exit")
	}
	return time.Since(start)
}

// logLine reads the log until a line holding all of parts, within
// waitLimit, and returns it.
func (d *demo) logLine(parts ...string) string {
	d.t.Helper()
	d.read()
	timeout := time.After(waitLimit)
	for {
		select {
		case line, ok := <-d.logs:
			require.True(d.t, ok, "the log ended before a line with %q", parts)
			matched := true
			for _, p := range parts {
				matched = matched && strings.Contains(line, p)
			}
			if matched {
				return line
			}
		case <-timeout:
			d.t.Fatalf("no log line with %q", parts)
		}
	}
}

// proc returns a field of /proc/PID/status, or the number of open
// descriptors for "fds".
func (d *demo) proc(field string) int {
	d.t.Helper()
	pid := d.cmd.Process.Pid
	if field == "fds" {
		return chattest.OpenFDs(d.t, pid)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(d.t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.Fields(rest)[0])
			require.NoError(d.t, err)
			return n
		}
	}
	d.t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// joinDemo joins the demo's room at addr, through dial if it is not nil,
// and reads what comes in the background (chattest.Client.Background), so
// that the member is never too slow; it returns once it is welcome.
func joinDemo(t *testing.T, addr string, dial func() (net.Conn, error)) *chattest.Client {
	t.Helper()
	if dial == nil {
		dial = func() (net.Conn, error) { return net.DialTimeout("tcp", addr, waitLimit) }
	}
	conn, err := dial()
	require.NoError(t, err)
	m := chattest.NewClient(t, conn, conn.LocalAddr().String())
	m.Background()
	m.WaitForPart("* welcome ")
	return m
}

// TestDemoShutdownDoesNotWaitForHandshakes: a TLS room with an hour's
// write timeout and 30 s of grace, a member, and a connection that never
// sends its ClientHello: SIGTERM tells the member and exits 0 at once,
// well inside the grace it would otherwise wait out.
func TestDemoShutdownDoesNotWaitForHandshakes(t *testing.T) {
	t.Parallel()
	cert := chattest.SelfSigned(t)
	certFile, keyFile := cert.WriteFiles(t, t.TempDir())
	d := startDemo(t, "-tls-cert", certFile, "-tls-key", keyFile, "-write-timeout", "1h", "-grace", "30s")

	m := joinDemo(t, d.addr, func() (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: waitLimit}, "tcp", d.addr, cert.Client)
	})
	silent, err := net.Dial("tcp", d.addr)
	require.NoError(t, err)
	defer silent.Close()

	took := d.stop()
	m.WaitForPart("* server shutting down")
	t.Logf("exited %v after SIGTERM, with a handshake pending", took.Round(time.Millisecond))
}

// TestDemoKeepsTalkingWithAStalledLog: the program's stderr is a pipe that
// nobody reads (its 64 KiB fill after a few hundred lines), and 2 000
// clients come and go; the room still welcomes newcomers and relays their
// lines. Once the log is read again, it says how many records it dropped.
func TestDemoKeepsTalkingWithAStalledLog(t *testing.T) {
	t.Parallel()
	d := startDemo(t) // from here on nobody reads its log
	for range 2000 {
		c, err := net.Dial("tcp", d.addr)
		require.NoError(t, err)
		bufio.NewReader(c).ReadString('\n') // the welcome
		c.Close()
	}
	a := joinDemo(t, d.addr, nil)
	b := joinDemo(t, d.addr, nil)
	a.Send("the log is stalled, the room is not\n")
	b.WaitForPart("say: the log is stalled, the room is not")

	line := d.logLine("log records dropped", "dropped=")
	t.Logf("once read again, the log said: %s", strings.TrimSpace(line))
	d.stop()
}

// TestDemoChurnHoldsBoundedDescriptors (a long test:
// CHATROOM_LONG_TESTS=1): for 5 s, four dialers connect and hang up with
// no data as fast as they can, into a room of at most 50 clients; the
// descriptors the program holds stay bounded, however many connect, and
// two members keep chatting without being evicted. (From loopback, exempt
// from the per-address limits: those are TestChurnIsBounded's, in the
// engine.)
func TestDemoChurnHoldsBoundedDescriptors(t *testing.T) {
	chattest.Long(t)
	t.Parallel()
	d := startDemo(t, "-max-clients", "50")
	a := joinDemo(t, d.addr, nil)
	b := joinDemo(t, d.addr, nil)
	own := d.proc("fds")

	end := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	var dials atomic.Int64
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(end) {
				if c, err := net.DialTimeout("tcp", d.addr, time.Second); err == nil {
					dials.Add(1)
					c.Close()
				}
			}
		})
	}
	peak, said := 0, 0
	for time.Now().Before(end) {
		peak = max(peak, d.proc("fds"))
		a.Send(fmt.Sprintf("line %d\n", said))
		b.WaitForPart(fmt.Sprintf("say: line %d", said))
		said++
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("%d connects in 5 s; descriptors held: %d before, %d at the peak; %d lines between two members meanwhile",
		dials.Load(), own, peak, said)
	// The bound: its own, the 256 connections that may wait for admission,
	// the 50 members, and the members that left, whose connection stays
	// open until the room's next write sends what they were owed: the room
	// writes at least every 256 requests, one leave each here, and on a
	// busy machine a batch holds many leaves.
	assert.LessOrEqual(t, peak, own+256+50+256, "descriptors in front of the room")
	d.stop()
}

// TestDemoCutsSquatters: with -idle 2s, a client that sends an empty line,
// or one that is empty once cleaned, every half second is cut off all the
// same, 2 s after it joined.
func TestDemoCutsSquatters(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "-idle", "2s")
	t.Run("squatters", func(t *testing.T) { // returns once its parallel rows have
		for _, line := range []string{"\n", "\x00\x1b\r\n"} {
			t.Run(strconv.Quote(line), func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				m := joinDemo(t, d.addr, nil)
				stop := make(chan struct{})
				go func() {
					tick := time.NewTicker(500 * time.Millisecond)
					defer tick.Stop()
					for {
						if _, err := io.WriteString(m.Conn, line); err != nil {
							return
						}
						select {
						case <-tick.C:
						case <-stop:
							return
						}
					}
				}()
				m.WaitForPart("* idle timeout")
				close(stop)
				took := time.Since(start)
				t.Logf("%q every 500 ms: cut off after %v", line, took.Round(time.Millisecond))
				assert.GreaterOrEqual(t, took, 2*time.Second)
			})
		}
	})
	d.stop()
}

// TestDemoHalfLinesCostWhatWasSent (a long test:
// CHATROOM_LONG_TESTS=1): with -buffer 65536, 500 clients each
// send 100 bytes of a line and go quiet. The program's resident memory
// grows by about what they sent, not by a 64 KiB read buffer each (32 MiB).
func TestDemoHalfLinesCostWhatWasSent(t *testing.T) {
	chattest.Long(t)
	t.Parallel()
	const clients = 500
	d := startDemo(t, "-buffer", "65536")
	var members []*chattest.Client
	for range clients {
		members = append(members, joinDemo(t, d.addr, nil))
	}
	members[clients-1].Send("all here\n")
	members[0].WaitForPart("say: all here") // every arrival's notice reached everyone before this
	before := d.proc("VmRSS")

	half := strings.Repeat("h", 100)
	for _, m := range members {
		m.Send(half)
	}
	// Resident memory, sampled for a second: it only grows, so the last
	// reading is the peak.
	var after int
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		after = d.proc("VmRSS")
	}
	perClient := float64(after-before) * 1024 / clients
	t.Logf("resident memory %d KiB, then %d KiB with %d half lines of 100 bytes: %.0f bytes per client (a read buffer is 65538)",
		before, after, clients, perClient)
	assert.Less(t, perClient, 16384.0, "half lines pin read buffers")

	for _, m := range members {
		m.Send(" done\n")
	}
	members[0].WaitForPart("say: " + half + " done")
	d.stop()
}

// TestDemoLogsHandshakeFloods: 50 connections to a TLS room that send
// garbage instead of a ClientHello are logged at info: the first with its
// address and error, the others counted in summaries, one a second while
// the flood lasts. When the 50 take less than a second, the other 49 are
// one summary; on a busy machine they can take longer.
func TestDemoLogsHandshakeFloods(t *testing.T) {
	t.Parallel()
	const flood = 50
	certFile, keyFile := chattest.SelfSigned(t).WriteFiles(t, t.TempDir())
	d := startDemo(t, "-tls-cert", certFile, "-tls-key", keyFile)
	start := time.Now()
	for range flood {
		c, err := net.Dial("tcp", d.addr)
		require.NoError(t, err)
		io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
		io.Copy(io.Discard, c) // until the room hangs up, having logged the failure
		c.Close()
	}
	took := time.Since(start)

	first := d.logLine(`msg="TLS handshake failed"`)
	assert.Contains(t, first, "level=INFO")
	assert.Contains(t, first, "addr=127.0.0.1:")
	// Every failure is told once: as the first of a burst, or counted in
	// a summary. (A failure after a second without any starts a burst.)
	count := regexp.MustCompile(`msg="TLS handshakes failed" count=(\d+) `)
	told, records := 1, 1
	for told < flood {
		line := d.logLine(`msg="TLS handshake`)
		records++
		assert.Contains(t, line, "level=INFO")
		if m := count.FindStringSubmatch(line); m != nil {
			n, err := strconv.Atoi(m[1])
			require.NoError(t, err)
			told += n
		} else {
			told++
		}
	}
	t.Logf("%d failed handshakes in %v, logged in %d records", flood, took.Round(time.Millisecond), records)
	assert.Equal(t, flood, told, "failures logged or counted")
	if took < time.Second {
		assert.Equal(t, 2, records, "the first, then the other 49 as one summary")
	} else {
		assert.Less(t, records, flood, "one record for each failure")
	}
	d.stop()
}

// TestDemoFloodersWaitTheirTurn: with flood control off, four clients each
// send 10 000 lines as fast as the connection takes them, while alice says
// one line: bob hears her during the flood, and every flooder's lines,
// none lost.
func TestDemoFloodersWaitTheirTurn(t *testing.T) {
	t.Parallel()
	const flooders, lines = 4, 10000
	// An outbox that holds the whole flood: how fast this test reads is not
	// what is tested. Under the race detector, beside other work, its
	// reader fell more than the default outbox (1 024 lines) behind the
	// demo, and bob was rightly cut off as too slow.
	d := startDemo(t, "-rate", "0", "-outbox", strconv.Itoa(flooders*lines+64))
	alice := joinDemo(t, d.addr, nil)
	bob := joinDemo(t, d.addr, nil)
	var wg sync.WaitGroup
	for i := range flooders {
		f := joinDemo(t, d.addr, nil)
		wg.Go(func() {
			var b strings.Builder
			for n := range lines {
				fmt.Fprintf(&b, "flood %d %d %s\n", i, n, strings.Repeat("x", 64))
			}
			f.Conn.SetWriteDeadline(time.Now().Add(waitLimit))
			_, err := io.WriteString(f.Conn, b.String())
			assert.NoError(t, err)
		})
	}
	alice.Send("still here\n")
	seen, heard := 0, false
	defer func() {
		if t.Failed() {
			t.Logf("bob heard alice: %v, and %d of %d flood lines (%d dropped unread)", heard, seen, flooders*lines, bob.Dropped())
		}
	}()
	for !heard || seen < flooders*lines {
		switch line := bob.Line(); { // stops the test if bob is cut off
		case strings.Contains(line, "say: still here"):
			heard = true
		case strings.Contains(line, "say: flood "):
			seen++
		}
	}
	wg.Wait()
	d.stop()
}
