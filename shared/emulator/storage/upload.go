package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
)

// upload is the parsed body of an objects.insert request.
type upload struct {
	meta      uploadMeta
	media     []byte
	mediaType string // the media part's (or media request's) Content-Type
}

// uploadMeta is the part of the object resource an upload may set.
type uploadMeta struct {
	Name        string            `json:"name"`
	ContentType string            `json:"contentType"`
	Metadata    map[string]string `json:"metadata"`
	CRC32C      string            `json:"crc32c"`
	MD5Hash     string            `json:"md5Hash"`
}

func (u upload) contentType() string {
	switch {
	case u.meta.ContentType != "":
		return u.meta.ContentType
	case u.mediaType != "":
		return u.mediaType
	}
	return "application/octet-stream"
}

// parseMultipart reads a multipart/related body: the object resource as JSON, then the media.
func parseMultipart(contentType string, body io.Reader) (upload, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return upload{}, errorf(http.StatusBadRequest, "invalid", "multipart upload: Content-Type %q is not multipart with a boundary", contentType)
	}
	mr := multipart.NewReader(body, params["boundary"])
	var parts [][]byte
	var types []string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return upload{}, bodyError("multipart upload", err)
		}
		if len(parts) == 2 {
			return upload{}, errorf(http.StatusBadRequest, "invalid", "multipart upload: more than two parts")
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return upload{}, bodyError("multipart upload", err)
		}
		parts = append(parts, b)
		types = append(types, p.Header.Get("Content-Type"))
	}
	if len(parts) != 2 {
		return upload{}, errorf(http.StatusBadRequest, "invalid", "multipart upload: want 2 parts (metadata, media), got %d", len(parts))
	}
	u := upload{media: parts[1], mediaType: types[1]}
	if len(bytes.TrimSpace(parts[0])) > 0 {
		if err := json.Unmarshal(parts[0], &u.meta); err != nil {
			return upload{}, errorf(http.StatusBadRequest, "parseError", "multipart upload: metadata: %v", err)
		}
	}
	return u, nil
}

// parseMedia reads an uploadType=media body: the media alone.
func parseMedia(contentType string, body io.Reader) (upload, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return upload{}, bodyError("media upload", err)
	}
	return upload{media: b, mediaType: contentType}, nil
}

func bodyError(op string, err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errorf(http.StatusRequestEntityTooLarge, "uploadTooLarge", "%s: the emulator takes bodies up to %d bytes", op, maxBody)
	}
	return errorf(http.StatusBadRequest, "invalid", "%s: %v", op, err)
}

// checkHashes refuses media that does not match the hashes the metadata states.
func (u upload) checkHashes(o *object) error {
	if u.meta.CRC32C != "" {
		b, err := base64.StdEncoding.DecodeString(u.meta.CRC32C)
		if err != nil || len(b) != 4 {
			return errorf(http.StatusBadRequest, "invalid", "Invalid crc32c: %q", u.meta.CRC32C)
		}
		if binary.BigEndian.Uint32(b) != o.crc32c {
			return errorf(http.StatusBadRequest, "invalid", "Provided CRC32C %q doesn't match calculated CRC32C %q.", u.meta.CRC32C, o.crc32cString())
		}
	}
	if u.meta.MD5Hash != "" {
		b, err := base64.StdEncoding.DecodeString(u.meta.MD5Hash)
		if err != nil || !bytes.Equal(b, o.md5[:]) {
			return errorf(http.StatusBadRequest, "invalid", "Provided MD5 hash %q doesn't match calculated MD5 hash.", u.meta.MD5Hash)
		}
	}
	return nil
}
