package chatroom_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"time"

	"github.com/chatroom-go/chatroom"
)

// A room on a TCP listener: every line a client sends reaches the others.
func ExampleNewRoom() {
	room := chatroom.NewRoom(chatroom.WithMaxClients(100))
	defer room.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go room.Serve(ln) // returns ErrRoomClosed once the room is closed

	alice, _ := net.Dial("tcp", ln.Addr().String())
	defer alice.Close()
	fromAlice := bufio.NewReader(alice)
	fromAlice.ReadString('\n') // * welcome 127.0.0.1:port, 1 online

	bob, _ := net.Dial("tcp", ln.Addr().String())
	defer bob.Close()
	fromBob := bufio.NewReader(bob)
	fromBob.ReadString('\n')   // * welcome ..., 2 online
	fromAlice.ReadString('\n') // <ts> * 127.0.0.1:port joined

	fmt.Fprintln(alice, "hello, bob")
	line, _ := fromBob.ReadString('\n') // <ts> 127.0.0.1:port say: hello, bob
	_, text, _ := strings.Cut(line, " say: ")
	fmt.Print(text)
	// Output: hello, bob
}

// A TLS room: wrap the listener, and the room serves TLS clients such as
// "openssl s_client" or "chatroom join -tls".
func ExampleRoom_Serve_tls() {
	// A throwaway self-signed certificate; in production, tls.LoadX509KeyPair.
	serverConfig, clientConfig, err := selfSignedConfigs()
	if err != nil {
		log.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	room := chatroom.NewRoom()
	defer room.Close()
	go room.Serve(tls.NewListener(ln, serverConfig))

	join := func() (*tls.Conn, *bufio.Reader) {
		c, err := tls.Dial("tcp", ln.Addr().String(), clientConfig)
		if err != nil {
			log.Fatal(err)
		}
		r := bufio.NewReader(c)
		r.ReadString('\n') // the welcome
		return c, r
	}
	alice, fromAlice := join()
	defer alice.Close()
	bob, _ := join()
	defer bob.Close()
	fromAlice.ReadString('\n') // bob joined

	fmt.Fprintln(bob, "sealed")
	line, _ := fromAlice.ReadString('\n')
	_, text, _ := strings.Cut(line, " say: ")
	fmt.Print(text)
	// Output: sealed
}

// ServeConn serves a connection the program accepted itself: here one end
// of net.Pipe. The room calls a client by conn.RemoteAddr(), so wrapping the
// connection is how a program gives its clients names.
func ExampleRoom_ServeConn() {
	clock := func() time.Time { return time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC) }
	room := chatroom.NewRoom(chatroom.WithClock(clock))
	defer room.Close()

	alice := joinPipe(room, "alice")
	bob := joinPipe(room, "bob")
	fmt.Print(alice.line()) // bob's arrival

	fmt.Fprintln(alice, "hi bob")
	fmt.Print(bob.line())
	fmt.Fprintln(bob, "exit")
	fmt.Print(bob.line())
	fmt.Print(alice.line())
	// Output:
	// * welcome alice, 1 online
	// * welcome bob, 2 online
	// 2026-11-28 09:30:00 * bob joined
	// 2026-11-28 09:30:00 alice say: hi bob
	// * bye
	// 2026-11-28 09:30:00 * bob left
}

// Broadcast sends a notice from the program to every client.
func ExampleRoom_Broadcast() {
	clock := func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) }
	room := chatroom.NewRoom(chatroom.WithClock(clock))
	defer room.Close()

	alice := joinPipe(room, "alice")
	if err := room.Broadcast("the lobby closes at noon"); err != nil {
		log.Fatal(err)
	}
	fmt.Print(alice.line())
	// Output:
	// * welcome alice, 1 online
	// 2026-11-28 12:00:00 * the lobby closes at noon
}

// Shutdown tells every client, lets them take their last lines, and
// returns once nothing of the room is running.
func ExampleRoom_Shutdown() {
	room := chatroom.NewRoom()
	alice := joinPipe(room, "alice")

	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- room.Shutdown(ctx)
	}()
	fmt.Print(alice.line())
	_, err := alice.ReadString('\n')
	fmt.Println(err == io.EOF)
	fmt.Println(<-done)
	fmt.Println(room.Broadcast("anyone?"))
	// Output:
	// * welcome alice, 1 online
	// * server shutting down
	// true
	// <nil>
	// chatroom: room closed
}

// pipeEnd is an example client: one end of a net.Pipe.
type pipeEnd struct {
	net.Conn
	*bufio.Reader
}

func (p pipeEnd) line() string {
	s, err := p.ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	return s
}

// joinPipe connects a client called name to room over net.Pipe and prints
// its welcome.
func joinPipe(srv interface{ ServeConn(net.Conn) error }, name string) pipeEnd {
	local, remote := net.Pipe()
	go srv.ServeConn(namedConn{remote, name})
	p := pipeEnd{local, bufio.NewReader(local)}
	fmt.Print(p.line())
	return p
}

