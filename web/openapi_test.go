package web

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mps-dev/mps/cluster"
	"github.com/mps-dev/mps/ingest/pull"
	"github.com/mps-dev/mps/livecaptions"
	"github.com/mps-dev/mps/recorder"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/transcoder"
	"github.com/mps-dev/mps/vod"
)

const openAPIPath = "../api/openapi.yaml"

type openAPIDoc struct {
	OpenAPI    string                                 `yaml:"openapi"`
	Paths      map[string]map[string]yaml.Node        `yaml:"paths"`
	Components struct{ Schemas map[string]schemaDoc } `yaml:"components"`
}

type schemaDoc struct {
	Type       string               `yaml:"type"`
	Format     string               `yaml:"format"`
	Required   []string             `yaml:"required"`
	Properties map[string]schemaDoc `yaml:"properties"`
	Items      *schemaDoc           `yaml:"items"`
	Ref        string               `yaml:"$ref"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIListsEveryRoute keeps api/openapi.yaml and the router in step:
// every route is documented, and every documented operation exists.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newFixture(t, "", nil)

	var routes []string
	for _, r := range f.srv.echo.Routes() {
		path := r.Path
		if p, ok := strings.CutSuffix(path, "/*"); ok {
			path = p + "/{name}"
		}
		path = openAPIParams(path)
		routes = append(routes, strings.ToLower(r.Method)+" "+path)
	}
	var documented []string
	for path, item := range doc.Paths {
		// A stream's sub-resources (/streams/{name}/ladder) are served by
		// the /streams/* routes.
		for _, sub := range streamSubresources {
			if p, ok := strings.CutSuffix(path, "/{name}/"+sub); ok {
				path = p + "/{name}"
			}
		}
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				documented = append(documented, method+" "+path)
			}
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	routes = slices.Compact(routes)
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %q is not in %s", r, openAPIPath)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("%s documents %q, which the server does not route", openAPIPath, d)
		}
	}
}

// openAPIParams writes the router's path parameters (":id") as OpenAPI
// writes them ("{id}").
func openAPIParams(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}

// TestOpenAPISchemasMatchJSON checks that each schema has exactly the JSON
// fields of its Go type, with matching types, and requires exactly the
// fields that are never omitted.
func TestOpenAPISchemasMatchJSON(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]reflect.Type{
		"Stream":          reflect.TypeFor[StreamInfo](),
		"Track":           reflect.TypeFor[stream.TrackInfo](),
		"Reader":          reflect.TypeFor[stream.ReaderInfo](),
		"Error":           reflect.TypeFor[ErrorBody](),
		"Ladder":          reflect.TypeFor[transcoder.LadderInfo](),
		"Progress":        reflect.TypeFor[transcoder.Progress](),
		"LadderRequest":   reflect.TypeFor[LadderRequest](),
		"Template":        reflect.TypeFor[transcoder.Template](),
		"Rung":            reflect.TypeFor[transcoder.Rung](),
		"Video":           reflect.TypeFor[transcoder.Video](),
		"Audio":           reflect.TypeFor[transcoder.Audio](),
		"Watermark":       reflect.TypeFor[transcoder.Watermark](),
		"Capabilities":    reflect.TypeFor[transcoder.CapabilitiesView](),
		"Pull":            reflect.TypeFor[pull.State](),
		"RecordingStatus": reflect.TypeFor[recorder.Status](),
		"Captions":        reflect.TypeFor[livecaptions.Info](),
		"CaptionsOptions": reflect.TypeFor[livecaptions.Options](),
		"Node":            reflect.TypeFor[cluster.Node](),
		"ServerInfo":      reflect.TypeFor[ServerInfo](),
	}
	schemaOf := map[reflect.Type]string{}
	for name, typ := range types {
		schemaOf[typ] = name
	}
	for name, typ := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		checkSchema(t, name, schema, typ, schemaOf)
	}
}

// checkSchema checks one schema against its Go type. A field whose type has
// a schema of its own (schemaOf) must refer to it with $ref.
func checkSchema(t *testing.T, name string, schema schemaDoc, typ reflect.Type, schemaOf map[reflect.Type]string) {
	t.Helper()
	if schema.Type != "object" {
		t.Errorf("%s: type %q, want object", name, schema.Type)
	}
	var required []string
	fields := map[string]reflect.StructField{}
	for _, f := range reflect.VisibleFields(typ) {
		if f.Anonymous {
			continue // its fields are listed on their own
		}
		if !f.IsExported() {
			continue // encoding/json leaves it out
		}
		tag, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "" || tag == "-" {
			t.Fatalf("%s.%s has no JSON name", typ, f.Name)
		}
		fields[tag] = f
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			required = append(required, tag)
		}
	}
	for tag, f := range fields {
		prop, ok := schema.Properties[tag]
		if !ok {
			t.Errorf("%s: property %q (%s.%s) is missing", name, tag, typ, f.Name)
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if target, ok := schemaOf[ft]; ok {
			if want := "#/components/schemas/" + target; prop.Ref != want {
				t.Errorf("%s.%s: $ref %q, want %q", name, tag, prop.Ref, want)
			}
			continue
		}
		if f.Type == reflect.TypeFor[json.RawMessage]() {
			// Raw JSON is any value ("" in the schema) or, where the
			// code requires one, an object.
			if prop.Type != "" && prop.Type != "object" {
				t.Errorf("%s.%s: type %q, want none (any JSON) or object", name, tag, prop.Type)
			}
			continue
		}
		if want := openAPIType(ft); prop.Type != want {
			t.Errorf("%s.%s: type %q, want %q", name, tag, prop.Type, want)
		}
		if ft == reflect.TypeFor[time.Time]() && prop.Format != "date-time" {
			t.Errorf("%s.%s: format %q, want date-time", name, tag, prop.Format)
		}
	}
	for tag := range schema.Properties {
		if _, ok := fields[tag]; !ok {
			t.Errorf("%s: property %q is not in %s's JSON", name, tag, typ)
		}
	}
	slices.Sort(required)
	got := slices.Sorted(slices.Values(schema.Required))
	if !slices.Equal(got, required) {
		t.Errorf("%s: required %v, want %v (the fields without omitempty)", name, got, required)
	}
}

// openAPIType is the JSON Schema type encoding/json gives a Go type.
func openAPIType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "string"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "object"
	}
}

// TestOpenAPIJobSchemas checks the schemas of the jobs, templates and
// workflows API against their JSON, like TestOpenAPISchemasMatchJSON. The
// task template is TaskTemplate, since Template is the ladder template.
func TestOpenAPIJobSchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]reflect.Type{
		"Job":          reflect.TypeFor[vod.Job](),
		"JobSpec":      reflect.TypeFor[vod.JobSpec](),
		"JobInput":     reflect.TypeFor[vod.JobInput](),
		"Notify":       reflect.TypeFor[vod.Notify](),
		"TaskSpec":     reflect.TypeFor[vod.TaskSpec](),
		"TaskStatus":   reflect.TypeFor[vod.TaskStatus](),
		"Output":       reflect.TypeFor[vod.Output](),
		"Media":        reflect.TypeFor[vod.Media](),
		"MediaVideo":   reflect.TypeFor[vod.VideoStream](),
		"MediaAudio":   reflect.TypeFor[vod.AudioStream](),
		"JobList":      reflect.TypeFor[JobList](),
		"TaskTemplate": reflect.TypeFor[vod.Template](),
		"TemplateList": reflect.TypeFor[TemplateList](),
		"Workflow":     reflect.TypeFor[vod.Workflow](),
		"WorkflowList": reflect.TypeFor[WorkflowList](),
	}
	schemaOf := map[reflect.Type]string{}
	for name, typ := range types {
		schemaOf[typ] = name
	}
	for name, typ := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		checkSchema(t, name, schema, typ, schemaOf)
	}
}
