package monitor

import (
	"context"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"golang.org/x/sync/errgroup"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/notify"
)

// maxStatusMessage bounds the Scheduler status message quoted in an alert.
const maxStatusMessage = 300

// observeScheduler reads, for each job with slots no known execution serves (detect.Unserved),
// its Cloud Scheduler job — the same resource name as the Cloud Run job — so that a missed
// slot's alert says why, and sets the links of its slots. A failed read is logged and leaves
// the alert without the reason: it is no reason to hold the tick.
func (h *Handler) observeScheduler(ctx context.Context, st *detect.State, obs []detect.Observation, t time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(h.cfg.Workers)
	cfg := h.detectConfig()
	for i := range obs {
		o := &obs[i]
		if !o.Job.SlotOwner || o.Job.Settings.Schedule == "" || len(detect.Unserved(st, *o, t, cfg)) == 0 {
			continue
		}
		name := o.Job.Key.Name()
		for _, l := range h.cfg.GCP.SchedulerJobLinks(name) {
			o.Job.Links = append(o.Job.Links, notify.Link{Text: l.Text, Href: l.URL})
		}
		g.Go(func() error {
			j, err := h.cloud.getSchedulerJob(gctx, name)
			switch {
			case status.Code(err) == codes.NotFound:
				o.Scheduler = &detect.SchedulerJob{Name: name, Missing: true}
			case err != nil:
				h.log.Warn().Err(err).Str("job", name).Msg("cannot read the Scheduler job: the missed slot's alert will not say why")
			default:
				o.Scheduler = schedulerJobOf(j)
			}
			return nil
		})
	}
	return g.Wait()
}

// schedulerJobOf converts a Cloud Scheduler job.
func schedulerJobOf(j *schedulerpb.Job) *detect.SchedulerJob {
	out := &detect.SchedulerJob{Name: j.GetName(), State: j.GetState().String()}
	if j.GetLastAttemptTime() != nil {
		out.LastAttempt = j.GetLastAttemptTime().AsTime()
	}
	if st := j.GetStatus(); st != nil {
		out.Code = code.Code(st.GetCode()).String() // google.rpc names: OK, NOT_FOUND, …
		out.Message = bounded(st.GetMessage(), maxStatusMessage)
	}
	return out
}

// bounded cuts s to at most n bytes, on a rune boundary, marking the cut.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
