package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a server process under test, on this machine's loopback.
type server struct {
	kind string
	addr string
	cmd  *exec.Cmd
}

// serverPaths says where to find the servers' binaries.
type serverPaths struct {
	redis        string   // redis-server
	nats         string   // nats-server
	room         string   // the demo program, cmd/chatroom
	baseline     string   // another build of it, or ""
	baselineArgs []string // flags for the baseline beside -addr and -outbox
}

// roomArgs are the flags the room is run with beside -addr and -outbox:
// flood control off, since every workload sends as fast as the window
// allows, far past what a person types.
var roomArgs = []string{"-rate", "0"}

// buildRoom builds the demo program of this workspace into a temporary
// directory, as "go build" builds it for a user, and returns its path and
// a function that removes it.
func buildRoom() (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "chatbench-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	path = filepath.Join(dir, "chatroom")
	cmd := exec.Command("go", "build", "-o", path, "github.com/chatroom-go/chatroom/cmd/chatroom")
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building the room: %v\n%s", err, out)
	}
	return path, cleanup, nil
}

// findBinary looks a peer up in PATH, then in $GOPATH/bin, where
// "go install" puts nats-server.
func findBinary(name, flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// errMissing marks a peer that is not installed.
var errMissing = errors.New("not installed")

// startServer starts a fresh server of kind on a free loopback port and
// waits until it accepts connections. A room is the demo program, run as
// a user runs it, with its log on stderr.
func startServer(kind string, paths serverPaths, outbox int) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var cmd *exec.Cmd
	switch kind {
	case "room", "baseline":
		bin, extra := paths.room, roomArgs
		if kind == "baseline" {
			bin, extra = paths.baseline, paths.baselineArgs
		}
		if bin == "" {
			return nil, fmt.Errorf("%s: no binary given", kind)
		}
		cmd = exec.Command(bin, append([]string{"-addr", addr, "-outbox", strconv.Itoa(outbox)}, extra...)...)
	case "room-ws":
		// The same demo, its clients on the WebSocket: the load tool
		// talks to the HTTP address, the TCP one is unused.
		web, err := freePort()
		if err != nil {
			return nil, err
		}
		tcp := addr
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(web))
		if paths.room == "" {
			return nil, fmt.Errorf("%s: no binary given", kind)
		}
		cmd = exec.Command(paths.room, append([]string{"-addr", tcp, "-http", addr, "-outbox", strconv.Itoa(outbox)}, roomArgs...)...)
	case "redis":
		if paths.redis == "" {
			return nil, fmt.Errorf("redis-server: %w (apt-get install redis-server)", errMissing)
		}
		cmd = exec.Command(paths.redis, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--maxclients", "20000", "--protected-mode", "no",
			"--logfile", "")
	case "nats":
		if paths.nats == "" {
			return nil, fmt.Errorf("nats-server: %w (go install github.com/nats-io/nats-server/v2@v2.15.2)", errMissing)
		}
		cmd = exec.Command(paths.nats, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	default:
		return nil, fmt.Errorf("unknown server %q", kind)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if os.Getenv("CHATBENCH_ROOM_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", kind, err)
	}
	s := &server{kind: kind, addr: addr, cmd: cmd}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not come up on %s: %v\n%s", kind, addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which Linux fixes at 100 for user space.
const clockTick = 10 * time.Millisecond

// cpu returns the CPU time the server has used so far, user and system,
// all threads, from /proc/PID/stat.
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// writeCalls returns how many write system calls (write, writev, send and
// the like) the server has made so far, all threads, from /proc/PID/io.
func (s *server) writeCalls() (int64, error) {
	v, err := s.procField("io", "syscw:")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// rss returns the server's resident memory in bytes, from /proc/PID/status.
func (s *server) rss() (int64, error) {
	v, err := s.procField("status", "VmRSS:")
	if err != nil {
		return 0, err
	}
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	return kb << 10, err
}

// procField returns the value of the line that starts with name in the
// server's /proc/PID/file, spaces trimmed.
func (s *server) procField(file, name string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", s.cmd.Process.Pid, file))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("no %s in /proc/%d/%s", name, s.cmd.Process.Pid, file)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
