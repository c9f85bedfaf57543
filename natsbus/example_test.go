package natsbus_test

import (
	"log"
	"log/slog"
	"net"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/natsbus"
)

// One room served by every process that runs this with the same NATS
// server and room name: start nats-server -js, then this program on two
// machines (or two ports), and clients of either are in one room. It needs
// a NATS server, so it has no output to check.
func ExampleConnect() {
	bus, err := natsbus.Connect("nats://127.0.0.1:4222", "lobby", natsbus.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err) // no NATS server, or one without JetStream
	}
	room := chatroom.NewRoom(chatroom.WithBus(bus), chatroom.WithHistory(50)) // the room closes the bus

	ln, err := net.Listen("tcp", "127.0.0.1:33333")
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(room.Serve(ln))
}