// Names from TLS client certificates: the room completes the handshake
// before the auth hook runs, so the hook can read the verified peer
// certificate and name the client by it. /nick is then refused.
func ExampleWithAuth() {
	// A CA, the server's certificate, and alice's, signed by the CA.
	pki, err := newTestPKI()
	if err != nil {
		log.Fatal(err)
	}
	certName := func(ctx context.Context, e chatroom.AuthEvent) (chatroom.AuthReply, error) {
		tc, ok := e.Conn.(*tls.Conn)
		if !ok {
			return chatroom.AuthReply{}, errors.New("TLS only")
		}
		certs := tc.ConnectionState().PeerCertificates
		if len(certs) == 0 {
			return chatroom.AuthReply{}, errors.New("a client certificate is required")
		}
		return chatroom.AuthReply{Name: certs[0].Subject.CommonName}, nil
	}
	room := chatroom.NewRoom(chatroom.WithAuth(certName))
	defer room.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	// The server asks for, and verifies, client certificates.
	go room.Serve(tls.NewListener(ln, pki.Server))

	aliceConfig, err := pki.Client("alice")
	if err != nil {
		log.Fatal(err)
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), aliceConfig)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	in := bufio.NewReader(conn)
	line, _ := in.ReadString('\n')
	fmt.Print(line)
	fmt.Fprintln(conn, "/nick mallory")
	line, _ = in.ReadString('\n')
	fmt.Print(line)
	// Output:
	// * welcome alice, 1 online
	// * error: names are set by the server
}

// A hub of rooms: newcomers land in the default room, /join moves them
// (opening the room if need be), /rooms lists the open rooms, and a name is
// unique across all of them. A room that /join opened closes when its last
// member leaves.
func ExampleNewHub() {
	hub := chatroom.NewHub(chatroom.WithClock(fixedClock), chatroom.WithHistory(10))
	defer hub.Close()

	alice := joinPipe(hub, "alice")
	bob := joinPipe(hub, "bob")
	alice.line() // bob joined

	fmt.Fprintln(bob, "/join games")
	fmt.Print(bob.line())   // bob's new room
	fmt.Print(alice.line()) // bob left the lobby
	fmt.Fprintln(bob, "anyone for chess?")
	fmt.Fprintln(bob, "/rooms")
	fmt.Print(bob.line())

	fmt.Fprintln(alice, "/join games") // the room's history follows the welcome
	fmt.Print(alice.line())
	fmt.Print(alice.line())
	fmt.Print(bob.line())
	// Output:
	// * welcome alice, 1 online
	// * welcome bob, 2 online
	// * you are in games, 1 online
	// 2026-11-28 09:30:00 * bob left
	// * 2 rooms: games (1), lobby (1)
	// * you are in games, 2 online
	// 2026-11-28 09:30:00 bob say: anyone for chess?
	// 2026-11-28 09:30:00 * alice joined
}

// A word filter: it rewrites what it can and rejects what it cannot. The
// sender alone is told of a rejected line.
func ExampleWithFilter() {
	filter := func(e chatroom.FilterEvent) (chatroom.FilterReply, error) {
		if strings.Contains(strings.ToLower(e.Text), "buy now") {
			return chatroom.FilterReply{}, errors.New("advertising")
		}
		return chatroom.FilterReply{Text: strings.ReplaceAll(e.Text, "darn", "d**n")}, nil
	}
	room := chatroom.NewRoom(chatroom.WithFilter(filter), chatroom.WithClock(fixedClock))
	defer room.Close()
	alice := joinPipe(room, "alice")
	bob := joinPipe(room, "bob")
	alice.line() // bob joined

	fmt.Fprintln(alice, "oh darn")
	fmt.Print(bob.line())
	fmt.Fprintln(alice, "BUY NOW, cheap!")
	fmt.Print(alice.line())
	// Output:
	// * welcome alice, 1 online
	// * welcome bob, 2 online
	// 2026-11-28 09:30:00 alice say: oh d**n
	// * error: message rejected
}

// An audit log: every join, leave, message and rename, in the order the
// room saw them, on a goroutine of the room's own.
func ExampleWithEvents() {
	var audit []string // written by the events goroutine alone
	record := func(e chatroom.Event) {
		switch e.Kind {
		case chatroom.EventMessage:
			audit = append(audit, fmt.Sprintf("%s %s: %q", e.Kind, e.Name, e.Text))
		case chatroom.EventNick:
			audit = append(audit, fmt.Sprintf("%s %s -> %s", e.Kind, e.Old, e.Name))
		case chatroom.EventLeave:
			audit = append(audit, fmt.Sprintf("%s %s (%s)", e.Kind, e.Name, e.Reason))
		default:
			audit = append(audit, fmt.Sprintf("%s %s", e.Kind, e.Name))
		}
	}
	room := chatroom.NewRoom(chatroom.WithEvents(record), chatroom.WithClock(fixedClock))
	alice := joinPipe(room, "alice")
	bob := joinPipe(room, "bob")
	alice.line() // bob joined

	fmt.Fprintln(alice, "hi bob")
	bob.line()
	fmt.Fprintln(bob, "/nick robert")
	bob.line() // * you are now robert
	fmt.Fprintln(bob, "exit")
	bob.line()   // * bye
	room.Close() // hands the observer every event queued, and waits for it
	for _, entry := range audit {
		fmt.Println(entry)
	}
	// Output:
	// * welcome alice, 1 online
	// * welcome bob, 2 online
	// join alice
	// join bob
	// message alice: "hi bob"
	// nick bob -> robert
	// leave robert (exit)
	// leave alice (closed)
}

// Kick removes a client by name; everyone sees why.
func ExampleRoom_Kick() {
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock))
	defer room.Close()
	alice := joinPipe(room, "alice")
	troll := joinPipe(room, "troll")
	alice.line() // troll joined

	if err := room.Kick("TROLL", "be nice"); err != nil {
		log.Fatal(err)
	}
	fmt.Print(troll.line())
	fmt.Print(alice.line())
	fmt.Println(room.Kick("troll", ""))
	// Output:
	// * welcome alice, 1 online
	// * welcome troll, 2 online
	// * kicked: be nice
	// 2026-11-28 09:30:00 * troll left (kicked: be nice)
	// chatroom: no such client
}
