package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/vod"
)

// maxWorkflowBody bounds the body of POST /api/v1/workflows and PUT
// /api/v1/workflows/{name}.
const maxWorkflowBody = 256 << 10

// workflowExample shows the shape of a workflow in errors.
const workflowExample = `{"name": "archive-mp4", "on": "recording.finished", "match": "live/*", "tasks": [{"type": "transcode", "template": "mp4-720p"}]}`

// WorkflowList is the body of GET /api/v1/workflows.
type WorkflowList struct {
	// Workflows are the configured workflows, then the user's, by name.
	Workflows []vod.Workflow `json:"workflows"`
}

// workflowError turns an error of the workflow store into an API error;
// an unexpected one becomes a logged 500 about what.
func workflowError(what string, err error) error {
	switch {
	case errors.Is(err, vod.ErrNoWorkflow):
		return apiError(http.StatusNotFound, err.Error(), err)
	case errors.Is(err, vod.ErrInvalidWorkflow):
		return apiError(http.StatusBadRequest, err.Error(), err)
	case errors.Is(err, vod.ErrReadOnly):
		return apiError(http.StatusConflict, err.Error()+": workflows of the configuration (jobs.workflows) are changed there", err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// listWorkflows answers GET /api/v1/workflows.
func (s *Server) listWorkflows(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	list, err := s.jobs.Workflows().List(c.Request().Context())
	if err != nil {
		return workflowError("list workflows", err)
	}
	if list == nil {
		list = []vod.Workflow{}
	}
	return c.JSON(http.StatusOK, WorkflowList{Workflows: list})
}

// workflowName reads the {name} of a /api/v1/workflows/{name} path.
func workflowName(c echo.Context) (string, error) {
	raw := c.Param("name")
	name, err := url.PathUnescape(raw)
	if err != nil || !validID(name) {
		return "", apiError(http.StatusBadRequest, fmt.Sprintf("invalid workflow name %q", raw), err)
	}
	return name, nil
}

// getWorkflow answers GET /api/v1/workflows/{name}.
func (s *Server) getWorkflow(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	name, err := workflowName(c)
	if err != nil {
		return err
	}
	w, err := s.jobs.Workflows().Get(c.Request().Context(), name)
	if err != nil {
		return workflowError("workflow "+name, err)
	}
	return c.JSON(http.StatusOK, w)
}

// createWorkflow answers POST /api/v1/workflows with a Workflow body: 201
// with the workflow made, 409 when one of that name exists.
func (s *Server) createWorkflow(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	var w vod.Workflow
	if err := readJSON(c.Request().Body, maxWorkflowBody, &w, "send a workflow, such as "+workflowExample); err != nil {
		return err
	}
	ctx := c.Request().Context()
	store := s.jobs.Workflows()
	if _, err := store.Get(ctx, w.Name); err == nil {
		return apiError(http.StatusConflict, fmt.Sprintf("workflow %q exists already; PUT /api/v1/workflows/%s replaces it", w.Name, w.Name), nil)
	}
	if _, err := store.Put(ctx, w); err != nil {
		return workflowError("create workflow", err)
	}
	return s.savedWorkflow(c, http.StatusCreated, w.Name)
}

// putWorkflow answers PUT /api/v1/workflows/{name} with a Workflow body,
// whose name may be left out: 201 when it creates the workflow, 200 when
// it replaces it.
func (s *Server) putWorkflow(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	name, err := workflowName(c)
	if err != nil {
		return err
	}
	var w vod.Workflow
	if err := readJSON(c.Request().Body, maxWorkflowBody, &w, "send a workflow, such as "+workflowExample); err != nil {
		return err
	}
	if w.Name != "" && w.Name != name {
		return apiError(http.StatusBadRequest, fmt.Sprintf("name %q: the path says %q; leave it out or make them agree", w.Name, name), nil)
	}
	w.Name = name
	created, err := s.jobs.Workflows().Put(c.Request().Context(), w)
	if err != nil {
		return workflowError("put workflow", err)
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return s.savedWorkflow(c, code, name)
}

// savedWorkflow answers with the workflow as stored, and logs the change.
func (s *Server) savedWorkflow(c echo.Context, code int, name string) error {
	verb := "replaced"
	if code == http.StatusCreated {
		verb = "created"
	}
	s.log.Info("workflow "+verb+" through the API", "workflow", name, "remote", c.Request().RemoteAddr)
	w, err := s.jobs.Workflows().Get(c.Request().Context(), name)
	if err != nil {
		return workflowError("workflow "+name, err)
	}
	return c.JSON(code, w)
}

// deleteWorkflow answers DELETE /api/v1/workflows/{name}.
func (s *Server) deleteWorkflow(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	name, err := workflowName(c)
	if err != nil {
		return err
	}
	if err := s.jobs.Workflows().Delete(c.Request().Context(), name); err != nil {
		return workflowError("delete workflow "+name, err)
	}
	s.log.Info("workflow deleted through the API", "workflow", name, "remote", c.Request().RemoteAddr)
	return c.NoContent(http.StatusNoContent)
}
