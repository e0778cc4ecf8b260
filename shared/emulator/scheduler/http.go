package scheduler

import (
	"encoding/json"
	"net/http"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"runwayjobs.dev/shared/gcp"
)

// keptAttempts is how many attempts of a job its page lists (the newest).
const keptAttempts = 20

// attemptRecord is one attempt as the job's page lists it: the emulator's stand-in for Cloud
// Logging's cloud_scheduler_job entries.
type attemptRecord struct {
	Time         time.Time `json:"time"`
	ScheduleTime time.Time `json:"schedule_time"`
	Code         string    `json:"code"`
	Message      string    `json:"message,omitempty"`
}

// record keeps an attempt's outcome, the newest keptAttempts of them. s.mu must be held.
func (j *job) record(at, slot time.Time, st *status.Status) {
	j.attempts = append(j.attempts, attemptRecord{Time: at.UTC(), ScheduleTime: slot.UTC(), Code: st.Code().String(), Message: st.Message()})
	if n := len(j.attempts); n > keptAttempts {
		j.attempts = append(j.attempts[:0], j.attempts[n-keptAttempts:]...)
	}
}

// RegisterHTTP serves each job's page on mux: GET gcp.EmulatorSchedulerPath + the job's name
// answers {"job": the job as GetJob returns it, in the proto's JSON, "attempts": its recent
// attempts, oldest first}. The monitor's alerts link to it for a slot that got no execution,
// where on Google Cloud they link to the Cloud Console and Cloud Logging.
func (s *Service) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("GET "+gcp.EmulatorSchedulerPath+"{name...}", s.handleJob)
}

func (s *Service) handleJob(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	j, err := s.lookupLocked(name)
	var pb *schedulerpb.Job
	var attempts []attemptRecord
	if err == nil {
		pb = proto.Clone(j.pb).(*schedulerpb.Job)
		attempts = append([]attemptRecord{}, j.attempts...)
	}
	s.mu.Unlock()
	if err != nil {
		code := http.StatusBadRequest
		if status.Code(err) == codes.NotFound {
			code = http.StatusNotFound
		}
		http.Error(w, status.Convert(err).Message(), code)
		return
	}
	b, err := protojson.Marshal(pb)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(struct {
		Job      json.RawMessage `json:"job"`
		Attempts []attemptRecord `json:"attempts"`
	}{b, attempts})
}
