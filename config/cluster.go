package config

import (
	"fmt"
	"net/url"
	"slices"
)

// Cluster configures cluster mode: several mps nodes share one
// PostgreSQL database for the job queue, the job and template tables and
// the registry of live streams, and keep their media in S3.
type Cluster struct {
	// Enabled switches from the embedded SQLite database to PostgreSQL.
	Enabled bool `koanf:"enabled"`
	// Postgres is the database, as a URL or key=value DSN, such as
	// "postgres://mps:secret@db:5432/mps".
	Postgres string `koanf:"postgres"`
	// NodeID names this node (default: host name and a random suffix).
	NodeID string `koanf:"node_id"`
	// Address is the URL other nodes reach this node's HTTP listener at,
	// such as "http://10.0.0.5:8080"; needed for playback across nodes.
	Address string `koanf:"address"`
	// Roles are what this node does: ingest, worker, playback.
	Roles []string `koanf:"roles"`
	// Playback is how a node answers playback of a stream that lives on
	// another node: "proxy" (fetch it from there) or "redirect" (302).
	Playback string `koanf:"playback"`
}

// Node roles.
const (
	RoleIngest   = "ingest"
	RoleWorker   = "worker"
	RolePlayback = "playback"
)

// DefaultCluster is the cluster section of Default: off.
func DefaultCluster() Cluster {
	return Cluster{Roles: []string{RoleIngest, RoleWorker, RolePlayback}, Playback: "proxy"}
}

// HasRole reports whether the node takes on role (every role when no
// cluster is configured).
func (c Cluster) HasRole(role string) bool {
	return !c.Enabled || slices.Contains(c.Roles, role)
}

func (c *Config) validateCluster() []error {
	cl := c.Cluster
	if !cl.Enabled {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cl.Postgres == "" {
		add("cluster.postgres: must name the PostgreSQL database when cluster.enabled is true")
	}
	if cl.Address != "" {
		if u, err := url.Parse(cl.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("cluster.address %q: want the http(s) URL other nodes reach this node at", cl.Address)
		}
	}
	for _, r := range cl.Roles {
		if r != RoleIngest && r != RoleWorker && r != RolePlayback {
			add("cluster.roles: %q is not ingest, worker or playback", r)
		}
	}
	if cl.Playback != "proxy" && cl.Playback != "redirect" {
		add("cluster.playback %q: want proxy or redirect", cl.Playback)
	}
	return errs
}
