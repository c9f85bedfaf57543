package chatroom

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chatroom-go/chatroom/internal/chattest"
)

// The fuzz targets of the unexported pieces: the line framer and the
// sanitizer. Each asserts invariants against a model, not just "no panic".
// Run one with: go test -run XXX -fuzz FuzzLineReader .

// splitReader serves data in two reads, split at cut, the way a network
// hands a line over in pieces, then io.EOF forever.
type splitReader struct {
	parts [][]byte
}

func (r *splitReader) Read(p []byte) (int, error) {
	for len(r.parts) > 0 && len(r.parts[0]) == 0 {
		r.parts = r.parts[1:]
	}
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.parts[0])
	r.parts[0] = r.parts[0][n:]
	return n, nil
}

func newSplitReader(data []byte, cut int) *splitReader {
	if len(data) == 0 {
		return &splitReader{}
	}
	cut = ((cut % len(data)) + len(data)) % len(data)
	return &splitReader{parts: [][]byte{data[:cut], data[cut:]}}
}

// frame is what the model says the framer yields for one line.
type frame struct {
	line    string
	tooLong bool
}

// modelFrames splits data the simple way: at every "\n", one "\r" dropped
// before it, a last unterminated piece kept if non-empty.
func modelFrames(data []byte, max int) []frame {
	var out []frame
	pieces := bytes.Split(data, []byte("\n"))
	if last := len(pieces) - 1; len(pieces[last]) == 0 {
		pieces = pieces[:last] // data ended with a newline, or was empty
	}
	for _, p := range pieces {
		p = bytes.TrimSuffix(p, []byte("\r"))
		if len(p) > max {
			out = append(out, frame{tooLong: true})
		} else {
			out = append(out, frame{line: string(p)})
		}
	}
	return out
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("hello\nworld\r\n"), 3, 16)
	f.Add([]byte("exactly sixteen!\nseventeen bytes!!\n"), 10, 16)
	f.Add([]byte("a\r\r\n\r\n\n\rb"), 2, 4)
	f.Add([]byte("no newline at all, and longer than the buffer"), 7, 8)
	f.Add([]byte(""), 0, 1)
	f.Fuzz(func(t *testing.T, data []byte, cut, max int) {
		max = 1 + (max%64+64)%64 // 1..64: small limits reach every branch
		lr := newLineReader(newSplitReader(data, cut), nil, max, newBufferPool(max))
		var got []frame
		for {
			line, tooLong, err := lr.next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(line) > max {
				t.Fatalf("line of %d bytes, limit %d", len(line), max)
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q holds a newline", line)
			}
			got = append(got, frame{string(line), tooLong})
			if len(got) > len(data)+1 {
				t.Fatal("more lines than bytes")
			}
		}
		want := modelFrames(data, max)
		if len(got) != len(want) {
			t.Fatalf("input %q, limit %d: got %d frames %+v, want %d %+v", data, max, len(got), got, len(want), want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("input %q, limit %d: frame %d is %+v, want %+v", data, max, i, got[i], want[i])
			}
		}
	})
}

// forbidden is the SPEC's list of runes that never reach a receiver,
// spelled apart from the sanitiser's own dropRune so that each checks the
// other.
func forbidden(r rune) bool {
	switch {
	case r == '\t' || r != ' ' && unicode.Is(unicode.Zs, r): // blanks are spaces
		return true
	case unicode.IsControl(r): // C0, DEL, C1
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return slices.Contains([]rune{0x061c, 0x200e, 0x200f, 0x2028, 0x2029, 0x200b, 0x2060, 0xfeff}, r)
}

func FuzzClean(f *testing.F) {
	f.Add([]byte("ex\u200bit \u2028 \u061c\u200e\ufeff \u200d kept"), 1024)
	f.Add([]byte("plain text"), 1024)
	f.Add([]byte("\x1b[31mred\x1b[0m \u202eevil\u2069"), 1024)
	f.Add([]byte("bad \xff\xfe bytes"), 8)
	f.Add([]byte("tab\tand\x7fDEL\u0085C1"), 1024)
	f.Add([]byte("héllo wörld ✓ 你好"), 10)
	f.Fuzz(func(t *testing.T, raw []byte, max int) {
		max = 1 + (max%2048+2048)%2048
		out := appendClean(nil, raw, max)
		if len(out) > max {
			t.Fatalf("%d bytes out, limit %d", len(out), max)
		}
		if !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 out: %q", out)
		}
		for _, r := range string(out) {
			if forbidden(r) {
				t.Fatalf("rune %U survived in %q", r, out)
			}
		}
		// No run of blanks, and none at either end.
		if bytes.Contains(out, []byte("  ")) || bytes.HasPrefix(out, []byte(" ")) || bytes.HasSuffix(out, []byte(" ")) {
			t.Fatalf("blanks survived in %q", out)
		}
		// Printable text with single inner spaces round-trips unchanged.
		if len(raw) <= max && utf8.Valid(raw) && !bytes.ContainsFunc(raw, forbidden) &&
			!bytes.Contains(raw, []byte("  ")) && !bytes.HasPrefix(raw, []byte(" ")) && !bytes.HasSuffix(raw, []byte(" ")) &&
			!bytes.Equal(out, raw) {
			t.Fatalf("clean text changed: %q became %q", raw, out)
		}
		// Cleaning is idempotent.
		if again := appendClean(nil, out, max); !bytes.Equal(again, out) {
			t.Fatalf("cleaning twice changed %q to %q", out, again)
		}
		// Appending keeps what was there.
		prefix := []byte("kept: ")
		if got := appendClean(prefix, raw, max); !bytes.Equal(got[:len(prefix)], []byte("kept: ")) || !bytes.Equal(got[len(prefix):], out) {
			t.Fatalf("appendClean changed its prefix or its result")
		}
	})
}

