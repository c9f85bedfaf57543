package irc_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/irc"
)

// A server of rooms for nc and IRC clients alike: nc 127.0.0.1 33333
// lands in the lobby; irssi -c 127.0.0.1 -p 6667, then /join #lobby,
// meets them there.
func Example() {
	hub := chatroom.NewHub()
	go func() { log.Fatal(hub.Serve(mustListen("127.0.0.1:33333"))) }()
	face := &irc.Face{
		ServerName: "irc.example.net",
		MOTD:       "Be kind.",
		Operators:  map[string]string{"admin": "a long secret"},
	}
	log.Fatal(face.ListenAndServe(hub, "127.0.0.1:6667"))
}

// IRC over TLS: hand Serve a TLS listener.
func ExampleFace_Serve() {
	cert, err := tls.LoadX509KeyPair("cert.pem", "key.pem")
	if err != nil {
		log.Fatal(err)
	}
	hub := chatroom.NewHub()
	ln := tls.NewListener(mustListen(":6697"), &tls.Config{Certificates: []tls.Certificate{cert}})
	log.Fatal((&irc.Face{ServerName: "irc.example.net"}).Serve(hub, ln))
}

func mustListen(addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	return ln
}

// An IRC client and a text-protocol client (nc) in one room: each sees
// the other's lines in its own protocol.
func ExampleFace() {
	hub := chatroom.NewHub(chatroom.WithClock(func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }))
	defer hub.Close()
	textLn, ircLn := mustListen("127.0.0.1:0"), mustListen("127.0.0.1:0")
	go hub.Serve(textLn)
	go (&irc.Face{ServerName: "irc.example.net"}).Serve(hub, ircLn)

	// bob speaks the text protocol, as nc does: he lands in the lobby.
	bob := dialLines(textLn.Addr().String())
	bob.read() // * welcome 127.0.0.1:PORT, 1 online
	bob.send("/nick bob")
	fmt.Println("nc: ", bob.read())

	// alice registers over IRC and joins the lobby.
	alice := dialLines(ircLn.Addr().String())
	alice.send("NICK alice\r\nUSER alice 0 * :Alice\r\nJOIN #lobby")
	for line := alice.read(); !strings.Contains(line, " 366 "); line = alice.read() {
		if strings.Contains(line, " JOIN ") || strings.Contains(line, " 353 ") {
			fmt.Println("irc:", line)
		}
	}
	fmt.Println("nc: ", bob.read())

	alice.send("PRIVMSG #lobby :hi bob")
	fmt.Println("nc: ", bob.read())
	bob.send("hi alice")
	fmt.Println("irc:", alice.read())
	bob.send("/me waves")
	fmt.Printf("irc: %q\n", alice.read())
	alice.send("QUIT :bye")
	fmt.Println("irc:", alice.read())
	fmt.Println("nc: ", bob.read())
	// Output:
	// nc:  * you are now bob
	// irc: :alice!~alice@127.0.0.1 JOIN #lobby
	// irc: :irc.example.net 353 alice = #lobby :alice bob
	// nc:  2026-12-01 12:00:00 * alice joined
	// nc:  2026-12-01 12:00:00 alice say: hi bob
	// irc: :bob!text@127.0.0.1 PRIVMSG #lobby :hi alice
	// irc: ":bob!text@127.0.0.1 PRIVMSG #lobby :\x01ACTION waves\x01"
	// irc: ERROR :Closing link (Quit: bye)
	// nc:  2026-12-01 12:00:00 * alice left
}

// lines is an example's connection, read and written a line at a time.
type lines struct {
	conn net.Conn
	in   *bufio.Reader
}

func dialLines(addr string) *lines {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &lines{conn, bufio.NewReader(conn)}
}

func (l *lines) send(s string) { fmt.Fprint(l.conn, s+"\r\n") }

func (l *lines) read() string {
	s, err := l.in.ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	return strings.TrimRight(s, "\r\n")
}
