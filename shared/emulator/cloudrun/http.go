package cloudrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator/rest"
)

// logsPath is where the execution logs are served: logsPath + execution name.
const logsPath = "/emulator/v1/logs/"

// Pseudo-methods checked against Options.Faults for the hand-written HTTP routes (the v2
// REST API is checked as the gRPC methods it calls).
const (
	faultRunJob = "/http/run.googleapis.com/RunJob"
	faultLogs   = "/http/emulator/Logs"
)

const maxBody = 1 << 20

// RESTServices are the services Register adds whose google.api.http annotations the REST
// transcoder (package rest) serves; HTTPRules binds the fourth, google.longrunning.Operations.
var RESTServices = []string{
	runpb.Jobs_ServiceDesc.ServiceName,
	runpb.Executions_ServiceDesc.ServiceName,
	runpb.Tasks_ServiceDesc.ServiceName,
}

// HTTPRules are Cloud Run Admin v2's service-config HTTP rules (run_v2.yaml): where its REST
// clients reach the operations, which the Operations proto itself annotates under /v1/operations.
var HTTPRules = []*annotations.HttpRule{
	{Selector: "google.longrunning.Operations.GetOperation", Pattern: &annotations.HttpRule_Get{Get: "/v2/{name=projects/*/locations/*/operations/*}"}},
	{Selector: "google.longrunning.Operations.DeleteOperation", Pattern: &annotations.HttpRule_Delete{Delete: "/v2/{name=projects/*/locations/*/operations/*}"}},
	{Selector: "google.longrunning.Operations.ListOperations", Pattern: &annotations.HttpRule_Get{Get: "/v2/{name=projects/*/locations/*}/operations"}},
	{Selector: "google.longrunning.Operations.WaitOperation", Pattern: &annotations.HttpRule_Post{Post: "/v2/{name=projects/*/locations/*/operations/*}:wait"}, Body: "*"},
}

// registerHTTP adds the Cloud Run Admin v1 run path (what a Cloud Scheduler http_target may
// call; the v2 API, :run included, is served by package rest from the protos) and the logs.
//
//	POST /apis/run.googleapis.com/v1/namespaces/{project}/jobs/{job}:run  body: v1 RunJobRequest JSON (may be empty); answer: v1 Execution JSON
//	GET  /emulator/v1/logs/{execution name}[?task=N]                   every attempt's output, as text
//
// The v1 path has no location (Google serves it on regional endpoints): the emulator runs the
// job of that id in the only location of the project where it exists, and answers 400 if
// there are several.
func (s *Service) registerHTTP(mux *http.ServeMux) {
	mux.HandleFunc("POST /apis/run.googleapis.com/v1/namespaces/{project}/jobs/{jobverb}", s.handleRunV1)
	mux.HandleFunc("GET "+logsPath+"{name...}", s.handleLogs)
}

func (s *Service) checkFault(ctx context.Context, method string) error {
	if s.opts.Faults == nil {
		return nil
	}
	return s.opts.Faults.Check(ctx, method)
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "reading the body: %v", err)
	}
	if len(b) > maxBody {
		return nil, status.Errorf(codes.InvalidArgument, "the body is larger than %d bytes", maxBody)
	}
	return b, nil
}

