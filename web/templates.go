package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/vod"
)

// maxTemplateBody bounds the body of POST /api/v1/templates and PUT
// /api/v1/templates/{type}/{name}.
const maxTemplateBody = 256 << 10

// templateExample shows the shape of a task template in errors.
const templateExample = `{"type": "snapshot", "name": "every-5s", "params": {"every": 5}}`

// TemplateList is the body of GET /api/v1/templates.
type TemplateList struct {
	// Templates are the built-in presets, then the user's templates, each
	// sorted by type and name.
	Templates []vod.Template `json:"templates"`
}

// templateError turns an error of the template store into an API error;
// an unexpected one becomes a logged 500 about what.
func templateError(what string, err error) error {
	switch {
	case errors.Is(err, vod.ErrNoTemplate):
		return apiError(http.StatusNotFound, err.Error(), err)
	case errors.Is(err, vod.ErrInvalidTemplate):
		return apiError(http.StatusBadRequest, err.Error(), err)
	case errors.Is(err, vod.ErrReadOnly):
		return apiError(http.StatusConflict, err.Error()+": built-in templates cannot be changed; save a copy under another name", err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// listTaskTemplates answers GET /api/v1/templates?type=T with the task
// templates, of one task type when type is set.
func (s *Server) listTaskTemplates(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	list, err := s.jobs.Templates().List(c.Request().Context(), c.QueryParam("type"))
	if err != nil {
		return templateError("list templates", err)
	}
	if list == nil {
		list = []vod.Template{}
	}
	return c.JSON(http.StatusOK, TemplateList{Templates: list})
}

// templatePath reads the {type} and {name} of a
// /api/v1/templates/{type}/{name} path.
func templatePath(c echo.Context) (typ, name string, err error) {
	for _, p := range []struct {
		key string
		out *string
	}{{"type", &typ}, {"name", &name}} {
		raw := c.Param(p.key)
		v, err := url.PathUnescape(raw)
		if err != nil || !validID(v) {
			return "", "", apiError(http.StatusBadRequest, fmt.Sprintf("invalid template %s %q", p.key, raw), err)
		}
		*p.out = v
	}
	return typ, name, nil
}

// getTaskTemplate answers GET /api/v1/templates/{type}/{name}.
func (s *Server) getTaskTemplate(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	typ, name, err := templatePath(c)
	if err != nil {
		return err
	}
	tpl, err := s.jobs.Templates().Get(c.Request().Context(), typ, name)
	if err != nil {
		return templateError("template "+typ+"/"+name, err)
	}
	return c.JSON(http.StatusOK, tpl)
}

// createTaskTemplate answers POST /api/v1/templates with a Template body:
// 201 with the template made, 409 when one of that type and name exists.
func (s *Server) createTaskTemplate(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	var tpl vod.Template
	if err := readJSON(c.Request().Body, maxTemplateBody, &tpl, "send a template, such as "+templateExample); err != nil {
		return err
	}
	ctx := c.Request().Context()
	store := s.jobs.Templates()
	if cur, err := store.Get(ctx, tpl.Type, tpl.Name); err == nil {
		msg := fmt.Sprintf("%s template %q exists already; PUT /api/v1/templates/%s/%s replaces it", tpl.Type, tpl.Name, tpl.Type, tpl.Name)
		if cur.Builtin {
			msg = fmt.Sprintf("%s template %q is built in; choose another name", tpl.Type, tpl.Name)
		}
		return apiError(http.StatusConflict, msg, nil)
	}
	if _, err := store.Put(ctx, tpl); err != nil {
		return templateError("create template", err)
	}
	return s.savedTemplate(c, http.StatusCreated, tpl.Type, tpl.Name)
}

// putTaskTemplate answers PUT /api/v1/templates/{type}/{name} with a
// Template body, whose type and name may be left out: 201 when it creates
// the template, 200 when it replaces it.
func (s *Server) putTaskTemplate(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	typ, name, err := templatePath(c)
	if err != nil {
		return err
	}
	var tpl vod.Template
	if err := readJSON(c.Request().Body, maxTemplateBody, &tpl, `send a template, such as {"params": {...}}`); err != nil {
		return err
	}
	if tpl.Type != "" && tpl.Type != typ {
		return apiError(http.StatusBadRequest, fmt.Sprintf("type %q: the path says %q; leave it out or make them agree", tpl.Type, typ), nil)
	}
	if tpl.Name != "" && tpl.Name != name {
		return apiError(http.StatusBadRequest, fmt.Sprintf("name %q: the path says %q; leave it out or make them agree (templates are renamed by creating the new one and deleting the old)", tpl.Name, name), nil)
	}
	tpl.Type, tpl.Name = typ, name
	created, err := s.jobs.Templates().Put(c.Request().Context(), tpl)
	if err != nil {
		return templateError("put template", err)
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return s.savedTemplate(c, code, typ, name)
}

// savedTemplate answers with the template as stored, and logs the change.
func (s *Server) savedTemplate(c echo.Context, code int, typ, name string) error {
	verb := "replaced"
	if code == http.StatusCreated {
		verb = "created"
	}
	s.log.Info("template "+verb+" through the API", "type", typ, "name", name, "remote", c.Request().RemoteAddr)
	tpl, err := s.jobs.Templates().Get(c.Request().Context(), typ, name)
	if err != nil {
		return templateError("template "+typ+"/"+name, err)
	}
	return c.JSON(code, tpl)
}

// deleteTaskTemplate answers DELETE /api/v1/templates/{type}/{name}.
func (s *Server) deleteTaskTemplate(c echo.Context) error {
	if s.jobs == nil {
		return errNoJobs()
	}
	typ, name, err := templatePath(c)
	if err != nil {
		return err
	}
	if err := s.jobs.Templates().Delete(c.Request().Context(), typ, name); err != nil {
		return templateError("delete template "+typ+"/"+name, err)
	}
	s.log.Info("template deleted through the API", "type", typ, "name", name, "remote", c.Request().RemoteAddr)
	return c.NoContent(http.StatusNoContent)
}
