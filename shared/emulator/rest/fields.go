package rest

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// systemParams are the query parameters of Google's front ends that are not request fields.
var systemParams = map[string]bool{
	"$alt": true, "alt": true, "prettyPrint": true, "$prettyPrint": true,
	"key": true, "fields": true, "$fields": true, "$callback": true, "callback": true,
	"upload_protocol": true, "uploadType": true, "quotaUser": true, "access_token": true,
}

// maxQueryValues bounds how many query values one request may carry (parseQuery checks).
const maxQueryValues = 1 << 10

// fieldPath resolves a dotted path of field names (proto or lowerCamel JSON names) in md;
// every field but the last is a singular message.
func fieldPath(md protoreflect.MessageDescriptor, path string) ([]protoreflect.FieldDescriptor, error) {
	var out []protoreflect.FieldDescriptor
	names := strings.Split(path, ".")
	for i, name := range names {
		if md == nil {
			return nil, fmt.Errorf("field %s: %s is not a message", path, names[i-1])
		}
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			fd = md.Fields().ByJSONName(name)
		}
		if fd == nil {
			return nil, fmt.Errorf("field %s: %s has no field %q", path, md.FullName(), name)
		}
		out = append(out, fd)
		md = nil
		if fd.Kind() == protoreflect.MessageKind && fd.Cardinality() != protoreflect.Repeated {
			md = fd.Message()
		}
		if i < len(names)-1 && md == nil {
			return nil, fmt.Errorf("field %s: %s is not a singular message", path, name)
		}
	}
	return out, nil
}

// parentOf returns the message holding the last field of fds, creating the ones on the way.
func parentOf(m protoreflect.Message, fds []protoreflect.FieldDescriptor) protoreflect.Message {
	for _, fd := range fds[:len(fds)-1] {
		m = m.Mutable(fd).Message()
	}
	return m
}

// mutableLeaf returns the message field at fds, created if unset.
func mutableLeaf(m protoreflect.Message, fds []protoreflect.FieldDescriptor) protoreflect.ProtoMessage {
	return parentOf(m, fds).Mutable(fds[len(fds)-1]).Message().Interface()
}

// leafMessage returns the message field at fds (for response_body).
func leafMessage(m protoreflect.Message, fds []protoreflect.FieldDescriptor) protoreflect.ProtoMessage {
	for _, fd := range fds {
		m = m.Get(fd).Message()
	}
	return m.Interface()
}

// setPathField sets a path variable's field; a body that set it otherwise is refused.
func setPathField(m protoreflect.Message, fds []protoreflect.FieldDescriptor, path, raw string) error {
	fd := fds[len(fds)-1]
	if fd.Cardinality() == protoreflect.Repeated || fd.Kind() == protoreflect.MessageKind {
		return status.Errorf(codes.Internal, "path variable %s is not a singular scalar", path)
	}
	v, err := parseScalar(fd, raw)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "path variable %s: %v", path, err)
	}
	parent := parentOf(m, fds)
	if parent.Has(fd) && !parent.Get(fd).Equal(v) {
		return status.Errorf(codes.InvalidArgument, "%s %q in the body does not match the URL's %q", path, parent.Get(fd).Interface(), raw)
	}
	parent.Set(fd, v)
	return nil
}

// setQuery sets the query parameters' fields: not the path's, not under the body's.
func setQuery(req protoreflect.ProtoMessage, rt *route, bound map[string]bool, query map[string][]string) error {
	in := rt.method.Input()
	for key, vals := range query {
		if systemParams[key] {
			continue
		}
		if rt.body == "*" {
			return status.Errorf(codes.InvalidArgument, "Cannot bind query parameter '%s': the request body carries every field.", key)
		}
		fds, err := fieldPath(in, key)
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "Cannot bind query parameter '%s': %v", key, err)
		}
		if under(fds, rt.body, in) || boundBy(fds, bound, in) {
			return status.Errorf(codes.InvalidArgument, "Cannot bind query parameter '%s': the field is bound by the path or the body.", key)
		}
		if err := setQueryField(req.ProtoReflect(), fds, key, vals); err != nil {
			return err
		}
	}
	return nil
}

// under reports whether fds is the body field or inside it.
func under(fds []protoreflect.FieldDescriptor, body string, in protoreflect.MessageDescriptor) bool {
	if body == "" {
		return false
	}
	bfds, _ := fieldPath(in, body)
	return prefixOf(bfds, fds)
}

