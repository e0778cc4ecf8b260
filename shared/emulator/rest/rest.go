// Package rest serves gRPC services over HTTP/JSON as Google's REST front ends do: one
// generic transcoder whose routes come from the methods' google.api.http annotations (and
// from service-config rules, such as a service's google.longrunning.Operations bindings),
// with protojson bodies and Google's JSON error shape. Each request is forwarded as a unary
// call on a grpc.ClientConnInterface — in the emulator, an in-memory connection to its own
// gRPC server — so that interceptors (fault injection, IAM) apply to REST as to gRPC.
//
// Transcoding follows google/api/http.proto: path variables bind request fields (dotted
// paths allowed), `body: "*"` maps the whole request to the body and forbids query
// parameters, `body: "field"` maps one field, and every other field may be given as a query
// parameter (`a.b=v`, repeated by repeating the key; lowerCamel or proto names). The system
// parameters `$alt`/`alt` (`json;enum-encoding=int` answers enums as numbers),
// `prettyPrint`, `$prettyPrint`, `key`, `fields` and `$fields` are accepted and, except
// enum-encoding, ignored. The X-Server-Timeout header (seconds) is the call's deadline, and
// the x-goog-* headers go on as gRPC metadata.
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// DefaultMaxBody bounds a request body (1 MiB) before it is parsed.
const DefaultMaxBody = 1 << 20

// maxServerTimeout bounds the X-Server-Timeout header, Google's REST form of a deadline.
const maxServerTimeout = time.Hour

// Options configure a Handler.
type Options struct {
	// Conn is where the calls go: a connection to the server that implements the services.
	Conn grpc.ClientConnInterface
	// Services are the full names of the gRPC services (google.cloud.run.v2.Jobs) whose
	// annotated unary methods are served.
	Services []string
	// Rules are service-config HTTP rules, each naming its method in Selector
	// (google.longrunning.Operations.GetOperation); a rule replaces the method's annotation.
	Rules []*annotations.HttpRule
	// MaxBody bounds a request body; 0 means DefaultMaxBody.
	MaxBody int64
}

// Handler is the transcoder; it answers 404 in Google's error shape to what no route matches.
type Handler struct {
	conn    grpc.ClientConnInterface
	maxBody int64
	routes  map[string][]*route // by HTTP method
}

// route is one HTTP binding of a method.
type route struct {
	method   protoreflect.MethodDescriptor
	fullName string // /package.Service/Method
	tmpl     *template
	body     string // "", "*" or a field path
	respBody string // "" or a field path
}

// New builds the routes of every annotated unary method of opts.Services and of opts.Rules.
func New(opts Options) (*Handler, error) {
	h := &Handler{conn: opts.Conn, maxBody: opts.MaxBody, routes: map[string][]*route{}}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBody
	}
	overridden := map[string]bool{}
	for _, r := range opts.Rules {
		overridden[r.GetSelector()] = true
	}
	for _, name := range opts.Services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return nil, fmt.Errorf("rest.New service %s: %w", name, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("rest.New %s: not a service", name)
		}
		for i := 0; i < sd.Methods().Len(); i++ {
			m := sd.Methods().Get(i)
			if overridden[string(m.FullName())] {
				continue
			}
			rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
			if rule == nil || rule.GetPattern() == nil {
				continue
			}
			if err := h.add(m, rule); err != nil {
				return nil, err
			}
		}
	}
	for _, rule := range opts.Rules {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(rule.GetSelector()))
		if err != nil {
			return nil, fmt.Errorf("rest.New rule %s: %w", rule.GetSelector(), err)
		}
		m, ok := d.(protoreflect.MethodDescriptor)
		if !ok {
			return nil, fmt.Errorf("rest.New rule %s: not a method", rule.GetSelector())
		}
		if err := h.add(m, rule); err != nil {
			return nil, err
		}
	}
	for _, rs := range h.routes {
		// The most specific template first: more literal segments, then no "**" (so that
		// /v3/projects/p/metricDescriptors lists rather than gets a descriptor named ""), then
		// a verb.
		sort.SliceStable(rs, func(i, j int) bool {
			a, b := rs[i].tmpl, rs[j].tmpl
			if a.literals() != b.literals() {
				return a.literals() > b.literals()
			}
			if a.deep() != b.deep() {
				return !a.deep()
			}
			return a.verb != "" && b.verb == ""
		})
	}
	return h, nil
}

