package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/schedule"
)

// Window is how far back the workload page looks.
const Window = 30 * 24 * time.Hour

// executionsShown is how many executions the workload page lists unless asked for all.
const executionsShown = 50

//go:embed templates/*.html templates/console.css
var files embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"workloadURL":  workloadURL,
	"executionURL": executionURL,
	"glyph":        func(o string) string { return glyphs[o] },
	"trigger":      triggerWords,
}).ParseFS(files, "templates/*.html"))

var css = func() []byte { b, _ := files.ReadFile("templates/console.css"); return b }()

// Server serves the console's pages. It only reads: every route is GET (and HEAD).
type Server struct {
	src Source
	mux *http.ServeMux
	log *slog.Logger
}

// New returns the console's handler over src; errors reading src are logged to log.
func New(src Source, log *slog.Logger) *Server {
	s := &Server{src: src, mux: http.NewServeMux(), log: log}
	s.mux.HandleFunc("GET /{$}", s.overview)
	s.mux.HandleFunc("GET /workloads/{workload}", s.workload)
	s.mux.HandleFunc("GET /workloads/{workload}/executions/{execution}", s.execution)
	s.mux.HandleFunc("GET /console.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(css)
	})
	return s
}

// ServeHTTP serves r; the console is read-only, so anything but GET and HEAD is refused.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "the console is read-only: use runwayctl run from the service project's CI", http.StatusMethodNotAllowed)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func workloadURL(name string) string { return "/workloads/" + url.PathEscape(name) }

func executionURL(workload, id string) string {
	return workloadURL(workload) + "/executions/" + url.PathEscape(id)
}

// crumb is one step of the breadcrumb after "Runway Jobs"; the last has no link.
type crumb struct{ Href, Label string }

// overviewPage is the data of the overview.
type overviewPage struct {
	Title  string
	Crumbs []crumb
	Now    stamp
	Rows   []overviewRow
}

type overviewRow struct {
	Summary
	Next     []stamp
	LastAt   stamp
	Incident *incidentView
}

type incidentView struct {
	Incident
	SinceAt, LastAlertAt, SlotAt stamp
}

