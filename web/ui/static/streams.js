// streams.js: the live list of streams (#/streams), polled every 2 s.
// It also exports the small formatters the stream page shares.

import { api, esc, errorText, fmtBitrate, fmtDuration, hostPort, poll, serverInfo } from './api.js';

export function videoTrack(s) {
  return (s.tracks || []).find((t) => t.kind === 'video');
}

export function codecsOf(s) {
  const c = (s.tracks || []).map((t) => t.codec).filter(Boolean);
  return c.length ? c.join(' + ') : '–';
}

export function resolutionOf(s) {
  const v = videoTrack(s);
  return v && v.width && v.height ? `${v.width}×${v.height}` : '–';
}

export function fpsOf(s) {
  const v = videoTrack(s);
  return v && v.fps ? String(Math.round(v.fps * 100) / 100) : '–';
}

function badge(text, kind, title) {
  return `<span class="badge badge-${kind}"${title ? ` title="${esc(title)}"` : ''}>${esc(text)}</span>`;
}

export function stateBadge(s) {
  if (s.remote) return badge('remote', 'info');
  const kind = s.state === 'live' ? 'ok' : s.state === 'reconnecting' ? 'warn' : 'off';
  return badge(s.state || 'unknown', kind);
}

export function ladderBadge(s) {
  const l = s.ladder;
  if (!l) return badge('off', 'off');
  const kind = l.state === 'running' ? 'ok' : l.state === 'failed' ? 'err' : 'warn';
  return badge(`${l.template}: ${l.state}`, kind, l.last_error || '');
}

export function recordingBadge(s) {
  const r = s.recording;
  if (!r || !r.recording) return badge('off', 'off');
  if (r.error) return badge('error', 'err', r.error);
  const what = (r.renditions || []).join(', ') || 'source';
  return badge(`recording ${what}`, 'rec', `${r.format || ''} · ${r.trigger || ''}`);
}

export function captionsBadge(s) {
  const c = s.captions;
  if (!c) return badge('off', 'off');
  const kind = c.state === 'running' ? 'ok' : c.state === 'failed' ? 'err' : 'warn';
  return badge(`${c.state}${c.cues ? ` · ${c.cues} cues` : ''}`, kind, c.error || '');
}

export function streamHref(name) {
  return '#/streams/' + String(name).split('/').map(encodeURIComponent).join('/');
}

function row(s, renditionOf) {
  const name = esc(s.name);
  const href = esc(streamHref(s.name));
  const sub = [];
  if (renditionOf) sub.push(`rendition of ${esc(renditionOf)}`);
  if (s.remote || s.node) sub.push(`node ${esc(s.node || '?')}${s.node_address ? ` (${esc(s.node_address)})` : ''}`);
  if (s.pull) sub.push(`pull: ${esc(s.pull.state)}`);
  const dash = '<span class="muted">–</span>';
  const remote = !!s.remote;
  return `<tr data-testid="stream-row" data-name="${name}" class="${remote ? 'remote' : ''}${renditionOf ? ' rendition' : ''}">
    <td data-label="Name" class="cell-name"><a href="${href}">${name}</a>${sub.length ? `<div class="muted small">${sub.join(' · ')}</div>` : ''}</td>
    <td data-label="State">${stateBadge(s)}</td>
    <td data-label="Protocol">${esc(s.protocol || '–')}</td>
    <td data-label="Codecs">${remote ? dash : esc(codecsOf(s))}</td>
    <td data-label="Resolution">${remote ? dash : esc(resolutionOf(s))}</td>
    <td data-label="Bitrate" class="num">${remote ? dash : esc(fmtBitrate(s.bitrate))}</td>
    <td data-label="FPS" class="num">${remote ? dash : esc(fpsOf(s))}</td>
    <td data-label="Readers" class="num">${remote ? dash : esc(s.reader_count ?? '–')}</td>
    <td data-label="Uptime" class="num">${s.uptime_seconds !== undefined ? esc(fmtDuration(s.uptime_seconds)) : dash}</td>
    <td data-label="Ladder">${remote ? dash : ladderBadge(s)}</td>
    <td data-label="Recording">${remote ? dash : recordingBadge(s)}</td>
    <td data-label="Captions">${remote ? dash : captionsBadge(s)}</td>
  </tr>`;
}

export async function render(root) {
  root.innerHTML = `
    <section class="page">
      <div class="page-head">
        <h1>Streams</h1>
        <span class="muted small" data-testid="streams-updated"></span>
      </div>
      <div class="error" data-testid="error" role="alert" hidden></div>
      <div class="card card-flush">
        <table class="table" data-testid="streams">
          <thead><tr>
            <th>Name</th><th>State</th><th>Protocol</th><th>Codecs</th><th>Resolution</th><th class="num">Bitrate</th>
            <th class="num">FPS</th><th class="num">Readers</th><th class="num">Uptime</th><th>Ladder</th><th>Recording</th><th>Captions</th>
          </tr></thead>
          <tbody></tbody>
        </table>
        <p class="muted empty" data-testid="streams-empty" hidden>No streams. Publish one, for example
          <code data-testid="streams-hint">ffmpeg -re -i in.mp4 -c copy -f flv rtmp://${esc(location.hostname)}:1935/live/cam1</code>, and it appears here.</p>
      </div>
    </section>`;
  const tbody = root.querySelector('tbody');
  const errEl = root.querySelector('[data-testid="error"]');
  const empty = root.querySelector('[data-testid="streams-empty"]');
  const updated = root.querySelector('[data-testid="streams-updated"]');

  serverInfo()
    .then((info) => {
      const hp = hostPort(info && info.rtmp);
      const hint = root.querySelector('[data-testid="streams-hint"]');
      if (hp && hint) hint.textContent = `ffmpeg -re -i in.mp4 -c copy -f flv rtmp://${hp.hostport}/live/cam1`;
    })
    .catch(() => {});

  tbody.addEventListener('click', (e) => {
    if (e.target.closest('a, button, input, select')) return;
    const tr = e.target.closest('tr[data-name]');
    if (tr) location.hash = streamHref(tr.dataset.name);
  });

  const load = async () => {
    let list;
    try {
      list = await api('GET', '/api/v1/streams');
    } catch (e) {
      errEl.textContent = 'Cannot list the streams: ' + errorText(e);
      errEl.hidden = false;
      return;
    }
    errEl.hidden = true;
    list = Array.isArray(list) ? list : [];
    list.sort((a, b) => a.name.localeCompare(b.name));
    const rungOf = {};
    for (const s of list) {
      if (s.ladder && s.ladder.rungs) for (const r of s.ladder.rungs) if (r !== s.name) rungOf[r] = s.name;
    }
    tbody.innerHTML = list.map((s) => row(s, rungOf[s.name])).join('');
    empty.hidden = list.length > 0;
    updated.textContent = `${list.length} stream${list.length === 1 ? '' : 's'} · updated ${new Date().toLocaleTimeString()}`;
  };
  return poll(load, 2000);
}
