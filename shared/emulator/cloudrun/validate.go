package cloudrun

import (
	"fmt"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/gcp/runcontract"
)

// badRequest is Cloud Run's refusal of a field: INVALID_ARGUMENT, the message
// "{field}: {description}" and a google.rpc.BadRequest naming the field.
func badRequest(field, description string) error {
	st := status.New(codes.InvalidArgument, field+": "+description)
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}}}); err == nil {
		st = d
	}
	return st.Err()
}

// checkMetadata applies the label and annotation rules of runcontract (and the reserved
// prefixes) to a resource's labels and annotations; prefix is "" for the job, "template." for
// its execution template.
func checkMetadata(prefix string, labels, annotations map[string]string) error {
	if err := checkReserved(prefix+"labels", labels); err != nil {
		return err
	}
	if err := checkReserved(prefix+"annotations", annotations); err != nil {
		return err
	}
	if p := runcontract.LabelsProblem(labels); p != "" {
		return badRequest(prefix+"labels", p)
	}
	if p := runcontract.AnnotationsProblem(annotations); p != "" {
		return badRequest(prefix+"annotations", p)
	}
	return nil
}

// checkContainer applies the container rules of runcontract to the job's container.
func checkContainer(field string, c *runpb.Container) error {
	if p := runcontract.ContainerNameProblem(c.GetName()); p != "" {
		return badRequest(field+".name", p)
	}
	return checkEnv(field+".env", c.GetEnv())
}

// checkEnv applies runcontract's environment rules to env: each name and value, the reserved
// names (all of them in one refusal, as Cloud Run words it) and the count.
func checkEnv(field string, env []*runpb.EnvVar) error {
	if len(env) > runcontract.MaxEnvVars {
		return badRequest(field, fmt.Sprintf("%d environment variables were provided; a container can have at most %d.", len(env), runcontract.MaxEnvVars))
	}
	names := make([]string, len(env))
	for i, e := range env {
		if p := runcontract.EnvProblem(e.GetName(), e.GetValue()); p != "" {
			return badRequest(fmt.Sprintf("%s[%d]", field, i), p)
		}
		names[i] = e.GetName()
	}
	if m := runcontract.ReservedEnvMessage(names); m != "" {
		return badRequest(field, m)
	}
	return nil
}