// TestLineReaderSplits runs the framer against the model on every split of
// a few inputs, so the partial-read cases run on every test run, not only
// when fuzzing.
func TestLineReaderSplits(t *testing.T) {
	t.Parallel()
	inputs := []string{
		"hello\nworld\r\n", "sixteen bytes ok\nseventeen bytes!!\n", "\r\n\r\r\n\n",
		"tail without newline", "x\n" + string(bytes.Repeat([]byte("y"), 40)) + "\nz",
	}
	for _, in := range inputs {
		for cut := range len(in) {
			lr := newLineReader(newSplitReader([]byte(in), cut), nil, 16, newBufferPool(16))
			var got []frame
			for {
				line, tooLong, err := lr.next()
				if err != nil {
					break
				}
				got = append(got, frame{string(line), tooLong})
			}
			want := modelFrames([]byte(in), 16)
			if len(got) != len(want) {
				t.Fatalf("%q cut at %d: got %+v, want %+v", in, cut, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%q cut at %d: got %+v, want %+v", in, cut, got, want)
				}
			}
		}
	}
}

// pipeConn names one end of a net.Pipe: the room calls a client by its
// RemoteAddr.
type pipeConn struct {
	net.Conn
	name string
}

func (c pipeConn) RemoteAddr() net.Addr { return pipeAddr(c.name) }

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// FuzzRoomLines sends arbitrary input, in two pieces, from client a into a
// room and checks what b hears and what a is told, line by line, against
// the model: too-long lines answered to a alone, empty lines ignored,
// "exit" ending it, commands doing what the SPEC's table says (roomModel),
// every other line relayed cleaned, whole, in order.
func FuzzRoomLines(f *testing.F) {
	f.Add([]byte("hello\n\nworld\r\n"), 3, 16)
	f.Add([]byte("way too long for the buffer\nok\n"), 5, 8)
	f.Add([]byte("before\n  EXIT \nafter\n"), 9, 32)
	f.Add([]byte("\x1b[2J\u202eevil\xff\r\n"), 1, 32)
	f.Add([]byte("\r\r\r\r\r\r\r\r\r\r\r\r"), 4, 4)
	f.Add([]byte("/nick Ann\n/who\n/me waves\n/msg B hi\n/msg ann self\n/msg zed x\n//slash\n/help\n/nick b\n/QUIT\n"), 11, 40)
	f.Fuzz(func(t *testing.T, data []byte, cut, max int) {
		max = 1 + (max%64+64)%64
		const sentinel = "end of fuzz input"
		max = max + len(sentinel) // the sentinel must fit
		stamp := time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)
		ts := "2026-11-28 09:30:00"
		room := NewRoom(WithBufferSize(max), WithClock(func() time.Time { return stamp }), WithWriteTimeout(0),
			WithRateLimit(0, 0))
		defer room.Close()

		join := func(name string) (net.Conn, *bufio.Reader) {
			local, remote := net.Pipe()
			local.SetDeadline(time.Now().Add(chattest.WaitLimit))
			go room.ServeConn(pipeConn{remote, name})
			return local, bufio.NewReader(local)
		}
		readLine := func(r *bufio.Reader) string {
			s, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading: %v after %q", err, s)
			}
			return strings.TrimSuffix(s, "\n")
		}
		a, fromA := join("a")
		readLine(fromA) // welcome
		b, fromB := join("b")
		defer b.Close()
		readLine(fromB) // welcome
		readLine(fromA) // b joined

		// The model: what b should hear, and what a should be told.
		input := append(append(bytes.Clone(data), '\n'), sentinel+"\n"...)
		m := roomModel{ts: ts, name: "a"}
		for _, fr := range modelFrames(input, max) {
			if fr.tooLong {
				m.toA = append(m.toA, "* error: message too long (max "+strconv.Itoa(max)+" bytes)")
				continue
			}
			if !m.line(string(appendClean(nil, []byte(fr.line), max))) {
				break
			}
		}
		wantA, wantB := m.toA, m.toB

		go func() { // a's writes block on the pipe, and fail after exit
			sr := newSplitReader(input, cut)
			for _, p := range sr.parts {
				if _, err := a.Write(p); err != nil {
					return
				}
			}
		}()
		var gotB []string
		for len(gotB) < len(wantB) {
			gotB = append(gotB, readLine(fromB))
		}
		if !slices.Equal(gotB, wantB) {
			t.Fatalf("input %q, max %d:\nb got  %q\nb want %q", data, max, gotB, wantB)
		}
		for _, line := range gotB {
			if strings.ContainsFunc(line, forbidden) || !utf8.ValidString(line) {
				t.Fatalf("relayed line %q is not clean", line)
			}
		}

		// Shutdown flushes what a is owed, then says goodbye.
		done := make(chan error, 1)
		go func() { done <- room.Shutdown(context.Background()) }()
		var gotA []string
		for {
			s, err := fromA.ReadString('\n')
			if err != nil {
				break
			}
			gotA = append(gotA, strings.TrimSuffix(s, "\n"))
		}
		if n := len(gotA); n > 0 && gotA[n-1] == "* server shutting down" {
			gotA = gotA[:n-1]
		}
		if !slices.Equal(gotA, wantA) {
			t.Fatalf("input %q, max %d:\na got  %q\na want %q", data, max, gotA, wantA)
		}
		for { // drain b, so that Shutdown can flush it
			if _, err := fromB.ReadString('\n'); err != nil {
				break
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// roomModel is what client a's lines should do in a room with b, spelled
// from the SPEC apart from the code: what b hears, and what a is told.
type roomModel struct {
	ts       string
	name     string // a's name
	renames  int    // the renames a made
	toA, toB []string
}

// line applies one clean line of a's; it reports false once a has left.
func (m *roomModel) line(text string) bool {
	say := func(text string) { m.toB = append(m.toB, m.ts+" "+m.name+" say: "+text) }
	switch {
	case text == "":
		return true
	case isExit([]byte(text)):
		m.toB = append(m.toB, m.ts+" * "+m.name+" left")
		m.toA = append(m.toA, "* bye")
		return false
	case strings.HasPrefix(text, "//"):
		say(text[1:])
		return true
	case !strings.HasPrefix(text, "/"):
		say(text)
		return true
	}
	word, rest, _ := strings.Cut(text, " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(word) {
	case "/quit":
		return m.line("exit")
	case "/nick":
		switch {
		case !validNick(rest):
			m.toA = append(m.toA, "* error: invalid nickname")
		case m.renames >= renameBurst: // the fuzz input comes far faster than renames refill
			m.toA = append(m.toA, "* error: too many renames, wait a moment")
		case strings.EqualFold(rest, "b"):
			m.toA = append(m.toA, "* error: nickname taken")
		default:
			m.renames++
			m.toA = append(m.toA, "* you are now "+rest)
			if rest != m.name {
				m.toB = append(m.toB, m.ts+" * "+m.name+" is now "+rest)
			}
			m.name = rest
		}
	case "/who":
		names := []string{m.name, "b"}
		slices.SortFunc(names, func(x, y string) int {
			return cmp.Or(cmp.Compare(strings.ToLower(x), strings.ToLower(y)), cmp.Compare(x, y))
		})
		m.toA = append(m.toA, "* 2 online: "+strings.Join(names, ", "))
	case "/me":
		switch {
		case rest == "":
			m.toA = append(m.toA, "* error: usage: /me TEXT")
		case readsAsNotice(rest):
			m.toA = append(m.toA, "* error: /me cannot read as a notice (joined, left, is now...)")
		default:
			m.toB = append(m.toB, m.ts+" * "+m.name+" "+rest)
		}
	case "/msg":
		to, msg, _ := strings.Cut(rest, " ")
		msg = strings.TrimSpace(msg)
		line := m.ts + " " + m.name + " whispers: " + msg
		switch {
		case to == "" || msg == "":
			m.toA = append(m.toA, "* error: usage: /msg NAME TEXT")
		case strings.EqualFold(to, "b"):
			m.toB = append(m.toB, line)
		case strings.EqualFold(to, m.name):
			m.toA = append(m.toA, line)
		default:
			m.toA = append(m.toA, "* error: no such client "+to)
		}
	case "/help":
		m.toA = append(m.toA, strings.Split(strings.TrimSuffix(string(helpLines[0]), "\n"), "\n")...)
	default:
		m.toA = append(m.toA, "* error: unknown command "+word+" (try /help)")
	}
	return true
}
