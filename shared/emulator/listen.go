package emulator

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// http2Preface opens every prior-knowledge HTTP/2 connection, which is how gRPC clients speak
// without TLS.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffTimeout bounds how long a new connection may take to send its first bytes.
const sniffTimeout = 10 * time.Second

// splitListener accepts on one port and hands each connection to the gRPC server's native
// transport when it opens with the HTTP/2 preface, and to the HTTP server otherwise (HTTP/1.1,
// including an h2c upgrade). grpc.Server.ServeHTTP through net/http costs several goroutine
// hand-offs per call; the native transport answers a unary call in about half the time.
type splitListener struct {
	l          net.Listener
	grpc, http *chanListener
}

func newSplitListener(l net.Listener) *splitListener {
	return &splitListener{l: l, grpc: newChanListener(l.Addr()), http: newChanListener(l.Addr())}
}

// serve accepts until l is closed, then closes both listeners.
func (s *splitListener) serve() {
	defer s.grpc.Close()
	defer s.http.Close()
	for {
		c, err := s.l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go s.route(c)
	}
}

// route reads as much of c's first bytes as tells the preface apart and hands c on, with
// those bytes put back.
func (s *splitListener) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	buf := make([]byte, len(http2Preface))
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if !bytes.HasPrefix([]byte(http2Preface), buf[:n]) {
			break
		}
		if err != nil {
			if n == 0 {
				c.Close()
				return
			}
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(buf[:n]), c)}
	to := s.http
	if n == len(buf) && string(buf) == http2Preface {
		to = s.grpc
	}
	select {
	case to.conns <- pc:
	case <-to.done:
		c.Close()
	}
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// chanListener is a net.Listener fed by splitListener.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
