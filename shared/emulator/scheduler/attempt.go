package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// publishTimeout bounds a Pub/Sub attempt (attempt_deadline does not apply to Pub/Sub targets).
const publishTimeout = time.Minute

// maxResponseBytes is how much of an HTTP target's response is read before it is closed.
const maxResponseBytes = 1 << 20

// fire runs the execution of a scheduled slot: it waits for an attempt of j in flight (manual
// clock) or leaves the slot held for that attempt to start when it ends (real clock), then makes
// the first attempt on the caller's goroutine and leaves retries to another.
func (s *Service) fire(j *job, slot time.Time, manual bool) {
	s.mu.Lock()
	for j.busy != nil {
		if !manual {
			if slot.After(j.held) {
				j.held = slot
			}
			s.mu.Unlock()
			return
		}
		busy := j.busy
		s.mu.Unlock()
		<-busy
		s.mu.Lock()
	}
	if s.closed || s.jobs[j.pb.GetName()] != j || j.pb.GetState() != schedulerpb.Job_ENABLED {
		s.mu.Unlock()
		return
	}
	j.exec++
	e := &execution{j: j, id: j.exec, slot: slot, snap: proto.Clone(j.pb).(*schedulerpb.Job)}
	j.busy = make(chan struct{})
	s.mu.Unlock()

	at := s.clock.Now()
	if manual {
		at = slot // the manual clock has jumped past the slot; the attempt belongs to the slot
	}
	e.first = time.Now()
	ok := s.attempt(e, at)
	s.finish(e, ok, true)
}

// runNow is RunJob's execution: it does not wait for an attempt in flight ("even if the job is
// already running"), but holds the job if it is idle so that scheduled slots wait for it.
func (s *Service) runNow(j *job) {
	s.mu.Lock()
	if s.closed || s.jobs[j.pb.GetName()] != j {
		s.mu.Unlock()
		return
	}
	j.exec++
	now := s.clock.Now()
	e := &execution{j: j, id: j.exec, slot: now, snap: proto.Clone(j.pb).(*schedulerpb.Job)}
	hold := j.busy == nil
	if hold {
		j.busy = make(chan struct{})
	}
	s.mu.Unlock()
	e.first = time.Now()
	ok := s.attempt(e, now)
	s.finish(e, ok, hold)
}

// execution is one run of a job for one schedule time: a first attempt and its retries.
type execution struct {
	j     *job
	id    uint64
	slot  time.Time        // the schedule time sent with every attempt
	snap  *schedulerpb.Job // the job as it was when the execution started
	first time.Time        // real time of the first attempt, for max_retry_duration
	tries int              // attempts made
}

// finish ends an attempt: it releases the job if the attempt held it (starting a slot held
// meanwhile), and starts the retries of a failed attempt.
func (s *Service) finish(e *execution, ok, held bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := e.j
	if held && j.busy != nil {
		close(j.busy)
		j.busy = nil
		if slot := j.held; !slot.IsZero() {
			j.held = time.Time{}
			s.goLocked(func() { s.fire(j, slot, false) })
		}
	}
	if ok || j.exec != e.id {
		return
	}
	if wait, retry := backoff(e.snap.GetRetryConfig(), e.tries, time.Since(e.first)); retry {
		s.goLocked(func() { s.retry(e, wait) })
	}
}

// retry waits out a backoff and attempts the execution again, unless a newer execution started
// (the next slot, RunJob) or the job was paused, updated or deleted meanwhile.
func (s *Service) retry(e *execution, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return
	case <-t.C:
	}
	s.mu.Lock()
	j := e.j
	for j.busy != nil && j.exec == e.id {
		busy := j.busy
		s.mu.Unlock()
		<-busy
		s.mu.Lock()
	}
	if s.closed || s.jobs[j.pb.GetName()] != j || j.exec != e.id {
		s.mu.Unlock()
		return
	}
	j.busy = make(chan struct{})
	s.mu.Unlock()
	ok := s.attempt(e, s.clock.Now())
	s.finish(e, ok, true)
}

// backoff returns the wait before retry number tries (1 for the first retry) and whether it is
// allowed: at most retry_count retries, none starting past max_retry_duration.
//
// The wait starts at min_backoff_duration, doubles max_doublings times, then grows by the last
// doubled step each time, never beyond max_backoff_duration: with 10s, 300s and 3 doublings,
// 10s, 20s, 40s, 80s, 160s, 240s, 300s, 300s.
func backoff(rc *schedulerpb.RetryConfig, tries int, elapsed time.Duration) (time.Duration, bool) {
	retries := tries - 1 // retries already made
	if retries >= int(rc.GetRetryCount()) {
		return 0, false
	}
	minB, maxB := rc.GetMinBackoffDuration().AsDuration(), rc.GetMaxBackoffDuration().AsDuration()
	doublings := int(rc.GetMaxDoublings())
	var wait time.Duration
	if retries <= doublings {
		wait = minB << retries
	} else {
		step := minB << doublings
		wait = step * time.Duration(retries-doublings+1)
	}
	if wait > maxB || wait < 0 { // wait < 0: the shift overflowed
		wait = maxB
	}
	if limit := rc.GetMaxRetryDuration().AsDuration(); limit > 0 && elapsed+wait > limit {
		return 0, false
	}
	return wait, true
}