// add adds the routes of rule and of its additional bindings.
func (h *Handler) add(m protoreflect.MethodDescriptor, rule *annotations.HttpRule) error {
	if m.IsStreamingClient() || m.IsStreamingServer() {
		return nil // REST serves unary methods only
	}
	var verb, path string
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		verb, path = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		verb, path = http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		verb, path = http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		verb, path = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		verb, path = http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		verb, path = p.Custom.GetKind(), p.Custom.GetPath()
	default:
		return fmt.Errorf("rest.New %s: rule without a pattern", m.FullName())
	}
	t, err := parseTemplate(path)
	if err != nil {
		return fmt.Errorf("rest.New %s: %w", m.FullName(), err)
	}
	for _, v := range t.vars {
		if _, err := fieldPath(m.Input(), v.field); err != nil {
			return fmt.Errorf("rest.New %s: path %s: %w", m.FullName(), path, err)
		}
	}
	if b := rule.GetBody(); b != "" && b != "*" {
		if _, err := fieldPath(m.Input(), b); err != nil {
			return fmt.Errorf("rest.New %s: body: %w", m.FullName(), err)
		}
	}
	if rb := rule.GetResponseBody(); rb != "" {
		fds, err := fieldPath(m.Output(), rb)
		if err != nil {
			return fmt.Errorf("rest.New %s: response_body: %w", m.FullName(), err)
		}
		if last := fds[len(fds)-1]; last.Kind() != protoreflect.MessageKind || last.Cardinality() == protoreflect.Repeated {
			return fmt.Errorf("rest.New %s: response_body %s is not a singular message (the only kind served)", m.FullName(), rb)
		}
	}
	full := "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
	h.routes[verb] = append(h.routes[verb], &route{method: m, fullName: full, tmpl: t, body: rule.GetBody(), respBody: rule.GetResponseBody()})
	for _, more := range rule.GetAdditionalBindings() {
		if err := h.add(m, more); err != nil {
			return err
		}
	}
	return nil
}

// Prefixes returns the first path segment of every route ("/v2/"), to mount h on a mux.
func (h *Handler) Prefixes() []string {
	seen := map[string]bool{}
	var out []string
	for _, rs := range h.routes {
		for _, r := range rs {
			if s := r.tmpl.segs[0]; s.kind == literal && !seen[s.text] {
				seen[s.text] = true
				out = append(out, "/"+s.text+"/")
			}
		}
	}
	sort.Strings(out)
	return out
}

// ServeHTTP transcodes one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, vars := h.lookup(r.Method, r.URL.EscapedPath())
	if rt == nil {
		WriteError(w, status.Errorf(codes.NotFound, "The requested URL %s was not found on this server (no %s route).", r.URL.Path, r.Method))
		return
	}
	query, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		WriteError(w, err)
		return
	}
	enumInt := false
	for _, k := range []string{"$alt", "alt"} {
		for _, v := range query[k] {
			enumInt = enumInt || strings.Contains(v, "enum-encoding=int")
		}
	}
	req, err := h.request(rt, r, vars, query)
	if err != nil {
		WriteError(w, err)
		return
	}
	resp := rt.method.Output()
	out, err := newMessage(resp)
	if err != nil {
		WriteError(w, err)
		return
	}
	ctx := metadata.NewOutgoingContext(r.Context(), forwardedHeaders(r.Header))
	if v := r.Header.Get("X-Server-Timeout"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || !(secs > 0) || secs > maxServerTimeout.Seconds() {
			WriteError(w, status.Errorf(codes.InvalidArgument, "X-Server-Timeout %q is not a number of seconds in (0, %v]", v, maxServerTimeout.Seconds()))
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(secs*float64(time.Second)))
		defer cancel()
	}
	if err := h.conn.Invoke(ctx, rt.fullName, req, out); err != nil {
		WriteError(w, err)
		return
	}
	var body proto.Message = out
	if rt.respBody != "" {
		fd, _ := fieldPath(resp, rt.respBody)
		body = leafMessage(out.ProtoReflect(), fd)
	}
	b, err := protojson.MarshalOptions{UseEnumNumbers: enumInt}.Marshal(body)
	if err != nil {
		WriteError(w, status.Errorf(codes.Internal, "marshal %s: %v", resp.FullName(), err))
		return
	}
	// protojson varies its spacing on purpose; answer stable JSON: indented as Google's
	// default, compact with prettyPrint=false (what the clients ask for).
	var buf bytes.Buffer
	if pretty(query) {
		err = json.Indent(&buf, b, "", "  ")
	} else {
		err = json.Compact(&buf, b)
	}
	if err != nil {
		WriteError(w, status.Errorf(codes.Internal, "format %s: %v", resp.FullName(), err))
		return
	}
	buf.WriteByte('\n')
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(buf.Bytes())
}

