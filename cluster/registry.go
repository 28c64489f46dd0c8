package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schema creates the cluster tables. dead_after is each node's own
// DeadAfter × heartbeat, so nodes with different intervals judge each other
// right. "left" is set by a node that deregistered.
const schema = `
CREATE TABLE IF NOT EXISTS mps_node (
	id         text PRIMARY KEY,
	address    text NOT NULL DEFAULT '',
	roles      text[] NOT NULL DEFAULT '{}',
	started_at timestamptz NOT NULL DEFAULT now(),
	seen_at    timestamptz NOT NULL DEFAULT now(),
	"left"     boolean NOT NULL DEFAULT false,
	dead_after interval NOT NULL DEFAULT interval '10 seconds'
);
CREATE TABLE IF NOT EXISTS mps_stream (
	name       text NOT NULL,
	node_id    text NOT NULL REFERENCES mps_node (id) ON DELETE CASCADE,
	protocol   text NOT NULL DEFAULT '',
	started_at timestamptz NOT NULL DEFAULT now(),
	seen_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (name, node_id)
);
CREATE INDEX IF NOT EXISTS mps_stream_node_id ON mps_stream (node_id);
`

// schemaLock serializes concurrent schema creation by several nodes
// (CREATE TABLE IF NOT EXISTS races otherwise).
const schemaLock = 0x6d70735f636c7374 // "mps_clst"

// pruneAfter is how long a gone node's row stays listed (as not alive).
const pruneAfter = "24 hours"

// alive is the SQL condition of a live node row n.
const alive = `(NOT n."left" AND n.seen_at > now() - n.dead_after)`

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
}

type localStream struct {
	name, protocol string
	started        time.Time
}

// register inserts or revives the node's row and drops the streams a
// previous run under the same id left behind.
func (c *Cluster) register(ctx context.Context) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var prevAlive bool
		err := tx.QueryRow(ctx, `SELECT `+alive+` FROM mps_node n WHERE id = $1`, c.cfg.NodeID).Scan(&prevAlive)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if prevAlive {
			c.log.Warn("cluster node id was alive already: another process uses it, or this node restarted before its old heartbeat expired")
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO mps_node (id, address, roles, started_at, seen_at, "left", dead_after)
			VALUES ($1, $2, $3, now(), now(), false, $4::bigint * interval '1 millisecond')
			ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, roles = EXCLUDED.roles,
				started_at = now(), seen_at = now(), "left" = false, dead_after = EXCLUDED.dead_after`,
			c.cfg.NodeID, c.cfg.Address, c.cfg.Roles, c.deadAfter().Milliseconds()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM mps_stream WHERE node_id = $1`, c.cfg.NodeID)
		return err
	})
}

func (c *Cluster) deadAfter() time.Duration { return DeadAfter * c.cfg.Heartbeat }

// heartbeat marks the node seen, makes its stream rows exactly streams
// (refreshing their seen_at), and prunes long-gone nodes.
func (c *Cluster) heartbeat(ctx context.Context, streams []localStream) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		// An upsert, so that a node whose row was pruned (or wiped) while
		// it could not reach the database comes back.
		b.Queue(`
			INSERT INTO mps_node (id, address, roles, started_at, seen_at, "left", dead_after)
			VALUES ($1, $2, $3, now(), now(), false, $4::bigint * interval '1 millisecond')
			ON CONFLICT (id) DO UPDATE SET seen_at = now(), "left" = false,
				address = EXCLUDED.address, roles = EXCLUDED.roles, dead_after = EXCLUDED.dead_after`,
			c.cfg.NodeID, c.cfg.Address, c.cfg.Roles, c.deadAfter().Milliseconds())
		names := make([]string, len(streams))
		for i, s := range streams {
			names[i] = s.name
			b.Queue(`
				INSERT INTO mps_stream (name, node_id, protocol, started_at, seen_at)
				VALUES ($1, $2, $3, $4, now())
				ON CONFLICT (name, node_id) DO UPDATE SET protocol = EXCLUDED.protocol,
					started_at = EXCLUDED.started_at, seen_at = now()`,
				s.name, c.cfg.NodeID, s.protocol, s.started)
		}
		b.Queue(`DELETE FROM mps_stream WHERE node_id = $1 AND NOT (name = ANY ($2))`, c.cfg.NodeID, names)
		b.Queue(`DELETE FROM mps_node WHERE id <> $1 AND seen_at < now() - interval '`+pruneAfter+`'`, c.cfg.NodeID)
		return tx.SendBatch(ctx, b).Close()
	})
}

