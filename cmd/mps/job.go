package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/mps-dev/mps/vod"
)

func newJobCommand(stdout, stderr io.Writer) *cobra.Command {
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit, list, show and cancel VOD jobs on a running server",
		Long: "Talk to a running server's job API. The server is --server (or $MPS_SERVER,\n" +
			"default http://127.0.0.1:8080) and the token --token (or $MPS_API_TOKEN).",
	}
	cmd.PersistentFlags().StringVar(&sf.server, "server", "", "server URL (default $MPS_SERVER or http://127.0.0.1:8080)")
	cmd.PersistentFlags().StringVar(&sf.token, "token", "", "API token (default $MPS_API_TOKEN)")
	cmd.AddCommand(
		newJobSubmitCommand(&sf, stdout, stderr),
		newJobListCommand(&sf, stdout),
		newJobGetCommand(&sf, stdout),
		newJobCancelCommand(&sf, stdout),
	)
	return cmd
}

// parseInput reads a job input: an http(s) URL, recording:ID, or a path
// inside the server's media roots.
func parseInput(s string) vod.JobInput {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return vod.JobInput{URL: s}
	}
	if id, ok := strings.CutPrefix(s, "recording:"); ok {
		return vod.JobInput{Recording: id}
	}
	return vod.JobInput{Path: s}
}

// taskFor finds the task type of a template name.
func taskFor(ctx context.Context, c *apiClient, name, taskType string) (vod.TaskSpec, error) {
	if taskType != "" {
		return vod.TaskSpec{Type: taskType, Template: name}, nil
	}
	var list struct {
		Templates []vod.Template `json:"templates"`
	}
	if err := c.do(ctx, "GET", "/api/v1/templates", nil, &list); err != nil {
		return vod.TaskSpec{}, err
	}
	var types []string
	for _, t := range list.Templates {
		if t.Name == name {
			types = append(types, t.Type)
		}
	}
	switch len(types) {
	case 0:
		return vod.TaskSpec{}, fmt.Errorf("no template %q on the server (mps job templates are listed at /api/v1/templates)", name)
	case 1:
		return vod.TaskSpec{Type: types[0], Template: name}, nil
	}
	return vod.TaskSpec{}, fmt.Errorf("template %q exists for several task types (%s): add --type", name, strings.Join(types, ", "))
}

func newJobSubmitCommand(sf *serverFlags, stdout, stderr io.Writer) *cobra.Command {
	var (
		templates []string
		taskType  string
		params    string
		output    string
		priority  int
		sessionID string
		wait      bool
	)
	cmd := &cobra.Command{
		Use:   "submit --template NAME [--template NAME...] INPUT",
		Short: "Submit a job: one task per --template, on INPUT (a path in the server's media roots, recording:ID, or an http(s) URL)",
		Example: "  mps job submit --template mp4-720p talks/keynote.mov --wait\n" +
			"  mps job submit --template sprite-default --template gif-preview recording:6f0c2a1e9d3b4c5a",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(templates) == 0 {
				return errors.New("--template: name at least one template")
			}
			ctx := cmd.Context()
			c := sf.client()
			spec := vod.JobSpec{Input: parseInput(args[0]), Output: output, Priority: priority, SessionID: sessionID}
			for _, name := range templates {
				task, err := taskFor(ctx, c, name, taskType)
				if err != nil {
					return err
				}
				if params != "" {
					task.Params = json.RawMessage(params)
				}
				spec.Tasks = append(spec.Tasks, task)
			}
			var job vod.Job
			if err := c.do(ctx, "POST", "/api/v1/jobs", spec, &job); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "job %s %s\n", job.ID, job.State)
			if !wait {
				_, err := fmt.Fprintln(stdout, job.ID)
				return err
			}
			final, err := waitJob(ctx, c, job.ID, stderr)
			if err != nil {
				return err
			}
			printOutputs(stdout, final)
			if final.State != vod.StateSucceeded {
				return fmt.Errorf("job %s %s: %s", final.ID, final.State, final.Error)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&templates, "template", nil, "template name; repeat for several tasks")
	cmd.Flags().StringVar(&taskType, "type", "", "task type of the templates, when a name exists for several")
	cmd.Flags().StringVar(&params, "params", "", `JSON object overriding template fields, such as '{"video":{"bitrate":1500000}}'`)
	cmd.Flags().StringVar(&output, "output", "", "output folder below the server's jobs folder (default: the job id)")
	cmd.Flags().IntVar(&priority, "priority", 0, "1 (first) to 4 (last); default 2")
	cmd.Flags().StringVar(&sessionID, "session-id", "", "idempotency key: the same key returns the same job")
	cmd.Flags().BoolVar(&wait, "wait", false, "show progress until the job ends, then its outputs")
	return cmd
}

