// system.js: the System page (#/system): the server, the cluster's nodes,
// the ffmpeg capabilities and a summary of GET /metrics, refreshed every 5 s.

import { api, apiText, esc, errorText, fmtAgo, fmtBytes, poll, serverInfo } from './api.js';

// parseMetrics reads the Prometheus text format into
// {name: [{labels, value}]}.
export function parseMetrics(text) {
  const out = {};
  for (const raw of String(text).split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[2]))) labels[l[1]] = l[2].replace(/\\(.)/g, (_x, c) => (c === 'n' ? '\n' : c));
    }
    const v = Number(m[3]);
    (out[m[1]] = out[m[1]] || []).push({ labels, value: v });
  }
  return out;
}

const sum = (ms, name) => (ms[name] ? ms[name].reduce((a, s) => a + (isNaN(s.value) ? 0 : s.value), 0) : null);

function yesNo(b) {
  return b ? '<span class="badge badge-ok">yes</span>' : '<span class="badge badge-off">no</span>';
}

function metricsSummary(ms) {
  const rows = [];
  const add = (label, value, id) => {
    if (value === null || value === undefined) return;
    rows.push(`<div class="stat" data-metric="${esc(id)}"><div class="stat-value">${esc(value)}</div><div class="stat-label">${esc(label)}</div></div>`);
  };
  add('streams', sum(ms, 'mps_streams'), 'streams');
  const up = sum(ms, 'mps_stream_up');
  if (up !== null) add('publishers connected', up, 'publishers');
  add('readers', sum(ms, 'mps_stream_readers'), 'readers');
  const bin = sum(ms, 'mps_stream_bytes_in_total');
  if (bin !== null) add('bytes in', fmtBytes(bin), 'bytes_in');
  const bout = sum(ms, 'mps_stream_bytes_out_total');
  if (bout !== null) add('bytes out', fmtBytes(bout), 'bytes_out');
  const br = sum(ms, 'mps_stream_bitrate_bits_per_second');
  if (br !== null) add('ingest Mb/s', (br / 1e6).toFixed(2), 'ingest_bitrate');
  add('ladders running', sum(ms, 'mps_ladder_up'), 'ladders');
  add('recordings writing', sum(ms, 'mps_recordings_writing'), 'recordings_writing');
  const rb = sum(ms, 'mps_recording_bytes_written_total');
  if (rb !== null) add('recording bytes', fmtBytes(rb), 'recording_bytes');
  add('archives completed', sum(ms, 'mps_recording_archives_total'), 'recording_archives');
  add('recording failures', sum(ms, 'mps_recording_failures_total'), 'recording_failures');
  // Jobs, when the server exports job metrics (mps_job*/mps_vod*).
  for (const name of Object.keys(ms).sort()) {
    if (/^mps_(jobs?|vod)_/.test(name) || name === 'mps_jobs') {
      if (ms[name].length > 1 && ms[name].some((s) => s.labels.state)) {
        for (const s of ms[name]) add(`${name.replace(/^mps_/, '').replace(/_/g, ' ')} ${s.labels.state}`, s.value, `${name}:${s.labels.state}`);
      } else {
        add(name.replace(/^mps_/, '').replace(/_/g, ' '), sum(ms, name), name);
      }
    }
  }
  add('cluster nodes', sum(ms, 'mps_cluster_nodes'), 'cluster_nodes');
  const spool = sum(ms, 'mps_storage_spool_bytes');
  if (spool !== null) add('upload spool', fmtBytes(spool), 'spool_bytes');
  const rss = sum(ms, 'process_resident_memory_bytes');
  if (rss !== null) add('memory (RSS)', fmtBytes(rss), 'rss');
  const gr = sum(ms, 'go_goroutines');
  if (gr !== null) add('goroutines', gr, 'goroutines');
  return rows.join('');
}

