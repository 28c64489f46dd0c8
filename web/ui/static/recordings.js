// recordings.js: the recordings page (#/recordings): the archives kept,
// filtered by stream and time range, one page at a time; playback of a
// recording's time range (hls.js), MP4 export, delete.
//
// GET /api/v1/recordings?stream=&from=&to=&limit=&offset=
// DELETE /api/v1/recordings/<id> (409 while it is being written)
// play: /recordings/<stream>/index.m3u8?start=<start>&end=<end>
// export: /recordings/<stream>/export.mp4?start=<start>&end=<end>

import { api, esc, fmtBytes, fmtDuration, fmtTime, poll } from './api.js';
import { playHLS } from './player.js';
import { confirmAction, errorBox, recordingURL, showError, toRFC3339, toLocalInput, unauthorized, message } from './forms.js';

const PAGE_SIZES = [25, 50, 100, 250];

function stateBadge(r) {
  const kind = r.state === 'recording' ? 'rec' : r.state === 'failed' ? 'err' : 'ok';
  const title = r.error || (r.repaired ? 'repaired at start-up' : '');
  return `<span class="badge badge-${kind}"${title ? ` title="${esc(title)}"` : ''}>${esc(r.state || '?')}</span>${
    r.repaired ? ' <span class="badge badge-warn" title="found unfinished at start-up and closed">repaired</span>' : ''
  }`;
}

function rowHTML(r) {
  const q = { start: r.start, end: r.end };
  if (r.rendition && r.rendition !== 'source') q.rendition = r.rendition;
  const exportURL = recordingURL(r.stream, 'export.mp4', q);
  const tracks = (r.tracks || [])
    .map((t) => (t.width ? `${t.codec} ${t.width}×${t.height}` : t.sample_rate ? `${t.codec} ${t.sample_rate / 1000} kHz` : t.codec))
    .join(', ');
  return `<tr data-testid="recording-row" data-id="${esc(r.id)}" data-stream="${esc(r.stream)}" data-state="${esc(r.state)}">
    <td data-label="Stream" class="cell-name"><div>${esc(r.stream)}<div class="muted small" title="${esc(r.path || '')}">${esc(r.id)}${r.format ? ' · ' + esc(r.format) : ''}</div></div></td>
    <td data-label="Rendition">${esc(r.rendition || 'source')}</td>
    <td data-label="Start">${esc(fmtTime(r.start))}</td>
    <td data-label="End">${esc(fmtTime(r.end))}</td>
    <td data-label="Duration" class="num">${esc(fmtDuration(r.duration))}</td>
    <td data-label="Size" class="num">${esc(fmtBytes((r.size || 0) + (r.finalized_size || 0)))}</td>
    <td data-label="Tracks" class="small">${esc(tracks || (r.codecs || []).join(', ') || '–')}</td>
    <td data-label="State"><div>${stateBadge(r)}${r.error ? `<div class="error small">${esc(r.error)}</div>` : ''}</div></td>
    <td data-label="Actions">
      <div class="row">
        <button type="button" class="btn btn-small" data-testid="recording-play" data-action="play">Play</button>
        <a class="btn btn-small" data-testid="recording-export" href="${esc(exportURL)}" download>Export MP4</a>
        <button type="button" class="btn btn-small btn-danger" data-testid="recording-delete" data-action="delete">Delete</button>
      </div>
    </td>
  </tr>`;
}