func (c *Cluster) deregister(ctx context.Context) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM mps_stream WHERE node_id = $1`, c.cfg.NodeID)
		b.Queue(`UPDATE mps_node SET "left" = true, seen_at = now() WHERE id = $1`, c.cfg.NodeID)
		return tx.SendBatch(ctx, b).Close()
	})
}

// Nodes lists the known nodes, alive or not (gone nodes stay listed for a
// day), ordered by id.
func (c *Cluster) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT n.id, n.address, n.roles, n.started_at, n.seen_at, `+alive+`
		FROM mps_node n ORDER BY n.id`)
	if err != nil {
		return nil, fmt.Errorf("cluster nodes: %w", err)
	}
	nodes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Node, error) {
		var n Node
		err := row.Scan(&n.ID, &n.Address, &n.Roles, &n.Started, &n.Seen, &n.Alive)
		n.Self = n.ID == c.cfg.NodeID
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster nodes: %w", err)
	}
	return nodes, nil
}

// DeadNodes returns the ids of the nodes that left or missed DeadAfter
// heartbeats, never this node's own. Work claimed by them is to be taken
// over.
func (c *Cluster) DeadNodes(ctx context.Context) ([]string, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT n.id FROM mps_node n WHERE NOT `+alive+` AND n.id <> $1 ORDER BY n.id`, c.cfg.NodeID)
	if err != nil {
		return nil, fmt.Errorf("cluster dead nodes: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("cluster dead nodes: %w", err)
	}
	return ids, nil
}

const streamQuery = `
	SELECT s.name, s.node_id, n.address, s.protocol, s.started_at
	FROM mps_stream s JOIN mps_node n ON n.id = s.node_id
	WHERE ` + alive + ` AND s.seen_at > now() - n.dead_after`

func scanStream(row pgx.CollectableRow) (StreamEntry, error) {
	var e StreamEntry
	err := row.Scan(&e.Name, &e.Node, &e.Address, &e.Protocol, &e.Started)
	return e, err
}

// Streams lists the live streams of the live nodes, ordered by name and
// node.
func (c *Cluster) Streams(ctx context.Context) ([]StreamEntry, error) {
	rows, err := c.pool.Query(ctx, streamQuery+` ORDER BY s.name, s.node_id`)
	if err != nil {
		return nil, fmt.Errorf("cluster streams: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanStream)
	if err != nil {
		return nil, fmt.Errorf("cluster streams: %w", err)
	}
	return out, nil
}

// Locate returns the node serving stream name: this node when it has the
// stream, else the live node whose stream started last.
func (c *Cluster) Locate(ctx context.Context, name string) (StreamEntry, bool, error) {
	rows, err := c.pool.Query(ctx, streamQuery+`
		AND s.name = $1 ORDER BY (s.node_id = $2) DESC, s.started_at DESC LIMIT 1`, name, c.cfg.NodeID)
	if err != nil {
		return StreamEntry{}, false, fmt.Errorf("cluster locate %s: %w", name, err)
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanStream)
	if errors.Is(err, pgx.ErrNoRows) {
		return StreamEntry{}, false, nil
	}
	if err != nil {
		return StreamEntry{}, false, fmt.Errorf("cluster locate %s: %w", name, err)
	}
	return e, true, nil
}