// v1RunRequest is the body of the v1 namespaces.jobs.run call.
type v1RunRequest struct {
	Overrides *struct {
		ContainerOverrides []struct {
			Name string   `json:"name"`
			Args []string `json:"args"`
			Env  []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"env"`
			ClearArgs bool `json:"clearArgs"`
		} `json:"containerOverrides"`
		TaskCount      int32       `json:"taskCount"`
		TimeoutSeconds json.Number `json:"timeoutSeconds"` // int64: a string or a number
	} `json:"overrides"`
}

func (v *v1RunRequest) toV2(name string) (*runpb.RunJobRequest, error) {
	req := &runpb.RunJobRequest{Name: name}
	if v.Overrides == nil {
		return req, nil
	}
	ov := &runpb.RunJobRequest_Overrides{TaskCount: v.Overrides.TaskCount}
	if v.Overrides.TimeoutSeconds != "" {
		n, err := v.Overrides.TimeoutSeconds.Int64()
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "overrides.timeoutSeconds %q is not an integer", v.Overrides.TimeoutSeconds)
		}
		ov.Timeout = &durationpb.Duration{Seconds: n}
	}
	for _, c := range v.Overrides.ContainerOverrides {
		co := &runpb.RunJobRequest_Overrides_ContainerOverride{Name: c.Name, Args: c.Args, ClearArgs: c.ClearArgs}
		for _, e := range c.Env {
			co.Env = append(co.Env, &runpb.EnvVar{Name: e.Name, Values: &runpb.EnvVar_Value{Value: e.Value}})
		}
		ov.ContainerOverrides = append(ov.ContainerOverrides, co)
	}
	req.Overrides = ov
	return req, nil
}

// jobLocation returns the only location of project that has a job with id. s.mu not held.
func (s *Service) jobLocation(project, id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var locs []string
	for _, js := range s.jobs {
		if js.key.project == project && js.key.job == id {
			locs = append(locs, js.key.location)
		}
	}
	switch len(locs) {
	case 0:
		return "", status.Errorf(codes.NotFound, "Resource '%s' of kind 'JOB' in project '%s' does not exist.", id, project)
	case 1:
		return locs[0], nil
	}
	return "", status.Errorf(codes.FailedPrecondition, "job %s exists in several locations (%s): the emulator cannot tell which regional endpoint was meant; use the v2 path", id, strings.Join(locs, ", "))
}

func (s *Service) handleRunV1(w http.ResponseWriter, r *http.Request) {
	if err := s.checkFault(r.Context(), faultRunJob); err != nil {
		rest.WriteError(w, err)
		return
	}
	project := r.PathValue("project")
	job, ok := strings.CutSuffix(r.PathValue("jobverb"), ":run")
	if !ok {
		rest.WriteError(w, status.Errorf(codes.NotFound, "no route for POST %s (only :run is served)", r.URL.Path))
		return
	}
	body, err := readBody(r)
	if err != nil {
		rest.WriteError(w, err)
		return
	}
	var v1 v1RunRequest
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &v1); err != nil {
			rest.WriteError(w, status.Errorf(codes.InvalidArgument, "RunJobRequest: %v", err))
			return
		}
	}
	location, err := s.jobLocation(project, job)
	if err != nil {
		rest.WriteError(w, err)
		return
	}
	req, err := v1.toV2(jobKey{project, location, job}.name())
	if err != nil {
		rest.WriteError(w, err)
		return
	}
	op, err := s.runJob(req)
	if err != nil {
		rest.WriteError(w, err)
		return
	}
	x := &runpb.Execution{}
	if err := op.GetMetadata().UnmarshalTo(x); err != nil {
		rest.WriteError(w, status.Errorf(codes.Internal, "operation metadata: %v", err))
		return
	}
	id := filepath.Base(x.Name)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"apiVersion": "run.googleapis.com/v1",
		"kind":       "Execution",
		"metadata": map[string]any{
			"name":              id,
			"namespace":         project,
			"uid":               x.Uid,
			"generation":        x.Generation,
			"creationTimestamp": x.CreateTime.AsTime().Format("2006-01-02T15:04:05Z07:00"),
			"labels":            map[string]string{"run.googleapis.com/job": job},
			"selfLink":          "/apis/run.googleapis.com/v1/namespaces/" + project + "/executions/" + id,
		},
		"spec":   map[string]any{"parallelism": x.Parallelism, "taskCount": x.TaskCount},
		"status": map[string]any{"observedGeneration": x.ObservedGeneration, "logUri": x.LogUri},
	})
}

// handleLogs serves every attempt's output of an execution (or of one task with ?task=N), each
// under a header line, in task and attempt order.
func (s *Service) handleLogs(w http.ResponseWriter, r *http.Request) {
	if err := s.checkFault(r.Context(), faultLogs); err != nil {
		rest.WriteError(w, err)
		return
	}
	name := r.PathValue("name")
	only := -1
	if q := r.URL.Query().Get("task"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("task %q is not a task index", q), http.StatusBadRequest)
			return
		}
		only = n
	}
	type attemptLog struct {
		task    string
		attempt int
		path    string
	}
	var logs []attemptLog
	s.mu.Lock()
	e, ok := s.execs[name]
	if ok {
		for i, tk := range e.tasks {
			if only >= 0 && i != only {
				continue
			}
			for a, p := range tk.attempts {
				logs = append(logs, attemptLog{filepath.Base(tk.task.Name), a, p})
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("execution %q not found", name), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, l := range logs {
		fmt.Fprintf(w, "=== %s attempt %d ===\n", l.task, l.attempt)
		f, err := os.Open(l.path)
		if err != nil {
			continue // not created yet, or deleted meanwhile
		}
		// The file holds at most MaxLogBytes of output plus the emulator's notes.
		_, _ = io.Copy(w, io.LimitReader(f, s.opts.MaxLogBytes+4096))
		f.Close()
	}
}
