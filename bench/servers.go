package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is the server under test, on this machine's loopback: one
// process, or for room-natsN, a nats-server and N rooms sharing one room
// through it, measured together.
type server struct {
	kind  string
	addr  string          // where clients connect: the first room
	addrs []string        // every room's address, for clients spread over the processes
	cmds  []*exec.Cmd     // every process: CPU, writes and memory are summed over them
	ended []chan struct{} // closed when the process of the same index has exited and been waited for
	logs  []*bytes.Buffer // each process's output, stdout and stderr (and ours too with CHATBENCH_ROOM_LOG); read only once it has ended
	dir   string          // a temporary directory to remove when stopped, or ""
}

// addrFor is the address client i connects to: the processes take turns.
func (s *server) addrFor(i int) string {
	if len(s.addrs) == 0 {
		return s.addr
	}
	return s.addrs[i%len(s.addrs)]
}

// natsRooms reports how many room processes share a room over NATS for
// kind "room-natsN", or 0 for any other kind.
func natsRooms(kind string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(kind, "room-nats"))
	if !strings.HasPrefix(kind, "room-nats") || err != nil || n < 1 || n > 9 {
		return 0
	}
	return n
}

// serverPaths says where to find the servers' binaries.
type serverPaths struct {
	redis        string   // redis-server
	nats         string   // nats-server
	room         string   // the demo program, cmd/chatroom
	baseline     string   // another build of it, or ""
	baselineArgs []string // flags for the baseline beside -addr, -outbox and -max-rooms
}

// roomArgs are the flags the room is run with beside -addr and opts.args:
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

// serverOpts are the settings a workload runs the room with.
type serverOpts struct {
	outbox   int // -outbox
	maxRooms int // -max-rooms, for the workloads that /join; 0: the demo's default, and the flag not given
	history  int // -history, for the recover workload; 0: the demo's default, and the flag not given
}

// args are the room's flags beside -addr: -outbox and, if set,
// -max-rooms and -history.
func (o serverOpts) args() []string {
	args := []string{"-outbox", strconv.Itoa(o.outbox)}
	if o.maxRooms > 0 {
		args = append(args, "-max-rooms", strconv.Itoa(o.maxRooms))
	}
	if o.history > 0 {
		args = append(args, "-history", strconv.Itoa(o.history))
	}
	return args
}

// startTries is how many times startServer starts a server whose port was
// taken before it could bind it.
const startTries = 5

// errPortTaken marks a server that exited at start because a port it was
// given was taken ("address already in use").
var errPortTaken = errors.New("a port was taken before the server bound it")

// startServer starts a fresh server of kind on free loopback ports and
// waits until it listens on them. A room is the demo program, run as a user
// runs it, with its log on stderr.
//
// The ports come from freePort, which listens on port 0 and closes the
// listener: another socket (a client's outgoing connection, another
// program's listener) can take one before the server binds it. The server
// then exits at start saying "address already in use", and startServer
// starts it again on new ports, at most startTries times in all. A server
// counts as up only once its own process listens on every port it was
// given (launch): a listener of another process on one of them does not
// pass for it.
func startServer(kind string, paths serverPaths, opts serverOpts) (*server, error) {
	for try := 1; ; try++ {
		s, err := startOnce(kind, paths, opts)
		if !errors.Is(err, errPortTaken) || try == startTries {
			return s, err
		}
	}
}

