package recorder

import "sync/atomic"

// Stats counts what the recorder has done since it started.
type Stats struct {
	// Writing is the number of archives being written now.
	Writing int
	// BytesWritten counts the bytes of fragments written to archives.
	BytesWritten uint64
	// Archives counts the archives completed (cleanly or not).
	Archives uint64
	// Failures counts the write errors that stopped a recording.
	Failures uint64
	// Deleted counts the archives deleted, by retention or through the API.
	Deleted uint64
}

// counters are the recorder's running totals.
type counters struct {
	writing  atomic.Int64
	bytes    atomic.Uint64
	archives atomic.Uint64
	failures atomic.Uint64
	deleted  atomic.Uint64
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() Stats {
	return Stats{
		Writing:      int(r.stats.writing.Load()),
		BytesWritten: r.stats.bytes.Load(),
		Archives:     r.stats.archives.Load(),
		Failures:     r.stats.failures.Load(),
		Deleted:      r.stats.deleted.Load(),
	}
}
