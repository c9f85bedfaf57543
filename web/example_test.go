package web_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/web"
)

// A room for browsers behind http.ServeMux: the page at "/", its WebSocket
// at "/ws", on an http.Server whose timeouts close idle and slow
// connections (a WebSocket, once upgraded, is the room's: its own timeouts
// apply). Terminal clients can share the room through room.Serve on a TCP
// listener of their own.
func Example() {
	room := chatroom.NewRoom(chatroom.WithIdleTimeout(30 * time.Minute))

	mux := http.NewServeMux()
	mux.Handle("/", web.Page())
	mux.Handle("/ws", web.NewHandler(room,
		web.WithAllowedHosts("chat.example.com"), // the name users type, besides localhost and the listener's address
	))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a real server: ":8080", or srv.ListenAndServe()
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)

	// A browser would open the page now; a Go client reads it here.
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("X-Frame-Options"))

	// On the way out: the room first (it tells every client), then the site.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	room.Shutdown(ctx)
	srv.Shutdown(ctx)
	client.CloseIdleConnections()
	// Output: 200 OK DENY
}