// startOnce starts a server of kind on ports picked once.
func startOnce(kind string, paths serverPaths, opts serverOpts) (*server, error) {
	if n := natsRooms(kind); n > 0 {
		return startNATSRooms(kind, n, paths, opts)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ports := []string{addr} // every address the server must listen on
	var cmd *exec.Cmd
	switch kind {
	case "room", "room-ws", "room-json", "room-irc", "baseline":
		bin, extra := paths.room, roomArgs
		if kind == "baseline" {
			bin, extra = paths.baseline, paths.baselineArgs
		}
		if bin == "" {
			return nil, fmt.Errorf("%s: no binary given", kind)
		}
		args := []string{"-addr", addr}
		if face := faceFlag(kind); face != "" {
			// The same demo, its clients on another listener beside its
			// TCP one, which stays unused: the load tool talks to that.
			if addr, err = freeAddr(); err != nil {
				return nil, err
			}
			args = append(args, face, addr)
			ports = append(ports, addr)
		}
		cmd = exec.Command(bin, slices.Concat(args, opts.args(), extra)...)
	case "redis":
		if paths.redis == "" {
			return nil, fmt.Errorf("redis-server: %w (apt-get install redis-server)", errMissing)
		}
		_, port, _ := net.SplitHostPort(addr)
		cmd = exec.Command(paths.redis, "--port", port, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--maxclients", "20000", "--protected-mode", "no",
			"--logfile", "")
	case "nats":
		if paths.nats == "" {
			return nil, fmt.Errorf("nats-server: %w (go install github.com/nats-io/nats-server/v2@v2.15.2)", errMissing)
		}
		_, port, _ := net.SplitHostPort(addr)
		cmd = exec.Command(paths.nats, "-a", "127.0.0.1", "-p", port)
	default:
		return nil, fmt.Errorf("unknown server %q", kind)
	}
	s := &server{kind: kind, addr: addr}
	if err := s.launch(cmd, ports...); err != nil {
		return nil, err
	}
	return s, nil
}

// faceFlag is the demo's flag for the listener that clients of kind use
// beside its TCP one: -http for the WebSocket (room-ws, room-json), -irc
// for IRC (room-irc); "" for a room whose clients use the TCP one.
func faceFlag(kind string) string {
	switch kind {
	case "room-ws", "room-json":
		return "-http"
	case "room-irc":
		return "-irc"
	}
	return ""
}

// startNATSRooms starts a nats-server with JetStream and n rooms sharing
// the room "bench" through it, each run as a user runs the demo with
// -nats.
func startNATSRooms(kind string, n int, paths serverPaths, opts serverOpts) (*server, error) {
	switch {
	case paths.nats == "":
		return nil, fmt.Errorf("nats-server: %w (go install github.com/nats-io/nats-server/v2@v2.15.2)", errMissing)
	case paths.room == "":
		return nil, fmt.Errorf("%s: no binary given", kind)
	}
	dir, err := os.MkdirTemp("", "chatbench-js-")
	if err != nil {
		return nil, err
	}
	s := &server{kind: kind, dir: dir}
	natsAddr, err := freeAddr()
	if err != nil {
		s.stop()
		return nil, err
	}
	_, natsPort, _ := net.SplitHostPort(natsAddr)
	if err := s.launch(exec.Command(paths.nats, "-js", "-sd", dir, "-a", "127.0.0.1", "-p", natsPort), natsAddr); err != nil {
		s.stop()
		return nil, err
	}
	for range n {
		addr, err := freeAddr()
		if err != nil {
			s.stop()
			return nil, err
		}
		args := slices.Concat([]string{"-addr", addr, "-nats", "nats://" + natsAddr, "-room", "bench"}, opts.args(), roomArgs)
		if err := s.launch(exec.Command(paths.room, args...), addr); err != nil {
			s.stop()
			return nil, err
		}
		s.addrs = append(s.addrs, addr)
	}
	s.addr = s.addrs[0]
	return s, nil
}

// launch starts cmd as one of s's processes and waits until it listens on
// every one of addrs, as /proc tells (listening). A process that exits
// first stops s; if it said "address already in use", the error wraps
// errPortTaken.
func (s *server) launch(cmd *exec.Cmd, addrs ...string) error {
	var ports []int
	for _, a := range addrs {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			return err
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("%s: port %q: %w", a, p, err)
		}
		ports = append(ports, port)
	}
	// Its output, stdout and stderr (Redis logs to stdout), both through
	// one writer: exec then calls its Write from one goroutine at a time.
	output := new(bytes.Buffer)
	var w io.Writer = output
	if os.Getenv("CHATBENCH_ROOM_LOG") != "" {
		w = io.MultiWriter(output, os.Stderr)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.kind, err)
	}
	ended := make(chan struct{})
	go func() { cmd.Wait(); close(ended) }()
	s.cmds, s.ended, s.logs = append(s.cmds, cmd), append(s.ended, ended), append(s.logs, output)
	deadline := time.Now().Add(10 * time.Second)
	for {
		up, err := listening(cmd.Process.Pid, ports)
		if up {
			return nil
		}
		select {
		case <-ended: // a flag it does not know, a port taken: its output tells
			s.stop()
			said := output.String()
			if strings.Contains(strings.ToLower(said), "address already in use") {
				return fmt.Errorf("%s exited at start (%v): %w\n%s", s.kind, cmd.ProcessState, errPortTaken, said)
			}
			return fmt.Errorf("%s exited at start (%v)\n%s", s.kind, cmd.ProcessState, said)
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("%s did not come up on %s (%v)\n%s", s.kind, strings.Join(addrs, " and "), err, output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listening reports whether process pid listens on TCP on each of ports:
// whether, among the sockets it holds open (/proc/PID/fd), there is for
// each port one in the state LISTEN on it (/proc/net/tcp and tcp6). An
// error says what could not be read, as the process may have just ended.
func listening(pid int, ports []int) (bool, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, err
	}
	held := make(map[string]bool) // socket inodes
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			held[strings.TrimSuffix(inode, "]")] = true
		}
	}
	found := make(map[int]bool)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			return false, err
		}
		// sl local_address rem_address st ... inode: the local address as
		// hex IP:PORT, the state 0A for LISTEN, the inode tenth.
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !held[f[9]] {
				continue
			}
			_, hex, _ := strings.Cut(f[1], ":")
			if port, err := strconv.ParseUint(hex, 16, 16); err == nil {
				found[int(port)] = true
			}
		}
	}
	for _, p := range ports {
		if !found[p] {
			return false, fmt.Errorf("nothing of its listens on port %d", p)
		}
	}
	return true, nil
}

