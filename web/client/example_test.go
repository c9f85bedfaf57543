package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/web"
	"github.com/chatroom-go/chatroom/web/client"
)

// A bot joins a hub served over WebSocket, says hello, reads what comes
// back, and reconnects under its name into its rooms.
func Example() {
	hub := chatroom.NewHub()
	defer hub.Close()
	srv := httptest.NewServer(web.NewHandler(hub))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bot, err := client.Dial(ctx, url, client.Options{Name: "bot", Rooms: []string{"lobby", "games"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bot.Close()
	show := func(m *client.Message) {
		switch m.Type {
		case "welcome":
			fmt.Println("welcome", m.Name)
		case "join":
			fmt.Println("join", m.Room, "own:", m.Own)
		case "members":
			fmt.Println("members of", m.Room+":", len(m.Members))
		case "say":
			fmt.Println("say", m.Room, m.From+":", m.Text, "own:", m.Own)
		default:
			fmt.Println(m.Type)
		}
	}
	for range 6 { // welcome, lobby's join and members, games's, synced
		m, err := bot.Receive(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		show(m)
	}
	bot.Say(ctx, "games", "hello")
	m, _ := bot.WaitFor(ctx, func(m *client.Message) bool { return m.Type == "say" })
	show(m)

	// Connect again: the same name, the same rooms, nothing said since.
	bot.Reconnect(ctx)
	m, _ = bot.Receive(ctx)
	show(m)
	fmt.Println("rooms:", bot.Rooms())
	// Output:
	// welcome bot
	// join lobby own: true
	// members of lobby: 1
	// join games own: true
	// members of games: 1
	// synced
	// say games bot: hello own: true
	// welcome bot
	// rooms: [lobby games]
}
