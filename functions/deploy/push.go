package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
)

// ArtifactPush is an Artifact Registry notification (topic "gcr"). Either field may be
// missing: an untagged push has no tag, a tag deletion may have no digest.
type ArtifactPush struct {
	Action string `json:"action"` // INSERT | DELETE
	Digest string `json:"digest"` // HOST/PROJECT/REPO/IMAGE@sha256:…
	Tag    string `json:"tag"`    // HOST/PROJECT/REPO/IMAGE:TAG
}

// maxPush bounds an Artifact Registry notification: three short strings.
const maxPush = 64 << 10

// handlePush moves every Runway job whose manifest names the pushed tag to the pushed digest.
// Other tags, other images, DELETE actions and pushes without a digest change nothing.
func (h *Handler) handlePush(ctx context.Context, m event.Message) error {
	var p ArtifactPush
	err := document.ScanJSON(m.Data, maxPush)
	if err != nil {
		err = fmt.Errorf("artifact notification: %w", err)
	} else if err = json.Unmarshal(m.Data, &p); err != nil {
		err = fmt.Errorf("artifact notification is not JSON: %w", err)
	}
	if err != nil {
		err = event.Permanent(err)
		h.log.Error().Str("event_id", m.ID).Err(err).Msg("artifact push refused")
		return err
	}
	if p.Action != "INSERT" || p.Digest == "" || p.Tag == "" || !strings.Contains(p.Digest, "@sha256:") {
		h.log.Info().Str("event_id", m.ID).Str("action", p.Action).Str("tag", p.Tag).Str("digest", p.Digest).Msg("artifact push ignored")
		return nil
	}
	image := p.Digest
	// The digest names the same image as the tag: HOST/PROJECT/REPO/IMAGE.
	if repo, _, _ := strings.Cut(image, "@"); !strings.HasPrefix(p.Tag, repo+":") {
		h.log.Warn().Str("event_id", m.ID).Str("tag", p.Tag).Str("digest", p.Digest).Msg("artifact push ignored: tag and digest name different images")
		return nil
	}
	moved := 0
	for _, w := range h.inv.Jobs() {
		if w.GCPProject != m.Project || !w.ImageAllowed(p.Tag) {
			continue
		}
		n, err := h.moveToDigest(ctx, w, p.Tag, image)
		if err != nil {
			h.log.Warn().Str("event_id", m.ID).Str("workload", w.Name).Err(err).Msg("artifact push failed, will retry")
			return err
		}
		moved += n
		if n > 0 {
			h.log.Info().Str("event_id", m.ID).Str("workload", w.Name).Str("image", image).Msg("artifact push applied")
		}
	}
	if moved == 0 {
		h.log.Info().Str("event_id", m.ID).Str("tag", p.Tag).Msg("artifact push matches no deployed job")
	}
	return nil
}

// moveToDigest updates the workload's jobs that track tag (in any of its regions) to image,
// returning how many it changed. It re-reads on an etag conflict.
func (h *Handler) moveToDigest(ctx context.Context, w inventory.Workload, tag, image string) (int, error) {
	changed := 0
	for _, region := range w.Regions {
		name := platform.JobName(w.GCPProject, region, w.Name)
		for attempt := 1; ; attempt++ {
			n, err := h.moveOne(ctx, name, tag, image)
			if conflict(err) && attempt < maxConflicts {
				continue
			}
			if err != nil {
				return changed, err
			}
			changed += n
			break
		}
	}
	return changed, nil
}

func (h *Handler) moveOne(ctx context.Context, name, tag, image string) (int, error) {
	got, err := h.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		return 0, nil
	}
	if err != nil {
		return 0, classify("run.GetJob "+name, err)
	}
	cs := got.GetTemplate().GetTemplate().GetContainers()
	if !platform.IsManaged(got.Labels) || got.Annotations[platform.AnnotationImageTag] != tag || len(cs) != 1 || cs[0].Image == image {
		return 0, nil
	}
	want := proto.Clone(got).(*runpb.Job)
	want.Template.Template.Containers[0].Image = image
	if err := h.updateJob(ctx, want, got.Etag); err != nil {
		return 0, err
	}
	return 1, nil
}
