package chatroom_test

import (
	"bufio"
	"context"
	"crypto/tls"
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
func joinPipe(room *chatroom.Room, name string) pipeEnd {
	local, remote := net.Pipe()
	go room.ServeConn(namedConn{remote, name})
	p := pipeEnd{local, bufio.NewReader(local)}
	fmt.Print(p.line())
	return p
}
