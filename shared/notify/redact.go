package notify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Redaction: a channel's delivery error names the operation and the host at most. The Go
// errors a delivery meets carry more: *url.Error prints the whole request URL (a Slack webhook
// URL is the credential itself), a transport error quotes the bytes a server answered, and an
// error answer may echo the request (a PagerDuty routing key, the base64 of an SMTP AUTH
// PLAIN). So every channel error is made by redact, here: it keeps the cause's text without the
// URL, replaces every secret of the channel (and the usual encodings of it) with
// "[redacted]", bounds the text, and unwraps only to the sentinels callers classify on, never
// to the error it was made from.

// maxErrorText bounds the part of a delivery error that comes from the other side.
const maxErrorText = 200

// minSecretLen is the shortest secret piece scrubbed: shorter ones (a "v2" path segment) are
// no credential, and replacing them would garble the message.
const minSecretLen = 6

// redactedError is a delivery error with its channel's secrets taken out.
type redactedError struct {
	msg  string
	kind []error // ErrPermanent, context.DeadlineExceeded, context.Canceled, as the cause was
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.kind }

// redact returns err as the error of op on host (which may be empty), with secrets scrubbed
// from its text. A *url.Error contributes its cause only, never its URL.
func redact(op, host string, err error, secrets []string) error {
	if err == nil {
		return nil
	}
	var kind []error
	for _, k := range []error{ErrPermanent, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, k) {
			kind = append(kind, k)
		}
	}
	cause := err
	for {
		var ue *url.Error
		if !errors.As(cause, &ue) || ue.Err == nil {
			break
		}
		cause = ue.Err
	}
	prefix := op
	if host != "" {
		prefix += " " + host
	}
	text := scrub(cause.Error(), secrets, 2*maxErrorText)
	if text == "" {
		return &redactedError{msg: prefix, kind: kind}
	}
	return &redactedError{msg: prefix + ": " + text, kind: kind}
}

// scrub makes s printable UTF-8, replaces every secret (in the encodings a server may echo it
// in) with "[redacted]", then bounds the result to limit bytes. Scrubbing comes after the
// cleaning (which could join the halves of a secret split by a control byte) and before the
// cut (which could leave half a secret behind); a text in which a secret survives the
// replacement (one overlapping its own marker) is dropped whole.
func scrub(s string, secrets []string, limit int) string {
	var pieces []string
	for _, sec := range secrets {
		for _, v := range variants(sec) {
			pieces = append(pieces, v, printable(v))
		}
	}
	pieces = slices.DeleteFunc(pieces, func(p string) bool { return len(p) < minSecretLen })
	// Longest first: a secret containing another is replaced whole.
	slices.SortFunc(pieces, func(a, b string) int { return len(b) - len(a) })
	s = printable(s)
	for _, p := range pieces {
		s = strings.ReplaceAll(s, p, "[redacted]")
	}
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	for _, p := range pieces {
		if strings.Contains(s, p) {
			return "[redacted]"
		}
	}
	return s
}

// printable is s as valid UTF-8 with spaces for white space and no other control characters.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		if unicode.IsSpace(r) {
			return ' '
		}
		return -1
	}, strings.ToValidUTF8(s, ""))
	return strings.TrimSpace(s)
}

// variants are the forms of secret a server may echo: as sent, JSON-escaped, with escaped
// slashes, percent-encoded, and base64.
func variants(secret string) []string {
	if len(secret) < minSecretLen {
		return nil
	}
	out := []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret)),
		url.QueryEscape(secret), url.PathEscape(secret), strings.ReplaceAll(secret, "/", `\/`)}
	if b, err := json.Marshal(secret); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// urlSecrets are the parts of a URL that may be a credential: everything but the scheme and
// host (the whole URL, its user info, path, query, fragment, and each path segment and query
// value of at least minSecretLen bytes).
func urlSecrets(raw string) []string {
	out := []string{raw}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	if u.User != nil {
		out = append(out, u.User.String(), u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	if len(u.Path) > 1 {
		out = append(out, u.Path, u.EscapedPath())
		for seg := range strings.SplitSeq(strings.Trim(u.Path, "/"), "/") {
			out = append(out, seg)
		}
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	if u.Fragment != "" {
		out = append(out, u.Fragment)
	}
	return out
}

// hostOf is the host (and port) of a URL, or "" when it does not parse.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