// boundBy reports whether fds is a path variable's field, inside it, or holds it.
func boundBy(fds []protoreflect.FieldDescriptor, bound map[string]bool, in protoreflect.MessageDescriptor) bool {
	for path := range bound {
		pfds, _ := fieldPath(in, path)
		if prefixOf(pfds, fds) || prefixOf(fds, pfds) {
			return true
		}
	}
	return false
}

func prefixOf(a, b []protoreflect.FieldDescriptor) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func setQueryField(m protoreflect.Message, fds []protoreflect.FieldDescriptor, key string, vals []string) error {
	fd := fds[len(fds)-1]
	if fd.IsMap() {
		return status.Errorf(codes.InvalidArgument, "Cannot bind query parameter '%s': map fields cannot be given in the query.", key)
	}
	repeated := fd.Cardinality() == protoreflect.Repeated
	if !repeated && len(vals) > 1 {
		return status.Errorf(codes.InvalidArgument, "Cannot bind query parameter '%s': %d values for a singular field.", key, len(vals))
	}
	parent := parentOf(m, fds)
	for _, raw := range vals {
		var v protoreflect.Value
		if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
			var elem protoreflect.Message
			if repeated {
				elem = parent.NewField(fd).List().NewElement().Message()
			} else {
				elem = parent.Mutable(fd).Message()
			}
			if err := unmarshalScalarMessage(elem, raw); err != nil {
				return status.Errorf(codes.InvalidArgument, "Invalid value at '%s' (%s): %q", key, fd.Message().FullName(), raw)
			}
			if !repeated {
				continue
			}
			v = protoreflect.ValueOfMessage(elem)
		} else {
			var err error
			if v, err = parseScalar(fd, raw); err != nil {
				return status.Errorf(codes.InvalidArgument, "Invalid value at '%s': %v", key, err)
			}
		}
		if repeated {
			parent.Mutable(fd).List().Append(v)
		} else {
			parent.Set(fd, v)
		}
	}
	return nil
}

// unmarshalScalarMessage reads a well-known type given as one query value (a Timestamp,
// Duration, FieldMask or wrapper) through its JSON form; other messages are refused.
func unmarshalScalarMessage(m protoreflect.Message, raw string) error {
	name := m.Descriptor().FullName()
	if !strings.HasPrefix(string(name), "google.protobuf.") || name == "google.protobuf.Struct" || name == "google.protobuf.Any" {
		return fmt.Errorf("%s cannot be given in the query", name)
	}
	js := strconv.Quote(raw) // protojson reads numbers from strings too
	if name == "google.protobuf.BoolValue" {
		js = raw
	}
	return protojson.Unmarshal([]byte(js), m.Interface())
}

// parseScalar parses one query or path value of a scalar field, as Google's front ends do.
func parseScalar(fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		switch s {
		case "true", "1":
			return protoreflect.ValueOfBool(true), nil
		case "false", "0":
			return protoreflect.ValueOfBool(false), nil
		}
		return protoreflect.Value{}, fmt.Errorf("%q is not a bool", s)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(s, 10, 32)
		return protoreflect.ValueOfInt32(int32(n)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(s, 10, 64)
		return protoreflect.ValueOfInt64(n), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(s, 10, 32)
		return protoreflect.ValueOfUint32(uint32(n)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(s, 10, 64)
		return protoreflect.ValueOfUint64(n), err
	case protoreflect.FloatKind:
		f, err := strconv.ParseFloat(s, 32)
		if err == nil && math.IsInf(f, 0) && !strings.Contains(strings.ToLower(s), "inf") {
			err = fmt.Errorf("%q is out of range", s)
		}
		return protoreflect.ValueOfFloat32(float32(f)), err
	case protoreflect.DoubleKind:
		f, err := strconv.ParseFloat(s, 64)
		return protoreflect.ValueOfFloat64(f), err
	case protoreflect.BytesKind:
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				return protoreflect.ValueOfBytes(b), nil
			}
		}
		return protoreflect.Value{}, fmt.Errorf("%q is not base64", s)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || fd.Enum().Values().ByNumber(protoreflect.EnumNumber(n)) == nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not a value of %s", s, fd.Enum().FullName())
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
	}
	return protoreflect.Value{}, fmt.Errorf("field %s of kind %s cannot be given as text", fd.FullName(), fd.Kind())
}
