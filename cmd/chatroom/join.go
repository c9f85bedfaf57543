package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

const joinUsage = `Usage: chatroom join [flags] ADDR

Joins the room at ADDR (host:port): prints every line that arrives and
sends every line you type. "exit" or the end of input leaves the room.

Flags:
`

// joinConfig is what join's flags say.
type joinConfig struct {
	useTLS   bool
	caFile   string
	insecure bool
	timeout  time.Duration
}

// joinFlags returns join's flag set, which fills c.
func joinFlags(c *joinConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("chatroom join", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), joinUsage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.useTLS, "tls", false, "connect with TLS")
	fs.StringVar(&c.caFile, "ca", "", "with -tls, trust the certificates in this PEM `file` (for a self-signed server)")
	fs.BoolVar(&c.insecure, "insecure", false, "with -tls, do not verify the server's certificate at all")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "give up connecting, or waiting for the room's welcome, after this long")
	return fs
}

// join connects to the room at the address in args, copies what arrives to
// stdout and what stdin holds to the room, until either ends.
func join(args []string, stdin io.Reader, stdout io.Writer) error {
	var c joinConfig
	fs := joinFlags(&c)
	// Flags may come after the address too: "join 127.0.0.1:33333 -tls".
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	addr := fs.Arg(0)
	if err := fs.Parse(fs.Args()[min(1, fs.NArg()):]); err != nil {
		return flagError(err)
	}
	if addr == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{"join: want exactly one address"}
	}
	if (c.caFile != "" || c.insecure) && !c.useTLS {
		return usageError{"join: -ca and -insecure need -tls"}
	}

	dialer := &net.Dialer{Timeout: c.timeout}
	var conn net.Conn
	var err error
	if c.useTLS {
		cfg := &tls.Config{InsecureSkipVerify: c.insecure}
		if c.caFile != "" {
			pem, err := os.ReadFile(c.caFile)
			if err != nil {
				return err
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("join: no certificate in %s", c.caFile)
			}
		}
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, cfg)
		if errors.As(err, new(tls.RecordHeaderError)) {
			return fmt.Errorf("join: %s does not speak TLS: join it without -tls (%w)", addr, err)
		}
	} else {
		conn, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()

	fromRoom := bufio.NewReader(conn)
	if err := greet(conn, fromRoom, addr, c.useTLS, c.timeout, stdout); err != nil {
		return err
	}
	// Everything else the room sends goes to stdout until it closes the
	// connection: after "* bye", a shutdown, or an error.
	received := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdout, fromRoom)
		received <- err
	}()
	typed := make(chan error, 1)
	go func() {
		typed <- send(conn, stdin)
	}()

	select {
	case err := <-received:
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		return err
	case err := <-typed:
		if err != nil && !errors.Is(err, errWrite) {
			return err
		}
		// End of input or "exit": the room answers "* bye" and closes;
		// wait for that, but not forever. A failed write means the room
		// closed first, and what it said on the way out is still to print.
		select {
		case err := <-received:
			return err
		case <-time.After(c.timeout):
			return errors.New("join: the room did not close the connection")
		}
	}
}

// greet waits, at most timeout, for the first line the room sends (its
// welcome, or why it refuses the client) and copies it to stdout. Nothing
// typed is sent before it, so a server that says nothing first is not a
// room: greet returns an error that says so, naming -tls when the client
// spoke plain TCP, because a TLS server waits for the client's handshake
// and closes the connection, or lets it hang, without a byte of text.
func greet(conn net.Conn, in *bufio.Reader, addr string, useTLS bool, timeout time.Duration, stdout io.Writer) error {
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	line, err := in.ReadSlice('\n')
	hint := ""
	if !useTLS {
		hint = ": if it is a TLS room, join it with -tls"
	}
	switch {
	case !useTLS && looksLikeTLS(line):
		return fmt.Errorf("join: %s answered in TLS: it is a TLS room, join it with -tls", addr)
	case err == nil || errors.Is(err, bufio.ErrBufferFull):
		if _, err := stdout.Write(line); err != nil {
			return err
		}
		return conn.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("join: no welcome from %s within %v%s", addr, timeout, hint)
	case len(line) == 0 && errors.Is(err, io.EOF):
		return fmt.Errorf("join: %s closed the connection without a word%s", addr, hint)
	case len(line) == 0:
		return fmt.Errorf("join: no welcome from %s: %w%s", addr, err, hint)
	default: // part of a line, then the end: print what came
		if _, err := stdout.Write(line); err != nil {
			return err
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
}

// looksLikeTLS reports whether b starts as a TLS record does: an alert
// (0x15) or a handshake (0x16), then major version 3. A room's first line
// starts with "* ".
func looksLikeTLS(b []byte) bool {
	return len(b) >= 2 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 0x03
}

// errWrite marks a failed write to the room, as opposed to a failed read of
// the terminal.
var errWrite = errors.New("write to room")

// send copies typed lines to the room until "exit" or the end of input, and
// at the end of input sends "exit" itself, so the room says goodbye and the
// others see the client leave.
func send(conn net.Conn, stdin io.Reader) error {
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for in.Scan() {
		if _, err := fmt.Fprintf(conn, "%s\n", in.Bytes()); err != nil {
			return fmt.Errorf("%w: %w", errWrite, err)
		}
		if strings.EqualFold(strings.TrimSpace(in.Text()), "exit") {
			return nil
		}
	}
	if err := in.Err(); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "exit\n"); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}
