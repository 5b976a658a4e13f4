package api

import (
	"net/http"
	"time"
)

// Timeouts bound what one connection may hold of the server. Without them a client that sends
// its headers a byte a minute (or never) keeps a connection and a goroutine for ever.
type Timeouts struct {
	// ReadHeader: the request line and headers must arrive within this.
	ReadHeader time.Duration
	// Read: the whole request, body included.
	Read time.Duration
	// Write: from the end of the headers to the end of the answer.
	Write time.Duration
	// Idle: a kept-alive connection waiting for its next request.
	Idle time.Duration
	// MaxHeaderBytes bounds the request line and headers (answered 431 beyond).
	MaxHeaderBytes int
}

// DefaultTimeouts suit the API: small JSON bodies (maxBody), answers in well under a minute.
var DefaultTimeouts = Timeouts{
	ReadHeader:     5 * time.Second,
	Read:           30 * time.Second,
	Write:          60 * time.Second,
	Idle:           120 * time.Second,
	MaxHeaderBytes: 64 << 10,
}

// NewHTTPServer is the http.Server for h on addr with the timeouts set. Shut it down with
// Shutdown, which stops accepting and waits for requests in flight (the drain on SIGTERM).
func NewHTTPServer(addr string, h http.Handler, t Timeouts) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    t.MaxHeaderBytes,
	}
}
