package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/mps-dev/mps/cluster"
	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/web"
)

// startCluster joins the cluster of cfg, or returns nil when cluster mode
// is off. A node that only runs jobs mirrors no streams.
func startCluster(ctx context.Context, cfg *config.Config, hub *stream.Hub, log *slog.Logger) (*cluster.Cluster, error) {
	cc := cfg.Cluster
	if !cc.Enabled {
		return nil, nil
	}
	ccfg := cluster.Config{DSN: cc.Postgres, NodeID: cc.NodeID, Address: cc.Address, Roles: cc.Roles, Logger: log}
	if cc.HasRole(config.RoleIngest) {
		ccfg.Hub = hub
	}
	cl, err := cluster.New(ctx, ccfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	log.Info("joined the cluster", "node", cl.NodeID(), "address", cc.Address, "roles", cc.Roles)
	return cl, nil
}

// clusterView is cl for the API, or an untyped nil on a single node.
func clusterView(cl *cluster.Cluster) web.ClusterView {
	if cl == nil {
		return nil
	}
	return cl
}

// clusterPlayback serves playback of streams that live on other nodes
// through cl (proxied or redirected), and the rest with local.
func clusterPlayback(cl *cluster.Cluster, cfg *config.Config, local http.Handler) http.Handler {
	if cl == nil {
		return local
	}
	return cl.PlaybackHandler(local, cfg.Cluster.Playback)
}
