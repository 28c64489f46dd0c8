package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/storage"
	"github.com/mps-dev/mps/vod"
)

// JobControl runs VOD jobs and keeps their templates and workflows.
// *vod.Engine implements it.
type JobControl interface {
	// Submit validates spec and queues a job; created is false when a job
	// with the same session id existed, which is then returned.
	Submit(ctx context.Context, spec vod.JobSpec) (job *vod.Job, created bool, err error)
	// Get returns a job.
	Get(ctx context.Context, id string) (*vod.Job, error)
	// List returns the jobs of state ("" for all) newest first, from
	// offset, at most limit of them, and how many there are in all.
	List(ctx context.Context, state string, offset, limit int) ([]*vod.Job, int, error)
	// Cancel stops a queued or running job.
	Cancel(ctx context.Context, id string) (*vod.Job, error)
	// Retry queues a failed or cancelled job again.
	Retry(ctx context.Context, id string) (*vod.Job, error)
	// Templates keeps the task templates: the built-in presets and the
	// user's.
	Templates() *vod.TemplateStore
	// Workflows keeps the rules that submit jobs when something happens.
	Workflows() *vod.WorkflowStore
}

// maxJobBody bounds the body of POST /api/v1/jobs.
const maxJobBody = 1 << 20

// Bounds of the limit parameter of GET /api/v1/jobs.
const (
	defaultJobsLimit = 100
	maxJobsLimit     = 1000
)

// jobStates are the states a job list may be filtered on.
var jobStates = []string{vod.StateQueued, vod.StateRunning, vod.StateSucceeded, vod.StateFailed, vod.StateCancelled}

// JobList is the body of GET /api/v1/jobs.
type JobList struct {
	// Jobs are one page of the jobs that match, newest first.
	Jobs []*vod.Job `json:"jobs"`
	// Total is how many jobs match, over all pages.
	Total int `json:"total"`
	// NextOffset is the offset of the next page; absent on the last page.
	NextOffset int `json:"next_offset,omitempty"`
}

const msgNoJobs = "this server runs no jobs"

// errNoJobs answers every job, template and workflow route on a server
// without a job engine.
func errNoJobs() error {
	return apiError(http.StatusNotImplemented, msgNoJobs, nil)
}

// jobError turns an error of JobControl into an API error; an unexpected
// one becomes a logged 500 about what.
func jobError(what string, err error) error {
	switch {
	case errors.Is(err, vod.ErrNoJob):
		return apiError(http.StatusNotFound, err.Error(), err)
	case errors.Is(err, vod.ErrInvalidJob):
		return apiError(http.StatusBadRequest, err.Error(), err)
	case errors.Is(err, vod.ErrNotRunning):
		return apiError(http.StatusConflict, err.Error(), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// submitJob answers POST /api/v1/jobs with a JobSpec body: 201 with the
// new job, or 200 with the job an earlier request of the same session_id
// made.
func (s *Server) submitJob(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	var spec vod.JobSpec
	if err := readJSON(c.Request().Body, maxJobBody, &spec, "send a job, such as "+jobExample); err != nil {
		return err
	}
	job, created, err := s.jobs.Submit(c.Request().Context(), spec)
	if err != nil {
		return jobError("submit job", err)
	}
	if !created {
		return c.JSON(http.StatusOK, job)
	}
	s.log.Info("job submitted through the API", "job", job.ID, "tasks", len(job.Tasks),
		"session_id", spec.SessionID, "remote", c.Request().RemoteAddr)
	return c.JSON(http.StatusCreated, job)
}

// jobExample shows the shape of a job in errors.
const jobExample = `{"input": {"path": "talk.mp4"}, "tasks": [{"type": "transcode", "template": "mp4-720p"}]}`

// listJobs answers GET /api/v1/jobs?state=&offset=&limit=.
func (s *Server) listJobs(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	q := c.QueryParams()
	state := q.Get("state")
	if state != "" && !slices.Contains(jobStates, state) {
		return apiError(http.StatusBadRequest, fmt.Sprintf("state %q: want one of %s", state, strings.Join(jobStates, ", ")), nil)
	}
	limit, err := intParam(q, "limit", 1, maxJobsLimit)
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error(), err)
	}
	if limit == 0 {
		limit = defaultJobsLimit
	}
	offset, err := intParam(q, "offset", 0, -1)
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error(), err)
	}
	jobs, total, err := s.jobs.List(c.Request().Context(), state, offset, limit)
	if err != nil {
		return jobError("list jobs", err)
	}
	list := JobList{Jobs: jobs, Total: total}
	if list.Jobs == nil {
		list.Jobs = []*vod.Job{}
	}
	if next := offset + len(jobs); len(jobs) > 0 && next < total {
		list.NextOffset = next
	}
	return c.JSON(http.StatusOK, list)
}