// pretty reports whether the answer is indented: unless prettyPrint or $prettyPrint is false.
func pretty(query map[string][]string) bool {
	for _, k := range []string{"prettyPrint", "$prettyPrint"} {
		for _, v := range query[k] {
			if v == "false" || v == "0" {
				return false
			}
		}
	}
	return true
}

// lookup returns the first route of method matching the path, with its variables.
func (h *Handler) lookup(method, escapedPath string) (*route, map[string]string) {
	for _, rt := range h.routes[method] {
		if vars, ok := rt.tmpl.match(escapedPath); ok {
			return rt, vars
		}
	}
	return nil, nil
}

// request builds the request message from the body, the path variables and the query.
func (h *Handler) request(rt *route, r *http.Request, vars map[string]string, query map[string][]string) (proto.Message, error) {
	in := rt.method.Input()
	req, err := newMessage(in)
	if err != nil {
		return nil, err
	}
	if rt.body != "" {
		b, err := io.ReadAll(io.LimitReader(r.Body, h.maxBody+1))
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "reading the body: %v", err)
		}
		if int64(len(b)) > h.maxBody {
			return nil, status.Errorf(codes.InvalidArgument, "the request body is larger than %d bytes", h.maxBody)
		}
		if len(strings.TrimSpace(string(b))) > 0 {
			target := req
			if rt.body != "*" {
				fd, _ := fieldPath(in, rt.body)
				target = mutableLeaf(req.ProtoReflect(), fd)
			}
			if err := (protojson.UnmarshalOptions{}).Unmarshal(b, target); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "Invalid JSON payload received. %s", redactJSONError(err))
			}
		}
	}
	bound := map[string]bool{}
	for field, val := range vars {
		fd, _ := fieldPath(in, field)
		if err := setPathField(req.ProtoReflect(), fd, field, val); err != nil {
			return nil, err
		}
		bound[field] = true
	}
	if err := setQuery(req, rt, bound, query); err != nil {
		return nil, err
	}
	return req, nil
}

// redactJSONError is protojson's error without the offending value or token, which may be a
// secret from the body (an environment variable's value): position, field and kind remain.
func redactJSONError(err error) string {
	msg := err.Error()
	for _, marker := range []string{"unexpected token ", "invalid value for "} {
		i := strings.Index(msg, marker)
		if i < 0 {
			continue
		}
		if marker == "unexpected token " {
			return msg[:i+len(marker)-1] + " (not shown)"
		}
		if j := strings.LastIndex(msg, ": "); j > i {
			return msg[:j] + " (value not shown)"
		}
	}
	return msg
}

// parseQuery splits a raw query on & only (Go's url.ParseQuery refuses the ';' of
// $alt=json;enum-encoding=int), with at most maxQueryValues values.
func parseQuery(raw string) (map[string][]string, error) {
	out := map[string][]string{}
	if raw == "" {
		return out, nil
	}
	if n := strings.Count(raw, "&") + 1; n > maxQueryValues {
		return nil, status.Errorf(codes.InvalidArgument, "%d query parameter values, more than %d", n, maxQueryValues)
	}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "query parameter %q: %v", k, err)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "query parameter %s: %v", key, err)
		}
		out[key] = append(out[key], val)
	}
	return out, nil
}

// newMessage returns a new message of the generated type of d.
func newMessage(d protoreflect.MessageDescriptor) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "message type %s: %v", d.FullName(), err)
	}
	return mt.New().Interface(), nil
}

// forwardedHeaders passes the x-goog-* headers (request params, API client) and the user
// agent on as gRPC metadata.
func forwardedHeaders(hd http.Header) metadata.MD {
	md := metadata.MD{}
	for k, vs := range hd {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-goog-") || lk == "user-agent" {
			md[lk] = append(md[lk], vs...)
		}
	}
	return md
}