export async function render(root) {
  root.innerHTML = `
  <section class="page">
    <div class="page-head"><h1>System</h1><span class="muted small" data-testid="system-updated"></span></div>
    <div class="card" data-testid="server">
      <h2>Server</h2>
      <div class="error" data-testid="server-error" role="alert" hidden></div>
      <dl class="dl" data-testid="server-info"><dt>…</dt><dd></dd></dl>
    </div>
    <div class="card">
      <div class="card-head"><h2>Metrics</h2><span class="muted small">from GET /metrics</span></div>
      <div class="error" data-testid="metrics-error" role="alert" hidden></div>
      <div class="stats" data-testid="metrics"><span class="muted">Loading…</span></div>
      <div data-testid="jobs-summary" class="muted small"></div>
    </div>
    <div class="card card-flush" data-testid="nodes">
      <h2 class="card-pad">Nodes</h2>
      <div class="error" data-testid="nodes-error" role="alert" hidden></div>
      <table class="table" data-testid="nodes-table">
        <thead><tr><th>ID</th><th>Address</th><th>Roles</th><th>Alive</th><th>Started</th><th>Last heartbeat</th></tr></thead>
        <tbody></tbody>
      </table>
      <p class="muted card-pad" data-testid="nodes-empty" hidden>A single node, without a cluster.</p>
    </div>
    <div class="card" data-testid="capabilities">
      <h2>Capabilities</h2>
      <div class="error" data-testid="capabilities-error" role="alert" hidden></div>
      <div data-testid="capabilities-body"><span class="muted">Loading…</span></div>
    </div>
  </section>`;
  const $ = (s) => root.querySelector(`[data-testid="${s}"]`);
  const showErr = (id, e, what) => {
    const el = $(id);
    if (e) {
      el.textContent = `${what}: ${errorText(e)}`;
      el.hidden = false;
    } else {
      el.hidden = true;
    }
  };
  let stopped = false;

  // Server facts: once.
  serverInfo()
    .then((s) => {
      if (stopped) return;
      const rows = [
        ['Version', s.version],
        ['Node', s.node],
        ['RTMP', s.rtmp || 'off'],
        ['SRT', s.srt || 'off'],
        ['RTSP', s.rtsp || 'off'],
        ['WebRTC', s.webrtc ? 'on' : 'off'],
        ['Jobs', s.jobs ? 'on' : 'off'],
        ['Recording', s.recording ? 'on' : 'off'],
        ['Live captions', s.captions ? 'on' : 'off'],
      ];
      $('server-info').innerHTML = rows
        .filter(([, v]) => v !== undefined && v !== '')
        .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`)
        .join('');
    })
    .catch((e) => {
      if (stopped) return;
      $('server-info').innerHTML = '';
      showErr('server-error', e, 'Cannot read the server (GET /api/v1/server)');
    });

  // Capabilities: once.
  api('GET', '/api/v1/capabilities')
    .then((c) => {
      if (stopped) return;
      const enc = c.notable_encoders || {};
      const fil = c.notable_filters || {};
      const vmaf = !!fil.libvmaf;
      const list = (o) =>
        Object.keys(o)
          .sort()
          .map((k) => `<li>${yesNo(o[k])} <span class="mono">${esc(k)}</span></li>`)
          .join('');
      $('capabilities-body').innerHTML = `
        <dl class="dl">
          <dt>ffmpeg</dt><dd><span class="mono">${esc(c.ffmpeg_path || 'ffmpeg')}</span> ${esc(c.ffmpeg_version || '')}</dd>
          <dt>VMAF</dt><dd data-testid="vmaf" data-available="${vmaf}">${vmaf ? '<span class="badge badge-ok">available</span>' : '<span class="badge badge-off">not available</span> <span class="muted small">(ffmpeg without libvmaf: quality jobs cannot measure VMAF)</span>'}</dd>
          <dt>Video codecs</dt><dd>${esc((c.video_codecs || []).join(', ') || 'none')}</dd>
          <dt>Audio codecs</dt><dd>${esc((c.audio_codecs || []).join(', ') || 'none')}</dd>
        </dl>
        <div class="grid grid-2">
          <div><h3>Encoders</h3><ul class="checklist" data-testid="encoders">${list(enc)}</ul></div>
          <div><h3>Filters</h3><ul class="checklist" data-testid="filters">${list(fil)}</ul></div>
        </div>
        <details><summary>All ${(c.encoders || []).length} encoders</summary><p class="mono small wrap">${esc((c.encoders || []).join(' '))}</p></details>
        <details><summary>All ${(c.filters || []).length} filters</summary><p class="mono small wrap">${esc((c.filters || []).join(' '))}</p></details>`;
    })
    .catch((e) => {
      if (stopped) return;
      $('capabilities-body').innerHTML = '';
      showErr('capabilities-error', e, 'Cannot read the capabilities');
    });

  const loadNodes = async () => {
    try {
      const nodes = await api('GET', '/api/v1/nodes');
      if (stopped) return;
      showErr('nodes-error');
      const list = Array.isArray(nodes) ? nodes : [];
      root.querySelector('[data-testid="nodes-table"] tbody').innerHTML = list
        .map(
          (n) => `<tr data-testid="node-row" data-id="${esc(n.id)}">
            <td data-label="ID">${esc(n.id)}${n.self ? ' <span class="badge badge-info">this node</span>' : ''}</td>
            <td data-label="Address" class="break">${esc(n.address)}</td>
            <td data-label="Roles">${esc((n.roles || []).join(', '))}</td>
            <td data-label="Alive">${n.alive ? '<span class="badge badge-ok">alive</span>' : '<span class="badge badge-err">down</span>'}</td>
            <td data-label="Started">${esc(fmtAgo(n.started))}</td>
            <td data-label="Last heartbeat">${esc(fmtAgo(n.seen))}</td>
          </tr>`,
        )
        .join('');
      $('nodes-empty').hidden = list.length > 0;
      $('nodes-table').hidden = list.length === 0;
    } catch (e) {
      if (!stopped) showErr('nodes-error', e, 'Cannot list the nodes');
    }
  };

  const loadMetrics = async () => {
    try {
      const text = await apiText('/metrics');
      if (stopped) return;
      showErr('metrics-error');
      const ms = parseMetrics(text);
      $('metrics').innerHTML = metricsSummary(ms) || '<span class="muted">No MPS metrics.</span>';
    } catch (e) {
      if (!stopped) showErr('metrics-error', e, 'Cannot read the metrics (GET /metrics)');
    }
  };

  // Jobs: the metrics carry none, so count them from the API.
  const loadJobs = async () => {
    const el = $('jobs-summary');
    try {
      const states = ['queued', 'running', 'failed'];
      const counts = await Promise.all(states.map((s) => api('GET', `/api/v1/jobs?state=${s}&limit=1`).then((r) => (r && typeof r.total === 'number' ? r.total : 0))));
      const all = await api('GET', '/api/v1/jobs?limit=1');
      if (stopped) return;
      el.innerHTML = `<span data-testid="jobs-counts">Jobs: ${esc(all && all.total !== undefined ? all.total : '?')} in all · ${states
        .map((s, i) => `${counts[i]} ${s}`)
        .join(' · ')}</span> · <a href="#/jobs">open</a>`;
    } catch (e) {
      if (stopped) return;
      el.textContent = e && e.status === 501 ? 'Jobs: this server runs no jobs.' : 'Jobs: ' + errorText(e);
    }
  };

  const stopPoll = poll(async () => {
    await Promise.all([loadMetrics(), loadNodes(), loadJobs()]);
    if (!stopped) $('system-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }, 5000);

  return () => {
    stopped = true;
    stopPoll();
  };
}