// stop stops every process of s, the last started first.
func (s *server) stop() {
	for i := len(s.cmds) - 1; i >= 0; i-- {
		s.cmds[i].Process.Signal(syscall.SIGTERM)
		select {
		case <-s.ended[i]:
		case <-time.After(10 * time.Second):
			s.cmds[i].Process.Kill()
			<-s.ended[i]
		}
	}
	s.cmds, s.ended, s.logs = nil, nil, nil
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which Linux fixes at 100 for user space.
const clockTick = 10 * time.Millisecond

// exited wraps err, from reading process i's /proc files, with how the
// process ended and what it said, if it has ended (its files go when it is
// reaped, a moment before ended closes: it waits a second for that).
func (s *server) exited(i int, err error) error {
	select {
	case <-s.ended[i]:
		return fmt.Errorf("%s exited during the run (%v): %w\n%s", s.kind, s.cmds[i].ProcessState, err, s.logs[i].String())
	case <-time.After(time.Second):
		return err
	}
}

// cpu returns the CPU time the server has used so far, user and system,
// all threads of all its processes, from /proc/PID/stat.
func (s *server) cpu() (time.Duration, error) {
	var sum time.Duration
	for i, cmd := range s.cmds {
		d, err := processCPU(cmd.Process.Pid)
		if err != nil {
			return 0, s.exited(i, err)
		}
		sum += d
	}
	return sum, nil
}

func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
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
	return s.sum("io", "syscw:", func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) })
}

// rss returns the server's resident memory in bytes, from /proc/PID/status.
func (s *server) rss() (int64, error) {
	return s.sum("status", "VmRSS:", func(v string) (int64, error) {
		kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
		return kb << 10, err
	})
}

// descriptors returns how many file descriptors the server's processes
// hold open, from /proc/PID/fd: each connected client holds at least one.
func (s *server) descriptors() (int, error) {
	total := 0
	for i, cmd := range s.cmds {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
		if err != nil {
			return 0, s.exited(i, err)
		}
		total += len(fds)
	}
	return total, nil
}

// sum adds up, over the server's processes, the value of the line that
// starts with name in /proc/PID/file, as parse reads it.
func (s *server) sum(file, name string, parse func(string) (int64, error)) (int64, error) {
	var total int64
	for i, cmd := range s.cmds {
		v, err := procField(cmd.Process.Pid, file, name)
		if err != nil {
			return 0, s.exited(i, err)
		}
		n, err := parse(v)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// procField returns the value of the line that starts with name in
// /proc/PID/file, spaces trimmed.
func procField(pid int, file, name string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("no %s in /proc/%d/%s", name, pid, file)
}

// freeAddr returns a loopback address whose port was free a moment ago:
// the kernel's pick for port 0, its listener closed. Nothing holds it
// after that: see startServer.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