// jobID reads the {id} of a /api/v1/jobs/{id} path.
func jobID(c echo.Context) (string, error) {
	raw := c.Param("id")
	id, err := url.PathUnescape(raw)
	if err != nil || !validID(id) {
		return "", apiError(http.StatusBadRequest, fmt.Sprintf("invalid job id %q", raw), err)
	}
	return id, nil
}

// validID accepts the ids and names that fit in one path part.
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && len(id) <= 200 && !strings.ContainsAny(id, "/\\\x00")
}

// getJob answers GET /api/v1/jobs/{id}.
func (s *Server) getJob(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	id, err := jobID(c)
	if err != nil {
		return err
	}
	job, err := s.jobs.Get(c.Request().Context(), id)
	if err != nil {
		return jobError("job "+id, err)
	}
	return c.JSON(http.StatusOK, job)
}

// cancelJob answers POST /api/v1/jobs/{id}/cancel: 200 with the cancelled
// job, 409 when it had finished already.
func (s *Server) cancelJob(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	id, err := jobID(c)
	if err != nil {
		return err
	}
	job, err := s.jobs.Cancel(c.Request().Context(), id)
	if err != nil {
		return jobError("cancel job "+id, err)
	}
	s.log.Info("job cancelled through the API", "job", id, "remote", c.Request().RemoteAddr)
	return c.JSON(http.StatusOK, job)
}

// retryJob answers POST /api/v1/jobs/{id}/retry: 200 with the job queued
// again, 409 when it is not failed or cancelled.
func (s *Server) retryJob(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	id, err := jobID(c)
	if err != nil {
		return err
	}
	job, err := s.jobs.Retry(c.Request().Context(), id)
	if err != nil {
		if errors.Is(err, vod.ErrInvalidJob) {
			return apiError(http.StatusConflict, err.Error(), err)
		}
		return jobError("retry job "+id, err)
	}
	s.log.Info("job retried through the API", "job", id, "remote", c.Request().RemoteAddr)
	return c.JSON(http.StatusOK, job)
}

// readJSON decodes a body of at most limit bytes strictly into v: one
// JSON object with known fields only. Its errors are 400s ending with
// hint.
func readJSON(body io.Reader, limit int64, v any, hint string) error {
	bad := func(msg string, err error) error {
		return apiError(http.StatusBadRequest, msg+"; "+hint, err)
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return bad("read body", err)
	}
	if int64(len(b)) > limit {
		return bad(fmt.Sprintf("body larger than %d bytes", limit), nil)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return bad("empty body", nil)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bad("invalid body: "+strings.TrimPrefix(err.Error(), "json: "), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("invalid body: data after the JSON object", err)
	}
	return nil
}

// pathOutputs starts the paths of job outputs: /outputs/{output_dir}/...,
// the paths that Output.path gives, below the jobs folder.
const pathOutputs = "/outputs/"

// isOutputPath reports whether p is a path of job outputs.
func isOutputPath(p string) bool {
	return p == strings.TrimSuffix(pathOutputs, "/") || strings.HasPrefix(p, pathOutputs)
}

// serveOutputs serves the files of jobs read-only from the jobs folder:
// GET /outputs/{output_dir}/{path...}. Like playback it needs no token and
// allows every origin; Range requests work. Folders are not listed, and
// nothing outside the jobs folder is reached, not even through a symbolic
// link.
func (s *Server) serveOutputs(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set(echo.HeaderAllow, "GET, HEAD, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s; allowed: GET, HEAD, OPTIONS", r.Method, r.URL.Path))
		return
	}
	if s.jobs == nil || s.jobsDir == "" {
		writeError(w, http.StatusNotImplemented, msgNoJobs)
		return
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(pathOutputs, "/")), "/")
	if rel == "" || !filepath.IsLocal(rel) || path.Clean(rel) != rel || strings.ContainsAny(rel, "\\\x00") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid output path %q: want /outputs/{output_dir}/{file}, as a job's outputs list them", rel))
		return
	}
	root, err := os.OpenRoot(s.jobsDir)
	if err != nil {
		s.log.Error("open the jobs folder", "dir", s.jobsDir, "error", err)
		writeError(w, http.StatusInternalServerError, "internal server error")
		return
	}
	defer root.Close()
	notFound := func() { writeError(w, http.StatusNotFound, fmt.Sprintf("no output %q", rel)) }
	f, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		// Missing (it may be in the bucket: made on another node), or a
		// link out of the jobs folder.
		if s.presign != nil {
			if u, ok := s.presign(r.Context(), "jobs/"+rel); ok {
				http.Redirect(w, r, u, http.StatusFound)
				return
			}
		}
		notFound()
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		notFound()
		return
	}
	h := w.Header()
	if ct := storage.ContentType(rel); ct != "application/octet-stream" {
		h.Set("Content-Type", ct)
	}
	// The outputs of a running job change: clients revalidate.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}
