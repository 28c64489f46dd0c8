package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// apiClient talks to a running server's admin API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// serverFlags are the flags of the commands that talk to a server.
type serverFlags struct {
	server string
	token  string
}

func (f *serverFlags) client() *apiClient {
	server := f.server
	if server == "" {
		server = os.Getenv("MPS_SERVER")
	}
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	token := f.token
	if token == "" {
		token = os.Getenv("MPS_API_TOKEN")
	}
	return &apiClient{base: strings.TrimSuffix(server, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// apiError is an error answer of the API.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"error"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Code) }

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil).
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		ae := &apiError{Code: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae.Message = strings.TrimSpace(string(data))
		}
		return ae
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, path, err)
		}
	}
	return nil
}