export async function render(root, params = {}) {
  root.innerHTML = `
    <section class="page">
      <div class="page-head">
        <h1>Recordings</h1>
        <span class="muted small" data-testid="recordings-updated"></span>
      </div>
      <form class="card" data-testid="recordings-filter">
        <div class="grid grid-2">
          <label class="field">Stream
            <input type="text" name="stream" data-testid="filter-stream" placeholder="live/cam1" autocomplete="off">
          </label>
          <label class="field">From
            <input type="datetime-local" name="from" data-testid="filter-from">
          </label>
          <label class="field">To
            <input type="datetime-local" name="to" data-testid="filter-to">
          </label>
          <label class="field">Per page
            <select name="limit" data-testid="filter-limit">${PAGE_SIZES.map((n) => `<option value="${n}"${n === 50 ? ' selected' : ''}>${n}</option>`).join('')}</select>
          </label>
        </div>
        <div class="row">
          <button type="submit" class="btn btn-primary" data-testid="filter-apply">Apply</button>
          <button type="button" class="btn" data-testid="filter-clear">Clear</button>
        </div>
        <p class="muted small">From and to are in your local time; a recording shows when it overlaps the range (an empty end is open).</p>
      </form>
      <div data-slot="error"></div>
      <div class="card" data-testid="recording-player-card" hidden>
        <div class="card-head"><strong data-testid="recording-player-title"></strong>
          <span class="muted small" data-testid="recording-player-range"></span>
          <button type="button" class="btn btn-small" data-testid="recording-player-close">Close</button></div>
        <div class="video-wrap" style="max-width:960px"></div>
        <div class="player-info"></div>
      </div>
      <div class="card card-flush">
        <table class="table" data-testid="recordings">
          <thead><tr>
            <th>Stream</th><th>Rendition</th><th>Start</th><th>End</th><th class="num">Duration</th><th class="num">Size</th>
            <th>Tracks</th><th>State</th><th>Actions</th>
          </tr></thead>
          <tbody></tbody>
        </table>
        <p class="muted empty" data-testid="recordings-empty" hidden>No recordings match.</p>
      </div>
      <div class="row">
        <button type="button" class="btn" data-testid="recordings-prev" disabled>Previous</button>
        <span class="muted" data-testid="recordings-count"></span>
        <button type="button" class="btn" data-testid="recordings-next" disabled>Next</button>
      </div>
    </section>`;

  const $ = (sel) => root.querySelector(sel);
  const form = $('[data-testid="recordings-filter"]');
  const tbody = $('tbody');
  const errEl = errorBox('error');
  $('[data-slot="error"]').replaceWith(errEl);
  const empty = $('[data-testid="recordings-empty"]');
  const count = $('[data-testid="recordings-count"]');
  const prev = $('[data-testid="recordings-prev"]');
  const next = $('[data-testid="recordings-next"]');
  const updated = $('[data-testid="recordings-updated"]');
  const playerCard = $('[data-testid="recording-player-card"]');
  const playerSlot = playerCard.querySelector('.video-wrap');
  const playerInfo = playerCard.querySelector('.player-info');

  // Filters may come from the hash query: #/recordings?stream=live/cam1
  if (params.stream) form.stream.value = params.stream;
  if (params.from) form.from.value = toLocalInput(params.from);
  if (params.to) form.to.value = toLocalInput(params.to);

  let offset = 0;
  let filter = {};
  let list = [];
  let stopPlayer = null;
  let actionError = '';

  const readFilter = () => {
    const f = { stream: form.stream.value.trim(), limit: form.limit.value };
    const from = toRFC3339(form.from.value);
    const to = toRFC3339(form.to.value);
    if (from || to) {
      // The API needs both ends of a range; an open end is "ever".
      f.from = from || '1970-01-01T00:00:00Z';
      f.to = to || toRFC3339(new Date(Date.now() + 366 * 86400e3).toISOString());
    }
    return f;
  };

  const load = async () => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
    if (offset) q.set('offset', String(offset));
    let page;
    try {
      page = await api('GET', '/api/v1/recordings?' + q.toString());
    } catch (e) {
      if (unauthorized(e)) throw e;
      showError(errEl, 'Cannot list the recordings: ' + message(e));
      return;
    }
    showError(errEl, actionError);
    list = (page && page.recordings) || [];
    tbody.innerHTML = list.map(rowHTML).join('');
    const total = page && typeof page.total === 'number' ? page.total : list.length;
    empty.hidden = list.length > 0;
    count.textContent = list.length ? `${offset + 1}–${offset + list.length} of ${total}` : `0 of ${total}`;
    prev.disabled = offset <= 0;
    next.disabled = !(page && page.next_offset);
    next.dataset.offset = page && page.next_offset ? String(page.next_offset) : '';
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  };

  let stopPoll = null;
  const restart = () => {
    if (stopPoll) stopPoll();
    stopPoll = poll(async () => {
      try {
        await load();
      } catch (e) {
        if (unauthorized(e) && stopPoll) stopPoll();
      }
    }, 5000);
  };

  const closePlayer = () => {
    if (stopPlayer) {
      try {
        stopPlayer();
      } catch {
        /* already gone */
      }
    }
    stopPlayer = null;
    playerSlot.innerHTML = '';
    playerInfo.innerHTML = '';
    playerCard.hidden = true;
  };

  const play = (r) => {
    closePlayer();
    const q = { start: r.start, end: r.end };
    if (r.rendition && r.rendition !== 'source') q.rendition = r.rendition;
    const url = recordingURL(r.stream, 'index.m3u8', q);
    const video = document.createElement('video');
    video.dataset.testid = 'recording-player';
    video.controls = true;
    video.autoplay = true;
    video.muted = true;
    video.playsInline = true;
    video.setAttribute('playsinline', '');
    video.className = 'video';
    playerSlot.append(video);
    const link = document.createElement('div');
    link.className = 'muted small';
    link.innerHTML = `HLS: <a href="${esc(url)}" target="_blank" rel="noopener">${esc(url)}</a>`;
    playerInfo.append(link);
    $('[data-testid="recording-player-title"]').textContent = `${r.stream} · ${r.rendition || 'source'}`;
    $('[data-testid="recording-player-range"]').textContent = `${fmtTime(r.start)} → ${fmtTime(r.end)}`;
    playerCard.hidden = false;
    const perr = errorBox('recording-player-error');
    playerInfo.append(perr);
    video.addEventListener('playing', () => showError(perr, ''));
    try {
      stopPlayer = playHLS(video, url, { live: false, onError: (msg) => showError(perr, `${msg} (${url})`) });
    } catch (e) {
      showError(perr, 'Cannot play: ' + message(e));
    }
    playerCard.scrollIntoView({ block: 'nearest' });
  };

  const remove = async (r, btn) => {
    if (!confirmAction(`Delete the recording ${r.id} of ${r.stream} (${fmtTime(r.start)}, ${fmtDuration(r.duration)})? Its files are removed.`)) return;
    btn.disabled = true;
    try {
      await api('DELETE', '/api/v1/recordings/' + encodeURIComponent(r.id));
      actionError = '';
    } catch (e) {
      if (unauthorized(e)) return;
      actionError = `Cannot delete ${r.id}: ${message(e)}`;
      showError(errEl, actionError);
      btn.disabled = false;
      return;
    }
    await load().catch(() => {});
  };

  tbody.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    if (!btn) return;
    const tr = btn.closest('tr[data-id]');
    const r = tr && list.find((x) => x.id === tr.dataset.id);
    if (!r) return;
    if (btn.dataset.action === 'play') play(r);
    else if (btn.dataset.action === 'delete') remove(r, btn);
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    actionError = '';
    filter = readFilter();
    offset = 0;
    restart();
  });
  $('[data-testid="filter-clear"]').addEventListener('click', () => {
    form.stream.value = '';
    form.from.value = '';
    form.to.value = '';
    actionError = '';
    filter = readFilter();
    offset = 0;
    restart();
  });
  prev.addEventListener('click', () => {
    offset = Math.max(0, offset - Number(filter.limit || 50));
    restart();
  });
  next.addEventListener('click', () => {
    if (!next.dataset.offset) return;
    offset = Number(next.dataset.offset);
    restart();
  });
  $('[data-testid="recording-player-close"]').addEventListener('click', closePlayer);

  filter = readFilter();
  restart();
  return () => {
    if (stopPoll) stopPoll();
    closePlayer();
  };
}
