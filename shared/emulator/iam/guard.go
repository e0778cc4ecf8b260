package iam

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// guard is the permission a gRPC method needs and where the request names its resource.
type guard struct {
	permission string
	field      string // dotted path of the request field holding the resource name
	// with replaces permission when the request sets this top-level field (RunJob overrides).
	with, withPermission string
}

// guards are the permissions of the RPCs the Runway Jobs components call, as Google checks
// them. Methods not listed (Monitoring, Operations, the IAM methods themselves) are never
// denied.
var guards = map[string]guard{
	"/google.cloud.run.v2.Jobs/CreateJob":             {permission: "run.jobs.create", field: "parent"},
	"/google.cloud.run.v2.Jobs/GetJob":                {permission: "run.jobs.get", field: "name"},
	"/google.cloud.run.v2.Jobs/ListJobs":              {permission: "run.jobs.list", field: "parent"},
	"/google.cloud.run.v2.Jobs/UpdateJob":             {permission: "run.jobs.update", field: "job.name"},
	"/google.cloud.run.v2.Jobs/DeleteJob":             {permission: "run.jobs.delete", field: "name"},
	"/google.cloud.run.v2.Jobs/RunJob":                {permission: "run.jobs.run", field: "name", with: "overrides", withPermission: "run.jobs.runWithOverrides"},
	"/google.cloud.run.v2.Executions/GetExecution":    {permission: "run.executions.get", field: "name"},
	"/google.cloud.run.v2.Executions/ListExecutions":  {permission: "run.executions.list", field: "parent"},
	"/google.cloud.run.v2.Executions/DeleteExecution": {permission: "run.executions.delete", field: "name"},
	"/google.cloud.run.v2.Executions/CancelExecution": {permission: "run.executions.cancel", field: "name"},
	"/google.cloud.run.v2.Tasks/GetTask":              {permission: "run.tasks.get", field: "name"},
	"/google.cloud.run.v2.Tasks/ListTasks":            {permission: "run.tasks.list", field: "parent"},

	"/google.cloud.scheduler.v1.CloudScheduler/ListJobs":  {permission: "cloudscheduler.jobs.list", field: "parent"},
	"/google.cloud.scheduler.v1.CloudScheduler/GetJob":    {permission: "cloudscheduler.jobs.get", field: "name"},
	"/google.cloud.scheduler.v1.CloudScheduler/CreateJob": {permission: "cloudscheduler.jobs.create", field: "parent"},
	"/google.cloud.scheduler.v1.CloudScheduler/UpdateJob": {permission: "cloudscheduler.jobs.update", field: "job.name"},
	"/google.cloud.scheduler.v1.CloudScheduler/DeleteJob": {permission: "cloudscheduler.jobs.delete", field: "name"},
	"/google.cloud.scheduler.v1.CloudScheduler/PauseJob":  {permission: "cloudscheduler.jobs.pause", field: "name"},
	"/google.cloud.scheduler.v1.CloudScheduler/ResumeJob": {permission: "cloudscheduler.jobs.enable", field: "name"},
	"/google.cloud.scheduler.v1.CloudScheduler/RunJob":    {permission: "cloudscheduler.jobs.run", field: "name"},

	"/google.pubsub.v1.Publisher/CreateTopic":            {permission: "pubsub.topics.create", field: "name"},
	"/google.pubsub.v1.Publisher/GetTopic":               {permission: "pubsub.topics.get", field: "topic"},
	"/google.pubsub.v1.Publisher/UpdateTopic":            {permission: "pubsub.topics.update", field: "topic.name"},
	"/google.pubsub.v1.Publisher/DeleteTopic":            {permission: "pubsub.topics.delete", field: "topic"},
	"/google.pubsub.v1.Publisher/Publish":                {permission: "pubsub.topics.publish", field: "topic"},
	"/google.pubsub.v1.Publisher/ListTopics":             {permission: "pubsub.topics.list", field: "project"},
	"/google.pubsub.v1.Publisher/ListTopicSubscriptions": {permission: "pubsub.topics.get", field: "topic"},
	"/google.pubsub.v1.Subscriber/CreateSubscription":    {permission: "pubsub.subscriptions.create", field: "name"},
	"/google.pubsub.v1.Subscriber/GetSubscription":       {permission: "pubsub.subscriptions.get", field: "subscription"},
	"/google.pubsub.v1.Subscriber/DeleteSubscription":    {permission: "pubsub.subscriptions.delete", field: "subscription"},
	"/google.pubsub.v1.Subscriber/Pull":                  {permission: "pubsub.subscriptions.consume", field: "subscription"},
	"/google.pubsub.v1.Subscriber/Acknowledge":           {permission: "pubsub.subscriptions.consume", field: "subscription"},
	"/google.pubsub.v1.Subscriber/ModifyAckDeadline":     {permission: "pubsub.subscriptions.consume", field: "subscription"},
}

// Guarded returns the permission method needs for req and the resource it is checked on;
// ok is false for methods that are never denied.
func Guarded(method string, req any) (permission, resource string, ok bool) {
	g, ok := guards[method]
	m, isMsg := req.(proto.Message)
	if !ok || !isMsg {
		return "", "", false
	}
	permission = g.permission
	if g.with != "" {
		r := m.ProtoReflect()
		if fd := r.Descriptor().Fields().ByName(protoreflect.Name(g.with)); fd != nil && r.Has(fd) {
			permission = g.withPermission
		}
	}
	return permission, stringField(m.ProtoReflect(), g.field), true
}

// stringField reads the string at a dotted field path; "" when any step is unset.
func stringField(m protoreflect.Message, path string) string {
	head, rest, nested := strings.Cut(path, ".")
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(head))
	if fd == nil || !m.Has(fd) {
		return ""
	}
	if nested {
		if fd.Kind() != protoreflect.MessageKind {
			return ""
		}
		return stringField(m.Get(fd).Message(), rest)
	}
	if fd.Kind() != protoreflect.StringKind {
		return ""
	}
	return m.Get(fd).String()
}

// UnaryInterceptor denies the guarded unary RPCs whose permission a rule takes away.
func (p *Policy) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if perm, res, ok := Guarded(info.FullMethod, req); ok {
			if err := p.Check(perm, res); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}