// isTerminal reports whether w is a terminal, where progress bars can be
// drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// waitJob polls a job until it ends, drawing a progress bar per task on a
// terminal, and a line per task at every tenth of progress elsewhere.
func waitJob(ctx context.Context, c *apiClient, id string, stderr io.Writer) (*vod.Job, error) {
	if !isTerminal(stderr) {
		return waitJobLines(ctx, c, id, stderr)
	}
	p := mpb.NewWithContext(ctx, mpb.WithOutput(stderr), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	var bars []*mpb.Bar
	defer p.Shutdown()
	for {
		var j vod.Job
		if err := c.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(id), nil, &j); err != nil {
			return nil, err
		}
		if bars == nil {
			for i, t := range j.Tasks {
				label := fmt.Sprintf("%d %s", i+1, t.Type)
				if t.Template != "" {
					label += " " + t.Template
				}
				bars = append(bars, p.AddBar(1000,
					mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
					mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace))))
			}
		}
		for i, t := range j.Tasks {
			if i < len(bars) {
				bars[i].SetCurrent(int64(t.Progress * 1000))
			}
		}
		switch j.State {
		case vod.StateSucceeded, vod.StateFailed, vod.StateCancelled:
			for i, t := range j.Tasks {
				if i >= len(bars) {
					continue
				}
				if t.State == vod.StateSucceeded {
					bars[i].SetCurrent(1000)
				} else {
					bars[i].Abort(false)
				}
			}
			p.Wait()
			return &j, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func waitJobLines(ctx context.Context, c *apiClient, id string, stderr io.Writer) (*vod.Job, error) {
	shown := map[int]int{} // the last tenth of progress printed per task
	for {
		var j vod.Job
		if err := c.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(id), nil, &j); err != nil {
			return nil, err
		}
		for i, t := range j.Tasks {
			last, seen := shown[i]
			if tenth := int(t.Progress * 10); t.State != vod.StateQueued && (!seen || tenth > last) {
				shown[i] = tenth
				fmt.Fprintf(stderr, "task %d %s: %s %3.0f%%\n", i+1, t.Type, t.State, t.Progress*100)
			}
		}
		switch j.State {
		case vod.StateSucceeded, vod.StateFailed, vod.StateCancelled:
			return &j, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func printOutputs(w io.Writer, j *vod.Job) {
	for i, t := range j.Tasks {
		fmt.Fprintf(w, "task %d %s: %s", i+1, t.Type, t.State)
		if t.Error != "" {
			fmt.Fprintf(w, ": %s", t.Error)
		}
		fmt.Fprintln(w)
		for _, o := range t.Outputs {
			fmt.Fprintf(w, "  %s %s", o.Kind, o.Path)
			if o.Width > 0 {
				fmt.Fprintf(w, " %dx%d", o.Width, o.Height)
			}
			if o.Duration > 0 {
				fmt.Fprintf(w, " %.2fs", o.Duration)
			}
			fmt.Fprintln(w)
		}
	}
}

func newJobListCommand(sf *serverFlags, stdout io.Writer) *cobra.Command {
	var (
		state string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			q.Set("limit", fmt.Sprint(limit))
			var list struct {
				Jobs  []vod.Job `json:"jobs"`
				Total int       `json:"total"`
			}
			if err := sf.client().do(cmd.Context(), "GET", "/api/v1/jobs?"+q.Encode(), nil, &list); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tPROGRESS\tCREATED\tTASKS")
			for _, j := range list.Jobs {
				var tasks []string
				for _, t := range j.Tasks {
					tasks = append(tasks, t.Type+":"+t.Template)
				}
				fmt.Fprintf(tw, "%s\t%s\t%3.0f%%\t%s\t%s\n", j.ID, j.State, j.Progress*100, j.CreatedAt.Local().Format(time.DateTime), strings.Join(tasks, ","))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only jobs in this state (queued, running, succeeded, failed, cancelled)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many jobs")
	return cmd
}

func newJobGetCommand(sf *serverFlags, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a job as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var j json.RawMessage
			if err := sf.client().do(cmd.Context(), "GET", "/api/v1/jobs/"+url.PathEscape(args[0]), nil, &j); err != nil {
				return err
			}
			return printJSON(stdout, j)
		},
	}
}

func newJobCancelCommand(sf *serverFlags, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job; a running job's ffmpeg is stopped at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var j vod.Job
			if err := sf.client().do(cmd.Context(), "POST", "/api/v1/jobs/"+url.PathEscape(args[0])+"/cancel", nil, &j); err != nil {
				return err
			}
			_, err := fmt.Fprintf(stdout, "job %s %s\n", j.ID, j.State)
			return err
		},
	}
}

func printJSON(w io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
