package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// httpLimits bounds what one HTTP connection may hold of the demo's web
// page and metrics servers: a connection that sends its request headers
// too slowly, or its request too slowly, or stays idle between requests
// too long, is closed; headers beyond maxHeaderBytes get 431. A WebSocket
// is the room's once upgraded: net/http clears these deadlines when the
// WebSocket takes its connection over, and the room's own timeouts apply.
type httpLimits struct {
	readHeader     time.Duration // from the connection's start, or the end of the last request, to the end of the headers
	read           time.Duration // to the end of the request, body included
	write          time.Duration // from the end of the request's headers to the end of the response
	idle           time.Duration // between two requests of one keep-alive connection
	maxHeaderBytes int
	keepAlive      time.Duration // the connections' TCP keep-alive period (listenConfig); 0: no probes
}

// siteLimits are the demo's: enough for a page, its two files and a
// WebSocket upgrade, or a scrape, on a slow network, and no more.
var siteLimits = httpLimits{
	readHeader:     10 * time.Second,
	read:           30 * time.Second,
	write:          30 * time.Second,
	idle:           30 * time.Second,
	maxHeaderBytes: 16 << 10,
	keepAlive:      demoKeepAlive,
}

// site is one of the demo's HTTP servers, serving.
type site struct {
	name string // for the log: "web page", "metrics"
	url  string // where it serves, for the log
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// newHTTPServer returns an http.Server for h with limits, logging its
// errors (a failed TLS handshake, a panic) to logger at warning level.
func newHTTPServer(h http.Handler, limits httpLimits, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.readHeader,
		ReadTimeout:       limits.read,
		WriteTimeout:      limits.write,
		IdleTimeout:       limits.idle,
		MaxHeaderBytes:    limits.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// startSite listens on addr and serves h there (over TLS when tlsConfig is
// not nil) until close. If the server fails before that, its error goes to
// failed.
func startSite(name, addr, path string, h http.Handler, tlsConfig *tls.Config, limits httpLimits, logger *slog.Logger, failed chan<- error) (*site, error) {
	ln, err := listenConfig(limits.keepAlive).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	scheme := "http"
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
		scheme = "https"
	}
	s := &site{
		name: name,
		url:  scheme + "://" + ln.Addr().String() + path,
		srv:  newHTTPServer(h, limits, logger),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("%s: %w", name, err)
		}
	}()
	return s, nil
}

// close closes the server and its connections, and waits for Serve to
// return.
func (s *site) close() {
	s.srv.Close()
	<-s.done
}
