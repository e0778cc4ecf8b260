package emulator

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestSplitListener(t *testing.T) {
	tests := []struct {
		name     string
		send     string
		wantGRPC bool
	}{
		{name: "the HTTP/2 preface and a frame go to gRPC", send: http2Preface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00", wantGRPC: true},
		{name: "the bare preface goes to gRPC", send: http2Preface, wantGRPC: true},
		{name: "an HTTP/1.1 request goes to HTTP", send: "GET /emulator/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "an h2c upgrade goes to HTTP", send: "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n"},
		{name: "PRI with another protocol goes to HTTP", send: "PRI * HTTP/1.1\r\n\r\n"},
		{name: "a preface cut short goes to HTTP", send: "PRI * HTTP/2"},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSplitListener(l)
	go s.serve()
	t.Cleanup(func() { l.Close() })

	// A connection that sends nothing must not hold up the others.
	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.name == "a preface cut short goes to HTTP" {
				c.(*net.TCPConn).CloseWrite()
			}
			want, other := s.http, s.grpc
			if tc.wantGRPC {
				want, other = s.grpc, s.http
			}
			var got net.Conn
			select {
			case got = <-want.conns:
			case <-other.conns:
				t.Fatalf("%q went to the wrong server", tc.send)
			case <-time.After(5 * time.Second):
				t.Fatalf("%q was not handed on", tc.send)
			}
			defer got.Close()
			// The server reads every byte the client sent, the sniffed ones included.
			buf := make([]byte, len(tc.send))
			if _, err := io.ReadFull(got, buf); err != nil || string(buf) != tc.send {
				t.Errorf("the server read %q, %v; want %q", buf, err, tc.send)
			}
		})
	}
}

func TestSplitListenerClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSplitListener(l)
	done := make(chan struct{})
	go func() { s.serve(); close(done) }()
	l.Close()
	<-done
	for _, cl := range []*chanListener{s.grpc, s.http} {
		if _, err := cl.Accept(); err != net.ErrClosed {
			t.Errorf("Accept after the port closed: %v, want net.ErrClosed", err)
		}
	}
}
