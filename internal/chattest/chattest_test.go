package chattest_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom/internal/chattest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a testing.TB that records failures instead of failing, to
// check that a helper fails when it should. FailNow ends the goroutine, as
// the real one does.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) FailNow() { runtime.Goexit() }

// failures runs f with a recorder on a goroutine of its own and returns
// what it recorded.
func failures(t *testing.T, f func(tb testing.TB)) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.errors
}

// serverPipe returns a Client on one end of a pipe, and the other end.
func serverPipe(t *testing.T) (*chattest.Client, net.Conn) {
	local, remote := net.Pipe()
	t.Cleanup(func() { remote.Close() })
	return chattest.NewClient(t, local, "me"), remote
}

func TestClientReadsLines(t *testing.T) {
	t.Parallel()
	for _, background := range []bool{false, true} {
		t.Run(fmt.Sprintf("background=%v", background), func(t *testing.T) {
			t.Parallel()
			c, room := serverPipe(t)
			if background {
				c.Background()
			}
			go func() {
				io.WriteString(room, "* welcome me, 1 online\nnoise\nmore noise\nthe one\nsay: a part of it\n")
				room.Close()
			}()
			c.Expect("* welcome %s, %d online", c, 1)
			assert.Equal(t, []string{"noise", "more noise"}, c.WaitFor("the one"))
			assert.Equal(t, "say: a part of it", c.WaitForPart("part"))
			c.ExpectClosed()
		})
	}
}

// TestClientCRLF: a client told that the room ends its lines in "\r\n"
// takes off both, and fails on a line that ends in a bare "\n"; one not
// told keeps the "\r".
func TestClientCRLF(t *testing.T) {
	t.Parallel()
	for _, background := range []bool{false, true} {
		t.Run(fmt.Sprintf("background=%v", background), func(t *testing.T) {
			t.Parallel()
			c, room := serverPipe(t)
			c.CRLF = true
			if background {
				c.Background()
			}
			go io.WriteString(room, "one\r\n\r\nbare\nlast\r\n")
			assert.Equal(t, "one", c.Line())
			assert.Equal(t, "", c.Line(), "an empty line")
			var bare string
			got := failures(t, func(tb testing.TB) {
				c.T = tb
				bare = c.Line()
			})
			require.Len(t, got, 1, "a line without its \"\\r\"")
			assert.Contains(t, got[0], `"bare"`)
			assert.Equal(t, "bare", bare, "returned all the same")
			c.T = t
			c.CRLF = false
			assert.Equal(t, "last\r", c.Line())
		})
	}
}

func TestClientFailsWhenItShould(t *testing.T) {
	t.Parallel()
	c, room := serverPipe(t)
	go io.WriteString(room, "something else\n")
	got := failures(t, func(tb testing.TB) {
		c.T = tb
		c.Expect("what was wanted")
	})
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "what was wanted")

	c.Patience = 20 * time.Millisecond
	got = failures(t, func(tb testing.TB) {
		c.T = tb
		c.Line()
		t.Error("Line returned without a line")
	})
	require.Len(t, got, 1, "no line within the patience")
}

func TestEventually(t *testing.T) {
	t.Parallel()
	n := 0
	chattest.Eventually(t, func() bool { n++; return n == 3 }, "counting")
	assert.Equal(t, 3, n)

	got := failures(t, func(tb testing.TB) {
		chattest.EventuallyWithin(tb, 20*time.Millisecond, func() bool { return false }, "never %s", "true")
	})
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "never true")
}

func TestLongTestsAreGated(t *testing.T) {
	t.Parallel()
	ran := false
	t.Run("gated", func(t *testing.T) {
		chattest.Long(t)
		ran = true
	})
	assert.Equal(t, os.Getenv(chattest.LongEnv) == "1" && !testing.Short(), ran)
}

func TestCertificates(t *testing.T) {
	t.Parallel()
	cert := chattest.SelfSigned(t)
	pki, err := chattest.NewPKI()
	require.NoError(t, err)
	alice, err := pki.Client("alice")
	require.NoError(t, err)
	for _, tt := range []struct {
		name           string
		server, client *tls.Config
		peer           string // the client's name as the server sees it
	}{
		{"self-signed", cert.Server, cert.Client, ""},
		{"a client certificate", pki.Server, alice, "alice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", tt.server)
			require.NoError(t, err)
			defer ln.Close()
			peer := make(chan string, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					peer <- err.Error()
					return
				}
				defer conn.Close()
				tc := conn.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					peer <- err.Error()
					return
				}
				name := ""
				if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
					name = certs[0].Subject.CommonName
				}
				peer <- name
			}()
			conn, err := tls.Dial("tcp", ln.Addr().String(), tt.client)
			require.NoError(t, err)
			defer conn.Close()
			assert.Equal(t, tt.peer, <-peer)
		})
	}
	certFile, keyFile := cert.WriteFiles(t, t.TempDir())
	_, err = tls.LoadX509KeyPair(certFile, keyFile)
	assert.NoError(t, err, "the files make a key pair")
}

func TestOpenFDs(t *testing.T) {
	// Not parallel: it counts this process's descriptors.
	before := chattest.OpenFDs(t, 0)
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	assert.Equal(t, before+1, chattest.OpenFDs(t, os.Getpid()))
	f.Close()
}