// attempt delivers the execution once and records status and last_attempt_time on the job (if it
// still exists). at is the attempt's start on the service's clock.
func (s *Service) attempt(e *execution, at time.Time) bool {
	e.tries++
	var st *status.Status
	switch t := e.snap.GetTarget().(type) {
	case *schedulerpb.Job_HttpTarget:
		st = s.deliverHTTP(e, t.HttpTarget)
	case *schedulerpb.Job_PubsubTarget:
		st = s.publish(t.PubsubTarget)
	default: // refused by validation
		st = status.New(codes.Unimplemented, "target not supported by the emulator")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs[e.j.pb.GetName()] == e.j {
		e.j.pb.Status = st.Proto()
		if st.Code() == codes.OK {
			e.j.pb.Status = &spb.Status{}
		}
		e.j.pb.LastAttemptTime = timestamppb.New(at)
		e.j.record(at, e.slot, st)
	}
	return st.Code() == codes.OK
}

// publish delivers a Pub/Sub target through the Publisher.
func (s *Service) publish(t *schedulerpb.PubsubTarget) *status.Status {
	if s.pub == nil {
		return status.New(codes.FailedPrecondition, "emulator: no Pub/Sub publisher configured")
	}
	ctx, cancel := context.WithTimeout(s.ctx, publishTimeout)
	defer cancel()
	if _, err := s.pub.Publish(ctx, t.GetTopicName(), t.GetData(), t.GetAttributes()); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return status.New(codes.DeadlineExceeded, err.Error())
		}
		return status.Convert(err)
	}
	return status.New(codes.OK, "")
}

// deliverHTTP sends an HTTP target's request with Cloud Scheduler's headers and maps the outcome
// to a status.
func (s *Service) deliverHTTP(e *execution, t *schedulerpb.HttpTarget) *status.Status {
	deadline := e.snap.GetAttemptDeadline().AsDuration()
	if deadline <= 0 {
		deadline = defaultAttemptDeadline
	}
	ctx, cancel := context.WithTimeout(s.ctx, deadline)
	defer cancel()
	var body io.Reader
	if len(t.GetBody()) > 0 {
		body = bytes.NewReader(t.GetBody())
	}
	req, err := http.NewRequestWithContext(ctx, httpMethod(t.GetHttpMethod()), t.GetUri(), body)
	if err != nil {
		return status.New(codes.InvalidArgument, fmt.Sprintf("building request: %v", err))
	}
	withToken := t.GetOauthToken() != nil || t.GetOidcToken() != nil
	for k, v := range t.GetHeaders() {
		if ignoredHeader(k, withToken) {
			continue
		}
		req.Header.Set(k, v)
	}
	if len(t.GetBody()) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	req.Header.Set("User-Agent", "Google-Cloud-Scheduler")
	req.Header.Set("X-CloudScheduler", "true")
	req.Header.Set("X-CloudScheduler-JobName", jobID(e.snap.GetName()))
	req.Header.Set("X-CloudScheduler-ScheduleTime", e.slot.UTC().Format(time.RFC3339))

	resp, err := s.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return status.New(codes.DeadlineExceeded, fmt.Sprintf("attempt_deadline %s exceeded", deadline))
		case s.ctx.Err() != nil:
			return status.New(codes.Canceled, "emulator closed")
		}
		return status.New(codes.Unavailable, err.Error())
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return status.New(codes.OK, "")
	}
	return status.New(httpCode(resp.StatusCode), fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
}

// ignoredHeader reports whether a user header is computed or replaced by Cloud Scheduler.
func ignoredHeader(k string, withToken bool) bool {
	switch c := http.CanonicalHeaderKey(k); {
	case c == "Host", c == "Content-Length", c == "User-Agent":
		return true
	case strings.HasPrefix(c, "X-Google-"), strings.HasPrefix(c, "X-Appengine-"), strings.HasPrefix(c, "X-Cloudscheduler"):
		return true
	case c == "Authorization":
		return withToken // overridden by the (here absent) token
	}
	return false
}

// httpMethod returns the method name; unspecified means POST.
func httpMethod(m schedulerpb.HttpMethod) string {
	if m == schedulerpb.HttpMethod_HTTP_METHOD_UNSPECIFIED {
		return http.MethodPost
	}
	return m.String()
}

// httpCode maps an HTTP status to the google.rpc code of the standard HTTP mapping.
func httpCode(code int) codes.Code {
	switch code {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.Aborted
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case 499:
		return codes.Canceled
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	}
	switch {
	case code >= 500:
		return codes.Internal
	case code >= 400:
		return codes.FailedPrecondition
	}
	return codes.Unknown
}
