package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/irc"
)

// This file is the demo's IRC listener (package irc): its flags, the
// server password's auth hook, and serving.

// ircServer is the demo's IRC face, as its flags ask.
type ircServer struct {
	addr, name, password, oper *string

	ln   net.Listener // nil without -irc
	done chan error   // Serve's result, once it runs
}

// addIRCFlags adds the IRC flags to fs.
func addIRCFlags(fs *flag.FlagSet) *ircServer {
	return &ircServer{
		addr:     fs.String("irc", "", "also serve IRC clients (irssi -c HOST -p PORT, /join #lobby) on this `address`, in the same rooms; TLS, as -addr, when -tls-cert and -tls-key are given"),
		name:     fs.String("irc-name", "chatroom", "the IRC server's `name`, as its replies give it"),
		password: fs.String("irc-password", "", "the `password` IRC clients must give (PASS) to register, checked by the hub's auth hook; with it, names are set as clients connect (NICK and /nick changes are refused), and other clients are named by their address"),
		oper:     fs.String("irc-oper", "", "`name:password` for IRC's OPER, which makes the client an operator of the hub (it may kick, set topics and modes in every room)"),
	}
}

// check reports a flag given wrong.
func (s *ircServer) check() error {
	if *s.oper != "" {
		if name, pw, ok := strings.Cut(*s.oper, ":"); !ok || name == "" || pw == "" {
			return usageError{"-irc-oper takes name:password"}
		}
	}
	if *s.addr == "" && (*s.password != "" || *s.oper != "") {
		return usageError{"-irc-password and -irc-oper need -irc"}
	}
	return nil
}

// options are the hub options the IRC flags need: with -irc-password, an
// auth hook that refuses an IRC client without it. A client of another
// face, which has no way to give a password, is named as it asks if that
// is a name /nick would take, or else by its address. (An auth hook's
// names are not checked by the hub: this one keeps them to what every
// face can show.)
func (s *ircServer) options() []chatroom.Option {
	password := *s.password
	if password == "" {
		return nil
	}
	return []chatroom.Option{chatroom.WithAuth(func(_ context.Context, e chatroom.AuthEvent) (chatroom.AuthReply, error) {
		if e.Face != "irc" {
			if !validName(e.Name) {
				return chatroom.AuthReply{Name: e.Conn.RemoteAddr().String()}, nil
			}
			return chatroom.AuthReply{Name: e.Name}, nil
		}
		if subtle.ConstantTimeCompare([]byte(e.Password), []byte(password)) != 1 {
			return chatroom.AuthReply{}, errors.New("wrong password")
		}
		return chatroom.AuthReply{Name: e.Name}, nil
	})}
}

// validName reports whether name is one /nick takes: 1 to 32 ASCII
// letters, digits and _-.[] (the IRC face checks NICK the same way).
func validName(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_-.[]", c) >= 0) {
			return false
		}
	}
	return true
}

// listen opens the IRC listener with lc, if -irc asks for one, with TLS
// if config is not nil.
func (s *ircServer) listen(lc *net.ListenConfig, config *tls.Config) error {
	if *s.addr == "" {
		return nil
	}
	ln, err := lc.Listen(context.Background(), "tcp", *s.addr)
	if err != nil {
		return fmt.Errorf("irc: %w", err)
	}
	if config != nil {
		ln = tls.NewListener(ln, config)
	}
	s.ln = ln
	return nil
}

// close closes the listener if it does not serve yet.
func (s *ircServer) close() {
	if s.ln != nil && s.done == nil {
		s.ln.Close()
	}
}

// serve serves IRC into hub, if -irc asks, until the hub closes; its
// result comes on s.done (nil without -irc: it never comes).
func (s *ircServer) serve(hub *chatroom.Hub, logger *slog.Logger) {
	if s.ln == nil {
		return
	}
	face := &irc.Face{ServerName: *s.name}
	if name, pw, ok := strings.Cut(*s.oper, ":"); ok {
		face.Operators = map[string]string{name: pw}
	}
	s.done = make(chan error, 1)
	go func() { s.done <- face.Serve(hub, s.ln) }()
	logger.Info("serving IRC", "addr", s.ln.Addr().String(), "name", *s.name)
}

// wait waits for serve's Serve to return, once the hub is closed.
func (s *ircServer) wait() {
	if s.done != nil {
		<-s.done
	}
}