func incidentOf(in *Incident, loc *time.Location) *incidentView {
	if in == nil {
		return nil
	}
	return &incidentView{Incident: *in, SinceAt: stampOf(in.Since, loc), LastAlertAt: stampOf(in.LastAlert, loc), SlotAt: stampOf(in.Slot, loc)}
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	all, err := s.src.Workloads(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := overviewPage{Title: "Workloads", Now: stampOf(s.src.Now(), time.UTC)}
	for _, sum := range all {
		loc := zoneOf(sum.TimeZone)
		row := overviewRow{Summary: sum, Incident: incidentOf(sum.Incident, loc)}
		for _, t := range sum.Next {
			row.Next = append(row.Next, stampOf(t, loc))
		}
		if sum.Last != nil {
			row.LastAt = stampOf(sum.Last.Started, loc)
		}
		p.Rows = append(p.Rows, row)
	}
	s.render(w, r, "overview", p)
}

// workloadPage is the data of a workload's page.
type workloadPage struct {
	Title      string
	Crumbs     []crumb
	Now        stamp
	W          *Workload
	Zone       string
	Next       []stamp
	Days       []day
	Legend     []legendItem
	NotRun     []notRun
	Executions []executionRow
	Hidden     int // executions not listed (see ?executions=all)
	Incident   *incidentView
	Resolved   *struct{ From, To stamp }
	Alerts     []alertRow
	Pending    []alertRow
	RunLine    string
}

type executionRow struct {
	Execution
	SlotAt, StartedAt stamp
}

type alertRow struct {
	Channel, Action, Kind, Severity, Summary, Detail, Execution, LogURL string
	At                                                                  stamp
}

// workloadPageOf builds the workload page of w as of now; all lists every execution of the
// window.
func workloadPageOf(w *Workload, now time.Time, all bool) workloadPage {
	loc := zoneOf(w.TimeZone)
	p := workloadPage{Title: w.Name, Crumbs: []crumb{{Label: w.Name}}, Now: stampOf(now, loc), W: w, Zone: loc.String(), Legend: legend(),
		Incident: incidentOf(w.Incident, loc), RunLine: RunLine(w.Name)}
	for _, t := range w.Next {
		p.Next = append(p.Next, stampOf(t, loc))
	}
	from := now.Add(-Window)
	var slots []Slot
	if w.Schedule != "" {
		if sched, err := schedule.Parse(w.Schedule, w.TimeZone); err == nil {
			slots = Slots(sched, from, now, w.Manifest.Settings.CreatedAt, w.Executions, w.Records, w.Deadline)
		}
	}
	p.Days = stripOf(w.Name, slots, loc)
	p.NotRun = notRunOf(slots, w.Records, from, loc)
	xs := w.Executions
	if !all && len(xs) > executionsShown {
		p.Hidden = len(xs) - executionsShown
		xs = xs[:executionsShown]
	}
	p.Executions = make([]executionRow, 0, len(xs))
	for _, x := range xs {
		row := executionRow{Execution: x, StartedAt: stampOf(x.Started, loc)}
		if x.Slot != nil {
			row.SlotAt = stampOf(*x.Slot, loc)
		}
		p.Executions = append(p.Executions, row)
	}
	if w.Resolved != nil {
		p.Resolved = &struct{ From, To stamp }{stampOf(w.Resolved.From, loc), stampOf(w.Resolved.To, loc)}
	}
	for i := len(w.Alerts) - 1; i >= 0; i-- {
		a := w.Alerts[i]
		p.Alerts = append(p.Alerts, alertRow{Channel: a.Channel, Action: string(a.Alert.Action), Kind: string(a.Alert.Kind), Severity: string(a.Alert.Severity),
			Summary: a.Alert.Summary, Detail: a.Alert.Detail, Execution: lastPart(a.Alert.Execution), LogURL: a.Alert.LogURL, At: stampOf(a.Alert.Time, loc)})
	}
	for _, a := range w.Pending {
		p.Pending = append(p.Pending, alertRow{Action: string(a.Action), Kind: string(a.Kind), Severity: string(a.Severity),
			Summary: a.Summary, Execution: lastPart(a.Execution), LogURL: a.LogURL, At: stampOf(a.Time, loc)})
	}
	return p
}

// RunLine is the command that runs workload now, for the service project's CI: the console
// itself never starts a job.
func RunLine(workload string) string {
	return "runwayctl run " + workload + ` --reason "…" --wait`
}

func lastPart(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

func (s *Server) workload(w http.ResponseWriter, r *http.Request) {
	now := s.src.Now()
	wl, err := s.src.Workload(r.Context(), r.PathValue("workload"), now.Add(-Window))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "workload", workloadPageOf(wl, now, r.URL.Query().Get("executions") == "all"))
}

// RenderWorkload writes the workload page of wl as of now to out.
func RenderWorkload(out io.Writer, wl *Workload, now time.Time) error {
	return pages.ExecuteTemplate(out, "workload", workloadPageOf(wl, now, false))
}

// executionPage is the data of an execution's page.
type executionPage struct {
	Title  string
	Crumbs []crumb
	Now    stamp
	X      *ExecutionDetail
	Zone   string
	executionRow
	Tasks []taskRow
}

type taskRow struct {
	Task
	StartedAt, CompletedAt stamp
}

func (s *Server) execution(w http.ResponseWriter, r *http.Request) {
	x, err := s.src.Execution(r.Context(), r.PathValue("workload"), r.PathValue("execution"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	loc := zoneOf(x.TimeZone)
	p := executionPage{Title: x.ID, Crumbs: []crumb{{Href: workloadURL(x.Workload), Label: x.Workload}, {Label: x.ID}}, Now: stampOf(s.src.Now(), loc), X: x, Zone: loc.String(),
		executionRow: executionRow{Execution: x.Execution, StartedAt: stampOf(x.Started, loc)}}
	if x.Slot != nil {
		p.SlotAt = stampOf(*x.Slot, loc)
	}
	for _, t := range x.Tasks {
		p.Tasks = append(p.Tasks, taskRow{Task: t, StartedAt: stampOf(t.Started, loc), CompletedAt: stampOf(t.Completed, loc)})
	}
	s.render(w, r, "execution", p)
}

// render executes page into a buffer first, so a template error is a 500, not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, page string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, page, data); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

// errorPage is the data of an error page.
type errorPage struct {
	Title, Message string
	Crumbs         []crumb
	Now            stamp
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := http.StatusInternalServerError, "The console could not read the platform; the error is in runwayctl console's log."
	switch {
	case errors.Is(err, ErrNotFound):
		code, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, context.Canceled):
		return
	default:
		s.log.Error("console", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_ = pages.ExecuteTemplate(w, "error", errorPage{Title: http.StatusText(code), Message: msg})
}

// triggerWords is how the pages name a trigger.
func triggerWords(t string) string {
	if t == platform.TriggerSchedule {
		return "scheduled"
	}
	return t
}
