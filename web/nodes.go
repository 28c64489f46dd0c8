package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mps-dev/mps/cluster"
	"github.com/mps-dev/mps/stream"
)

// ClusterView is what the API shows of a cluster: its nodes and the live
// streams of every node. *cluster.Cluster implements it.
type ClusterView interface {
	NodeID() string
	Nodes(ctx context.Context) ([]cluster.Node, error)
	Streams(ctx context.Context) ([]cluster.StreamEntry, error)
	Locate(ctx context.Context, name string) (cluster.StreamEntry, bool, error)
}

// clusterTimeout bounds the database reads of an API request.
const clusterTimeout = 3 * time.Second

// listNodes answers GET /api/v1/nodes: the cluster's nodes with their
// address, roles and health; a single node without a cluster lists none.
func (s *Server) listNodes(c echo.Context) error {
	if s.cluster == nil {
		return c.JSON(http.StatusOK, []cluster.Node{})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), clusterTimeout)
	defer cancel()
	nodes, err := s.cluster.Nodes(ctx)
	if err != nil {
		return apiError(http.StatusServiceUnavailable, "cluster database: "+err.Error(), err)
	}
	return c.JSON(http.StatusOK, nodes)
}

// remoteStreams returns the streams that live on other nodes, as the API
// shows them: a name, the node, and when it started.
func (s *Server) remoteStreams(ctx context.Context) []StreamInfo {
	if s.cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	entries, err := s.cluster.Streams(ctx)
	if err != nil {
		s.log.Warn("cluster streams not listed", "error", err.Error())
		return nil
	}
	var out []StreamInfo
	for _, e := range entries {
		if e.Node == s.cluster.NodeID() {
			continue
		}
		if _, err := s.hub.Get(e.Name); err == nil {
			continue // served here too (a pull of it, say): the local one wins
		}
		out = append(out, remoteStreamInfo(e))
	}
	return out
}

func remoteStreamInfo(e cluster.StreamEntry) StreamInfo {
	return StreamInfo{
		Info: stream.Info{Name: e.Name, State: stream.StateLive, Protocol: e.Protocol, CreatedAt: e.Started, SessionStart: e.Started,
			UptimeSeconds: time.Since(e.Started).Seconds(), Tracks: []stream.TrackInfo{}, Readers: []stream.ReaderInfo{}},
		Node: e.Node, NodeAddress: e.Address, Remote: true,
	}
}

// locateRemote finds a stream that lives on another node.
func (s *Server) locateRemote(ctx context.Context, name string) (cluster.StreamEntry, bool) {
	if s.cluster == nil {
		return cluster.StreamEntry{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	e, ok, err := s.cluster.Locate(ctx, name)
	if err != nil || !ok || e.Node == s.cluster.NodeID() {
		return cluster.StreamEntry{}, false
	}
	return e, true
}

// clusterCollector exports the cluster's health: mps_cluster_nodes and
// mps_cluster_node_up{node}.
type clusterCollector struct {
	view  ClusterView
	nodes *prometheus.Desc
	up    *prometheus.Desc
}

func newClusterCollector(view ClusterView) *clusterCollector {
	return &clusterCollector{
		view:  view,
		nodes: prometheus.NewDesc("mps_cluster_nodes", "Nodes of the cluster that are alive.", nil, nil),
		up:    prometheus.NewDesc("mps_cluster_node_up", "Whether a node of the cluster is alive (1) or not (0).", []string{"node"}, nil),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.nodes
	ch <- c.up
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	nodes, err := c.view.Nodes(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.nodes, err)
		return
	}
	alive := 0
	for _, n := range nodes {
		v := 0.0
		if n.Alive {
			v, alive = 1, alive+1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, n.ID)
	}
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(alive))
}
