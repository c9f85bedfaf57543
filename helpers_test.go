package chatroom_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait in the tests: a condition that has not come
// true by then has failed, however slow the machine.
const waitLimit = 10 * time.Second

// testTime is the fixed clock of the tests, and ts how it is printed.
var testTime = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

const ts = "2026-11-28 09:30:00"

func fixedClock() time.Time { return testTime }

// noFloodControl turns WithRateLimit off, for tests that flood the room on
// purpose to load it.
var noFloodControl = chatroom.WithRateLimit(0, 0)

// startRoom serves a room on a fresh 127.0.0.1 port and closes it when the
// test ends, checking that Serve then returns ErrRoomClosed.
func startRoom(t testing.TB, opts ...chatroom.Option) (*chatroom.Room, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return serveOn(t, ln, opts...), ln.Addr().String()
}

// serveOn serves a room on ln until the test ends.
func serveOn(t testing.TB, ln net.Listener, opts ...chatroom.Option) *chatroom.Room {
	t.Helper()
	room := chatroom.NewRoom(append([]chatroom.Option{chatroom.WithClock(fixedClock)}, opts...)...)
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, room.Close())
		select {
		case err := <-served:
			assert.ErrorIs(t, err, chatroom.ErrRoomClosed)
		case <-time.After(waitLimit):
			t.Error("Serve did not return after Close")
		}
	})
	return room
}

// client is a test's end of one connection.
type client struct {
	t        testing.TB
	conn     net.Conn
	in       *bufio.Reader
	name     string        // the name the room gives it
	patience time.Duration // how long a read or write may wait; 0 means waitLimit
}

// dial connects to the room at addr and reads its welcome, which must say
// that online clients are now in the room.
func dial(t testing.TB, addr string, online int) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitLimit)
	require.NoError(t, err)
	return welcome(t, conn, conn.LocalAddr().String(), online)
}

// dialPair connects two clients, a then b, to an empty room at addr, and
// returns once a has heard b arrive.
func dialPair(t testing.TB, addr string) (a, b *client) {
	t.Helper()
	a = dial(t, addr, 1)
	b = dial(t, addr, 2)
	a.expect(ts+" * %s joined", b)
	return a, b
}

// welcome wraps conn and expects the welcome line for name.
func welcome(t testing.TB, conn net.Conn, name string, online int) *client {
	t.Helper()
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, in: bufio.NewReader(conn), name: name}
	c.expect("* welcome %s, %d online", name, online)
	return c
}

// send writes raw bytes to the room.
func (c *client) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(c.wait()))
	_, err := io.WriteString(c.conn, s)
	require.NoError(c.t, err)
}

// line reads the next line, without its newline.
func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(c.wait()))
	s, err := c.in.ReadString('\n')
	require.NoError(c.t, err, "reading a line; got %q so far", s)
	return strings.TrimSuffix(s, "\n")
}

// wait is how long one read or write may wait: patience, or waitLimit.
func (c *client) wait() time.Duration {
	if c.patience > 0 {
		return c.patience
	}
	return waitLimit
}

// String is the client's name, so that "%s" of a client is its name.
func (c *client) String() string { return c.name }

// expect reads the next line and checks it is exactly the formatted want.
func (c *client) expect(format string, args ...any) {
	c.t.Helper()
	want := format
	if len(args) > 0 {
		want = fmt.Sprintf(format, args...)
	}
	assert.Equal(c.t, want, c.line())
}

// expectClosed checks that the room closes the connection with nothing
// more to read.
func (c *client) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(c.wait()))
	s, err := c.in.ReadString('\n')
	assert.Empty(c.t, s)
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Errorf("want the connection closed, got %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// waitFor reads lines until want arrives, skipping others, and returns how
// many it skipped.
func (c *client) waitFor(want string) int {
	c.t.Helper()
	for skipped := 0; ; skipped++ {
		if c.line() == want {
			return skipped
		}
	}
}

// eventually waits until cond holds, polling, and fails the test if it
// does not within waitLimit: the tests' stand-in for a notification the
// room does not give. Unlike testify's Eventually it runs cond in the
// caller's goroutine, so cond may count goroutines.
func eventually(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", waitLimit, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// namedConn gives a connection a name: the room calls a client by its
// RemoteAddr.
type namedConn struct {
	net.Conn
	name string
}

func (c namedConn) RemoteAddr() net.Addr { return nameAddr(c.name) }

type nameAddr string

func (a nameAddr) Network() string { return "name" }
func (a nameAddr) String() string  { return string(a) }

// pipeRoom makes a room for clients over net.Pipe (see pipeClient), with
// the tests' clock, and closes it when the test ends.
func pipeRoom(t testing.TB, opts ...chatroom.Option) *chatroom.Room {
	t.Helper()
	room := chatroom.NewRoom(append([]chatroom.Option{chatroom.WithClock(fixedClock)}, opts...)...)
	t.Cleanup(func() { assert.NoError(t, room.Close()) })
	return room
}

// pipeClient joins room over net.Pipe under name, served by ServeConn, and
// returns the client and a channel that gets ServeConn's result.
func pipeClient(t testing.TB, room *chatroom.Room, name string, online int) (*client, <-chan error) {
	t.Helper()
	local, remote := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- room.ServeConn(namedConn{remote, name}) }()
	return welcome(t, local, name, online), done
}

// discard reads and drops whatever comes to c from now on, so that its
// writer never waits: a client the test does not read from.
func discard(c *client, _ <-chan error) {
	c.conn.SetReadDeadline(time.Time{}) // what expect left would stop it
	go io.Copy(io.Discard, c.in)
}

// selfSigned makes a certificate for 127.0.0.1 and returns a server
// config and a client config that trusts it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	server, client, err := selfSignedConfigs()
	require.NoError(t, err)
	return server, client
}

func selfSignedConfigs() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "chatroom test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: pool}, nil
}

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	return len(entries)
}

// testPKI is a CA, a server certificate for 127.0.0.1 signed by it, and a
// server config that asks for and verifies client certificates the CA
// signed.
type testPKI struct {
	server *tls.Config
	pool   *x509.CertPool
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newTestPKI() (*testPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "chatroom test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &testPKI{pool: x509.NewCertPool(), ca: ca, caKey: caKey}
	p.pool.AddCert(ca)
	serverCert, err := p.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	p.server = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool}
	return p, nil
}

// issue signs tmpl with the CA and returns it with a fresh key.
func (p *testPKI) issue(tmpl *x509.Certificate) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// client returns a client config with a certificate for name, trusting the
// CA.
func (p *testPKI) client(name string) *tls.Config {
	cert, err := p.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		panic(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: p.pool}
}
