package storage

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
)

// FuzzPageToken checks that any token decodes without panicking and that tokens the emulator
// makes decode to what they encode.
func FuzzPageToken(f *testing.F) {
	f.Add("runs/w/01", false, "bzpydW5z")
	f.Add("runs/", true, "")
	f.Add("ünï\x00/", true, "!!!")
	f.Fuzz(func(t *testing.T, name string, prefix bool, raw string) {
		_, _ = decodePageToken(raw)
		if name == "" {
			return
		}
		tok := pageToken{name: name, prefix: prefix}
		got, err := decodePageToken(tok.encode())
		if err != nil || got != tok {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", tok, got, err)
		}
		if !tok.covers(name) {
			t.Fatalf("%+v does not cover its own name", tok)
		}
	})
}

// multipartBody builds an upload as the client does: JSON metadata, then media.
func multipartBody(t testing.TB, meta, media []byte, mediaType string) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range []struct {
		ctype string
		body  []byte
	}{{ctype: "application/json", body: meta}, {ctype: mediaType, body: media}} {
		h := textproto.MIMEHeader{}
		if p.ctype != "" {
			h.Set("Content-Type", p.ctype)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.body)
	}
	mw.Close()
	return "multipart/related; boundary=" + mw.Boundary(), buf.Bytes()
}

func TestParseMultipart(t *testing.T) {
	meta, _ := json.Marshal(uploadMeta{Name: "runs/a", ContentType: "text/plain", Metadata: map[string]string{"k": "v"}})
	ctype, body := multipartBody(t, meta, []byte("hello"), "application/octet-stream")
	tests := []struct {
		name      string
		ctype     string
		body      string
		wantErr   bool
		wantName  string
		wantMedia string
		wantType  string
	}{
		{name: "client upload", ctype: ctype, body: string(body), wantName: "runs/a", wantMedia: "hello", wantType: "text/plain"},
		{name: "not multipart", ctype: "application/json", body: string(body), wantErr: true},
		{name: "no boundary", ctype: "multipart/related", body: string(body), wantErr: true},
		{name: "truncated", ctype: ctype, body: string(body[:len(body)-20]), wantErr: true},
		{name: "one part", ctype: ctype, body: strings.Replace(string(body), "hello", "", 1)[:40], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := parseMultipart(tt.ctype, strings.NewReader(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (u.meta.Name != tt.wantName || string(u.media) != tt.wantMedia || u.contentType() != tt.wantType) {
				t.Fatalf("upload = name %q media %q type %q", u.meta.Name, u.media, u.contentType())
			}
		})
	}
}

// FuzzParseMultipart checks that no body panics the parser and that every well-formed upload
// comes back whole.
func FuzzParseMultipart(f *testing.F) {
	f.Add([]byte(`{"name":"a"}`), []byte("media"), "text/plain", []byte("garbage"))
	f.Add([]byte(``), []byte{0, 1, 2, '\r', '\n', '-', '-'}, "", []byte("--x\r\n\r\n--x--"))
	f.Fuzz(func(t *testing.T, meta, media []byte, mediaType string, garbage []byte) {
		_, _ = parseMultipart("multipart/related; boundary=x", bytes.NewReader(garbage))
		if !json.Valid(meta) || strings.ContainsFunc(mediaType, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
			return // not what a client sends: the media type is a header value
		}
		ctype, body := multipartBody(t, meta, media, mediaType)
		u, err := parseMultipart(ctype, bytes.NewReader(body))
		if err != nil {
			var m uploadMeta
			if len(bytes.TrimSpace(meta)) == 0 || json.Unmarshal(meta, &m) != nil {
				return // metadata that is valid JSON but not an object resource
			}
			t.Fatalf("parseMultipart of a well-formed upload: %v", err)
		}
		if !bytes.Equal(u.media, media) {
			t.Fatalf("media = %q, want %q", u.media, media)
		}
	})
}
