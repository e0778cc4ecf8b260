package rest

import (
	"encoding/json"
	"errors"
	"net/http"

	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/rpc/code"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
)

// HTTPStatus maps a gRPC code to its HTTP status, as google.rpc.Code documents it.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError // Unknown, Internal, DataLoss
}

// errorBody is Google's JSON error shape.
type errorBody struct {
	Error struct {
		Code    int               `json:"code"`
		Message string            `json:"message"`
		Status  string            `json:"status"`
		Details []json.RawMessage `json:"details,omitempty"`
	} `json:"error"`
}

// WriteError writes err (its gRPC status) in Google's JSON error shape:
// {"error":{"code":404,"message":"…","status":"NOT_FOUND","details":[{"@type":…}]}}.
func WriteError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	var body errorBody
	body.Error.Code = HTTPStatus(st.Code())
	body.Error.Message = st.Message()
	body.Error.Status = code.Code(st.Code()).String()
	for _, d := range st.Proto().GetDetails() {
		b, err := protojson.Marshal(d)
		if err != nil {
			continue // a detail of a type this binary does not link
		}
		body.Error.Details = append(body.Error.Details, b)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(body.Error.Code)
	_ = json.NewEncoder(w).Encode(body)
}

// StatusOf returns the gRPC status a REST client's error carries: the "status", message and
// details of Google's JSON error body when err holds a *googleapi.Error (the HTTP status alone
// cannot tell FAILED_PRECONDITION from INVALID_ARGUMENT), else status.Convert(err).
func StatusOf(err error) *status.Status {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return status.Convert(err)
	}
	var body errorBody
	if json.Unmarshal([]byte(ge.Body), &body) != nil {
		return status.Convert(err)
	}
	c, ok := code.Code_value[body.Error.Status]
	if !ok {
		return status.Convert(err)
	}
	sp := &spb.Status{Code: c, Message: body.Error.Message}
	for _, d := range body.Error.Details {
		a := &anypb.Any{}
		if protojson.Unmarshal(d, a) == nil {
			sp.Details = append(sp.Details, a)
		}
	}
	return status.FromProto(sp)
}

// ClientOptions are the options that point an official REST client (run.NewJobsRESTClient,
// scheduler.NewCloudSchedulerRESTClient, google.golang.org/api/monitoring/v3) at an emulator
// serving REST on addr (host:port), without authentication.
func ClientOptions(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint("http://" + addr),
		option.WithoutAuthentication(),
		option.WithTelemetryDisabled(),
	}
}
