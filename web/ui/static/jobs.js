// jobs.js: the VOD jobs pages.
//
// #/jobs       the jobs, newest first, refreshed every second (state,
//              progress per job and per task, times, error), and the
//              submit form (input, one or more tasks: type, template from
//              GET /api/v1/templates?type=<type>, optional params JSON).
// #/jobs/<id>  one job: its tasks with state, progress and outputs (images
//              inline, playlists and manifests with a player, links to
//              VTT, SRT, JSON and media files), the error, cancel and retry.

import { api, esc, fmtBytes, fmtDuration, fmtTime, fmtAgo, poll } from './api.js';
import { playHLS } from './player.js';
import * as player from './player.js';
import {
  busy,
  clearFieldErrors,
  confirmAction,
  errorBox,
  jsonArea,
  message,
  outputURL,
  reportError,
  showError,
  TASK_TYPES,
  unauthorized,
} from './forms.js';

const TYPES = TASK_TYPES;
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

export function jobHref(id) {
  return '#/jobs/' + encodeURIComponent(id);
}

export function stateBadge(state, title) {
  const kind =
    state === 'succeeded' ? 'ok' : state === 'failed' ? 'err' : state === 'running' ? 'info' : state === 'cancelled' ? 'off' : 'warn';
  return `<span class="badge badge-${kind}" data-testid="job-state"${title ? ` title="${esc(title)}"` : ''}>${esc(state || '?')}</span>`;
}

function pct(p) {
  const v = Math.max(0, Math.min(1, Number(p) || 0));
  return Math.round(v * 100) + '%';
}

function progressHTML(p, testid, state) {
  const v = state === 'succeeded' ? 1 : Math.max(0, Math.min(1, Number(p) || 0));
  return `<span class="row" style="flex-wrap:nowrap"><progress data-testid="${testid}" max="1" value="${v}"></progress> <span class="small muted" style="white-space:nowrap">${pct(v)}</span></span>`;
}

export function inputText(input) {
  if (!input) return '–';
  if (input.path) return input.path;
  if (input.recording) return 'recording:' + input.recording;
  if (input.url) return input.url;
  return JSON.stringify(input);
}

// parseInput maps the form's input text to a JobInput.
export function parseInput(text) {
  const s = String(text || '').trim();
  let m = /^recording:(.+)$/i.exec(s);
  if (m) return { recording: m[1].trim() };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return { url: s };
  return { path: s };
}

function taskLabel(t) {
  return `${t.type}${t.template ? ' · ' + t.template : ''}`;
}

// ---------------------------------------------------------------- list row

function jobRowHTML(j) {
  const tasks = (j.tasks || [])
    .map(
      (t, i) => `<div data-testid="task" data-index="${i}" data-state="${esc(t.state)}">
        <span class="small">${esc(taskLabel(t))}</span>
        ${progressHTML(t.progress, 'task-progress', t.state)}
        ${t.state !== 'queued' && t.state !== 'running' && t.state !== 'succeeded' ? ` <span class="small muted">${esc(t.state)}</span>` : ''}
      </div>`
    )
    .join('');
  const outs = (j.tasks || []).reduce((n, t) => n + (t.outputs || []).length, 0);
  return `<td data-label="Job" class="cell-name"><div><a href="${esc(jobHref(j.id))}" data-testid="job-link">${esc(j.id)}</a>
      <div class="muted small break" title="${esc(inputText(j.spec && j.spec.input))}">${esc(inputText(j.spec && j.spec.input))}</div></div></td>
    <td data-label="State"><div>${stateBadge(j.state)}${j.attempts > 1 ? `<div class="muted small">attempt ${esc(j.attempts)}</div>` : ''}</div></td>
    <td data-label="Progress">${progressHTML(j.progress, 'job-progress', j.state)}</td>
    <td data-label="Tasks"><div style="min-width:10rem">${tasks}${outs ? `<div class="muted small">${outs} output${outs === 1 ? '' : 's'}</div>` : ''}</div></td>
    <td data-label="Created" class="small" title="${esc(fmtTime(j.created_at))}">${esc(fmtAgo(j.created_at))}</td>
    <td data-label="Finished" class="small">${j.finished_at ? esc(fmtTime(j.finished_at)) : '<span class="muted">–</span>'}</td>
    <td data-label="Error">${j.error ? `<div class="error small" data-testid="job-error">${esc(j.error)}</div>` : '<span class="muted">–</span>'}</td>`;
}

// ---------------------------------------------------------------- outputs

function extOf(path) {
  const m = /\.([A-Za-z0-9]+)$/.exec(String(path || ''));
  return m ? m[1].toLowerCase() : '';
}

function isImage(o) {
  const e = extOf(o.path);
  return (o.mime || '').startsWith('image/') || ['jpg', 'jpeg', 'png', 'webp', 'gif', 'avif'].includes(e);
}

function playKind(o) {
  const e = extOf(o.path);
  if (e === 'm3u8' || o.mime === 'application/vnd.apple.mpegurl' || o.mime === 'application/x-mpegurl') return 'hls';
  if (e === 'mpd' || o.mime === 'application/dash+xml') return 'dash';
  if ((o.mime || '').startsWith('video/') || (o.mime || '').startsWith('audio/') || ['mp4', 'webm', 'mov', 'mkv', 'm4a', 'mp3', 'ogg', 'opus', 'wav'].includes(e))
    return 'file';
  return '';
}

function outputMeta(o) {
  const bits = [];
  if (o.kind) bits.push(o.kind);
  if (o.size) bits.push(fmtBytes(o.size));
  if (o.width && o.height) bits.push(`${o.width}×${o.height}`);
  if (o.duration) bits.push(fmtDuration(o.duration));
  return bits.join(' · ');
}

function outputHTML(o, ti, oi) {
  const url = outputURL(o.path);
  const name = String(o.path || '').split('/').pop();
  const meta = esc(outputMeta(o));
  const data =
    o.data && Object.keys(o.data).length
      ? `<details><summary>data</summary><pre>${esc(JSON.stringify(o.data, null, 2))}</pre></details>`
      : '';
  if (isImage(o)) {
    return `<figure data-testid="output" data-kind="${esc(o.kind)}" style="margin:0;width:200px;max-width:100%">
      <a href="${esc(url)}" target="_blank" rel="noopener"><img data-testid="output-image" src="${esc(url)}" alt="${esc(name)}" loading="lazy" style="display:block;width:100%;height:auto;border-radius:6px;background:#0d1117"></a>
      <figcaption class="small break"><a href="${esc(url)}" target="_blank" rel="noopener" data-testid="output-link">${esc(name)}</a> <span class="muted">${meta}</span></figcaption>${data}
    </figure>`;
  }
  const kind = playKind(o);
  const play = kind
    ? ` <button type="button" class="btn btn-small" data-testid="output-play" data-play="${kind}" data-url="${esc(url)}" data-slot="${ti}-${oi}">Play</button>`
    : '';
  return `<div class="break" data-testid="output" data-kind="${esc(o.kind)}" style="margin:0.35rem 0">
      <a href="${esc(url)}" target="_blank" rel="noopener" data-testid="output-link">${esc(name)}</a>
      <span class="muted small">${meta}${o.mime ? ' · ' + esc(o.mime) : ''}</span>${play}
      <div data-player-slot="${ti}-${oi}" style="max-width:720px"></div>${data}
    </div>`;
}

// jobView renders one job in container and answers {update(job), destroy()};
// it re-renders a task's outputs only when they change, so images do not
// reload every second.
function jobView(container, { onAction, compact = false } = {}) {
  container.innerHTML = `
    <div>
      <div class="row">
        <span data-slot="state"></span>
        <span data-slot="progress" style="flex:1 1 12rem"></span>
        <button type="button" class="btn btn-danger" data-testid="job-cancel" data-action="cancel" hidden>Cancel</button>
        <button type="button" class="btn" data-testid="job-retry" data-action="retry" hidden>Retry</button>
      </div>
      <div class="error" data-testid="job-error" role="alert" hidden></div>
      <div class="error" data-testid="job-action-error" role="alert" hidden></div>
      <dl class="dl small" data-slot="facts" style="margin-top:0.6rem"></dl>
    </div>
    <div class="stack" data-testid="tasks" style="margin-top:1rem"></div>
    ${compact ? '' : '<details><summary>Job spec</summary><pre data-slot="spec"></pre></details>'}`;
  const q = (s) => container.querySelector(s);
  const taskBox = q('[data-testid="tasks"]');
  const players = new Map(); // slot → cleanup
  const sigs = [];
  let job = null;

  const stopPlayers = () => {
    for (const c of players.values()) {
      try {
        c();
      } catch {
        /* gone */
      }
    }
    players.clear();
  };

  container.addEventListener('click', async (e) => {
    const btn = e.target.closest('button');
    if (!btn || !container.contains(btn)) return;
    if (btn.dataset.action && onAction && job) {
      onAction(btn.dataset.action, job, btn, q('[data-testid="job-action-error"]'));
      return;
    }
    if (btn.dataset.play) {
      const slotId = btn.dataset.slot;
      const slot = container.querySelector(`[data-player-slot="${slotId}"]`);
      if (!slot) return;
      if (players.has(slotId)) {
        players.get(slotId)();
        players.delete(slotId);
        slot.innerHTML = '';
        btn.textContent = 'Play';
        return;
      }
      const video = document.createElement(btn.dataset.play === 'file' && /\.(m4a|mp3|opus|ogg|wav)(\?|$)/i.test(btn.dataset.url) ? 'audio' : 'video');
      video.dataset.testid = 'output-player';
      video.controls = true;
      video.autoplay = true;
      video.muted = true;
      video.playsInline = true;
      video.setAttribute('playsinline', '');
      video.className = 'video';
      video.style.maxHeight = '60vh';
      const perr = errorBox();
      slot.replaceChildren(video, perr);
      video.addEventListener('playing', () => showError(perr, ''));
      const onError = (msg) => showError(perr, msg);
      let cleanup = () => {};
      try {
        if (btn.dataset.play === 'hls') cleanup = playHLS(video, btn.dataset.url, { live: false, onError });
        else if (btn.dataset.play === 'dash' && typeof player.playDASH === 'function') cleanup = player.playDASH(video, btn.dataset.url, { onError });
        else {
          video.addEventListener('error', () => showError(perr, 'playback error: ' + (video.error ? video.error.message || 'code ' + video.error.code : 'unknown')));
          video.src = btn.dataset.url;
          cleanup = () => {
            video.removeAttribute('src');
            video.load();
          };
        }
      } catch (err) {
        showError(perr, 'Cannot play: ' + message(err));
      }
      players.set(slotId, cleanup);
      btn.textContent = 'Close player';
    }
  });

  const update = (j) => {
    job = j;
    q('[data-slot="state"]').innerHTML = stateBadge(j.state);
    q('[data-slot="progress"]').innerHTML = progressHTML(j.progress, 'job-progress', j.state);
    q('[data-testid="job-cancel"]').hidden = FINAL.has(j.state);
    q('[data-testid="job-retry"]').hidden = !(j.state === 'failed' || j.state === 'cancelled');
    const errEl = q('[data-testid="job-error"]');
    errEl.textContent = j.error || '';
    errEl.hidden = !j.error;
    const m = j.input_media;
    const media = m
      ? [
          m.format,
          m.duration ? fmtDuration(m.duration / 1e9) : '',
          m.video ? `${m.video.codec} ${m.video.width}×${m.video.height}${m.video.fps ? ' ' + Math.round(m.video.fps * 100) / 100 + ' fps' : ''}` : '',
          m.audio ? `${m.audio.codec} ${m.audio.sample_rate / 1000} kHz ${m.audio.channels} ch` : '',
          m.size ? fmtBytes(m.size) : '',
        ]
          .filter(Boolean)
          .join(' · ')
      : '';
    const facts = [
      ['Input', inputText(j.spec && j.spec.input)],
      media ? ['Input media', media] : null,
      ['Output folder', j.output_dir || '–'],
      ['Created', fmtTime(j.created_at)],
      ['Started', fmtTime(j.started_at)],
      ['Finished', fmtTime(j.finished_at)],
      ['Attempts', String(j.attempts ?? 0)],
      j.node ? ['Node', j.node] : null,
    ].filter(Boolean);
    q('[data-slot="facts"]').innerHTML = facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('');
    const spec = q('[data-slot="spec"]');
    if (spec) spec.textContent = JSON.stringify(j.spec, null, 2);

    const tasks = j.tasks || [];
    // (Re)build the task cards when their number changes.
    if (taskBox.children.length !== tasks.length) {
      stopPlayers();
      sigs.length = 0;
      taskBox.innerHTML = tasks
        .map(
          (t, i) => `<div class="card" data-testid="task" data-index="${i}">
            <div class="row"><strong>${i + 1}. <span data-slot="label"></span></strong><span data-slot="state"></span><span data-slot="progress" style="flex:1 1 12rem"></span></div>
            <div class="error" data-testid="task-error" role="alert" hidden></div>
            <div data-testid="outputs" style="margin-top:0.5rem"></div>
          </div>`
        )
        .join('');
    }
    tasks.forEach((t, i) => {
      const card = taskBox.children[i];
      card.dataset.state = t.state;
      card.querySelector('[data-slot="label"]').textContent = taskLabel(t);
      card.querySelector('[data-slot="state"]').innerHTML = stateBadge(t.state);
      card.querySelector('[data-slot="progress"]').innerHTML = progressHTML(t.progress, 'task-progress', t.state);
      const te = card.querySelector('[data-testid="task-error"]');
      te.textContent = t.error || '';
      te.hidden = !t.error;
      const outs = t.outputs || [];
      const sig = JSON.stringify(outs);
      if (sigs[i] !== sig) {
        sigs[i] = sig;
        for (const [slot, c] of players) {
          if (slot.startsWith(i + '-')) {
            c();
            players.delete(slot);
          }
        }
        const images = outs.map((o, oi) => [o, oi]).filter(([o]) => isImage(o));
        const others = outs.map((o, oi) => [o, oi]).filter(([o]) => !isImage(o));
        card.querySelector('[data-testid="outputs"]').innerHTML =
          (others.length ? `<div>${others.map(([o, oi]) => outputHTML(o, i, oi)).join('')}</div>` : '') +
          (images.length ? `<div class="row" style="align-items:flex-start">${images.map(([o, oi]) => outputHTML(o, i, oi)).join('')}</div>` : '') +
          (!outs.length ? `<p class="muted small">${FINAL.has(t.state) ? 'No outputs.' : 'Outputs appear when the task has run.'}</p>` : '');
      }
    });
  };
  return { update, destroy: stopPlayers };
}

// jobAction runs cancel or retry on a job and shows a refusal in box.
async function jobAction(action, job, btn, box, after) {
  if (action === 'cancel' && !confirmAction(`Cancel the job ${job.id}? Its running ffmpeg is stopped at once.`)) return;
  showError(box, '');
  await busy(btn, async () => {
    try {
      await api('POST', `/api/v1/jobs/${encodeURIComponent(job.id)}/${action}`);
    } catch (e) {
      if (!unauthorized(e)) showError(box, `Cannot ${action} ${job.id}: ${message(e)}`);
      return;
    }
    if (after) await after();
  });
}

// ---------------------------------------------------------------- job page

async function renderJob(root, id) {
  root.innerHTML = `
    <section class="page">
      <div class="page-head">
        <h1>Job <span data-testid="job-id">${esc(id)}</span></h1>
        <a href="#/jobs" class="small">← all jobs</a>
      </div>
      <div class="error" data-testid="error" role="alert" hidden></div>
      <div class="card" data-testid="job" data-id="${esc(id)}"></div>
    </section>`;
  const box = root.querySelector('[data-testid="job"]');
  const errEl = root.querySelector('[data-testid="error"]');
  // Polled every second until the job has ended (a retry starts it again).
  let stopped = false;
  let timer = 0;
  let running = false;
  const tick = async () => {
    if (stopped || running) return;
    running = true;
    let again = true;
    try {
      again = await load();
    } finally {
      running = false;
    }
    clearTimeout(timer);
    if (!stopped && again) timer = setTimeout(tick, 1000);
  };
  const restart = () => {
    clearTimeout(timer);
    timer = setTimeout(tick, 0);
  };
  const view = jobView(box, { onAction: (a, j, btn, ebox) => jobAction(a, j, btn, ebox, async () => restart()) });
  async function load() {
    let j;
    try {
      j = await api('GET', '/api/v1/jobs/' + encodeURIComponent(id));
    } catch (e) {
      if (unauthorized(e)) return false;
      showError(errEl, `Cannot load the job ${id}: ${message(e)}`);
      return !(e.status === 404 || e.status === 400 || e.status === 501);
    }
    showError(errEl, '');
    box.dataset.state = j.state;
    view.update(j);
    return !FINAL.has(j.state);
  }
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
    view.destroy();
  };
}

// ---------------------------------------------------------------- list page

export async function render(root, params = {}) {
  if (params.id) return renderJob(root, params.id);

  root.innerHTML = `
    <section class="page">
      <div class="page-head">
        <h1>Jobs</h1>
        <span class="muted small" data-testid="jobs-updated"></span>
      </div>
      <form class="card" data-testid="job-form" novalidate>
        <h2>Submit a job</h2>
        <label class="field">Input
          <input type="text" name="input" data-testid="job-input" required autocomplete="off"
            placeholder="talks/keynote.mp4, recording:ID or https://…">
        </label>
        <p class="muted small">A path inside the media roots (jobs.media_roots), <code>recording:&lt;id&gt;</code> from the
          <a href="#/recordings">recordings</a>, or an http(s) or s3:// URL the server allows.</p>
        <div class="stack" data-testid="job-tasks" style="margin-bottom:0.75rem"></div>
        <div class="row">
          <button type="button" class="btn" data-testid="job-add-task">Add a task</button>
          <button type="submit" class="btn btn-primary" data-testid="job-submit">Submit</button>
        </div>
        <div class="error" data-testid="form-error" role="alert" hidden></div>
        <div class="notice" data-testid="job-submitted" hidden></div>
      </form>
      <div class="card" data-testid="job-last" hidden></div>
      <div class="row">
        <label class="inline">State
          <select data-testid="jobs-state"><option value="">all</option>${STATES.map((s) => `<option>${s}</option>`).join('')}</select>
        </label>
        <span class="muted small" data-testid="jobs-count"></span>
      </div>
      <div class="error" data-testid="error" role="alert" hidden></div>
      <div class="card card-flush">
        <table class="table" data-testid="jobs">
          <thead><tr><th>Job</th><th>State</th><th>Progress</th><th>Tasks</th><th>Created</th><th>Finished</th><th>Error</th></tr></thead>
          <tbody></tbody>
        </table>
        <p class="muted empty" data-testid="jobs-empty" hidden>No jobs yet. Submit one above, or with <code>mps job submit</code>.</p>
      </div>
    </section>`;

  const $ = (s) => root.querySelector(s);
  const form = $('[data-testid="job-form"]');
  const inputEl = $('[data-testid="job-input"]');
  const tasksBox = $('[data-testid="job-tasks"]');
  const formErr = $('[data-testid="form-error"]');
  const submitted = $('[data-testid="job-submitted"]');
  const lastBox = $('[data-testid="job-last"]');
  const errEl = $('[data-testid="error"]');
  const tbody = $('tbody');
  const empty = $('[data-testid="jobs-empty"]');
  const count = $('[data-testid="jobs-count"]');
  const stateSel = $('[data-testid="jobs-state"]');
  const updated = $('[data-testid="jobs-updated"]');

  if (params.state) stateSel.value = params.state;
  if (params.input) inputEl.value = params.input;

  // ------------------------------------------------ templates per type
  const byType = new Map(); // type → [template]
  const types = [...TYPES];
  const addTypes = (list) => {
    for (const t of list) {
      if (!types.includes(t.type)) types.push(t.type);
      if (!byType.has(t.type)) byType.set(t.type, []);
      const l = byType.get(t.type);
      if (!l.some((x) => x.name === t.name)) l.push(t);
    }
  };
  let templatesError = '';
  try {
    const all = await api('GET', '/api/v1/templates');
    addTypes((all && all.templates) || []);
  } catch (e) {
    if (unauthorized(e)) return () => {};
    templatesError = 'Cannot list the templates: ' + message(e);
  }

  const fillTemplates = (sel, type, keep) => {
    const list = byType.get(type) || [];
    const want = keep !== undefined ? keep : sel.value;
    sel.innerHTML =
      list
        .map((t) => `<option value="${esc(t.name)}">${esc(t.name)}${t.builtin ? '' : ' (yours)'}</option>`)
        .join('') + `<option value="">(none: the type's defaults)</option>`;
    if (want !== undefined && [...sel.options].some((o) => o.value === want)) sel.value = want;
    else sel.selectedIndex = 0;
  };

  const refreshType = async (type) => {
    const res = await api('GET', '/api/v1/templates?type=' + encodeURIComponent(type));
    byType.set(type, (res && res.templates) || []);
  };

  const taskRow = (type = types[0], template) => {
    const row = document.createElement('div');
    row.className = 'card';
    row.dataset.testid = 'job-task';
    row.innerHTML = `
      <div class="grid grid-2">
        <label class="field">Task type
          <select data-testid="job-type" name="type">${types.map((t) => `<option value="${esc(t)}">${esc(t)}</option>`).join('')}</select>
        </label>
        <label class="field">Template
          <select data-testid="job-template" name="template"></select>
        </label>
      </div>
      <label class="field">Params <span class="muted small">(optional JSON that overrides the template's fields, e.g. {"video": {"bitrate": "2M"}})</span></label>
      <div data-slot="params"></div>
      <div class="row"><button type="button" class="btn btn-small" data-testid="job-remove-task">Remove task</button></div>`;
    const typeSel = row.querySelector('[data-testid="job-type"]');
    const tplSel = row.querySelector('[data-testid="job-template"]');
    const params = jsonArea({ testid: 'job-params', rows: 2, allowEmpty: true, placeholder: '{}', label: 'params' });
    params.textarea.style.minHeight = '3.5rem';
    row.querySelector('[data-slot="params"]').replaceWith(params.el);
    row._params = params;
    typeSel.value = type;
    fillTemplates(tplSel, type, template);
    typeSel.addEventListener('change', async () => {
      const t = typeSel.value;
      fillTemplates(tplSel, t, '');
      try {
        await refreshType(t);
        if (typeSel.value === t) fillTemplates(tplSel, t);
      } catch (e) {
        if (!unauthorized(e)) showError(formErr, `Cannot list the ${t} templates: ${message(e)}`);
      }
    });
    row.querySelector('[data-testid="job-remove-task"]').addEventListener('click', () => {
      if (tasksBox.children.length > 1) row.remove();
      updateRemove();
    });
    return row;
  };
  const updateRemove = () => {
    const rows = [...tasksBox.children];
    rows.forEach((r, i) => {
      r.dataset.index = String(i);
      r.querySelector('[data-testid="job-remove-task"]').hidden = rows.length < 2;
    });
  };
  tasksBox.append(taskRow(params.type, params.template));
  updateRemove();
  if (templatesError) showError(formErr, templatesError);
  $('[data-testid="job-add-task"]').addEventListener('click', () => {
    tasksBox.append(taskRow());
    updateRemove();
  });

  // ------------------------------------------------ submit
  let lastId = '';
  let lastView = null;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    showError(formErr, '');
    const rows = [...tasksBox.children];
    const fields = { input: inputEl, tasks: tasksBox };
    const tasks = [];
    for (const [i, r] of rows.entries()) {
      const t = { type: r.querySelector('[data-testid="job-type"]').value };
      const tpl = r.querySelector('[data-testid="job-template"]').value;
      if (tpl) t.template = tpl;
      fields[`tasks[${i}]`] = r.querySelector('[data-testid="job-type"]');
      fields[`tasks[${i}].type`] = r.querySelector('[data-testid="job-type"]');
      fields[`tasks[${i}].template`] = r.querySelector('[data-testid="job-template"]');
      fields[`tasks[${i}].params`] = r._params.textarea;
      let p;
      try {
        p = r._params.get();
      } catch (err) {
        reportError(form, new Error(`tasks[${i}].params: ${err.message}`), { box: formErr, fields });
        return;
      }
      if (p !== undefined) {
        if (!p || typeof p !== 'object' || Array.isArray(p)) {
          reportError(form, new Error(`tasks[${i}].params: must be a JSON object`), { box: formErr, fields });
          return;
        }
        if (Object.keys(p).length) t.params = p;
      }
      tasks.push(t);
    }
    const text = inputEl.value.trim();
    if (!text) {
      reportError(form, new Error('input: enter a path inside the media roots, recording:<id> or a URL'), { box: formErr, fields });
      inputEl.focus();
      return;
    }
    const body = { input: parseInput(text), tasks };
    const btn = $('[data-testid="job-submit"]');
    await busy(btn, async () => {
      let job;
      try {
        job = await api('POST', '/api/v1/jobs', body);
      } catch (err) {
        if (unauthorized(err)) return;
        reportError(form, err, { box: formErr, fields, restValue: body });
        return;
      }
      lastId = job.id;
      submitted.innerHTML = `Submitted <a href="${esc(jobHref(job.id))}" data-testid="job-submitted-link">${esc(job.id)}</a>: ${esc(
        job.tasks.map(taskLabel).join(', ')
      )} on ${esc(inputText(job.spec && job.spec.input))}.`;
      submitted.hidden = false;
      showLast(job);
      await load().catch(() => {});
    });
  });

  // The job just submitted, live, below the form (tasks, progress, outputs).
  const showLast = (job) => {
    if (!lastView) {
      lastBox.innerHTML = `<div class="row"><h2>Job <a data-slot="link"></a></h2></div><div data-slot="view"></div>`;
      lastView = jobView(lastBox.querySelector('[data-slot="view"]'), {
        compact: true,
        onAction: (a, j, btn, ebox) => jobAction(a, j, btn, ebox, () => load().catch(() => {})),
      });
    }
    const a = lastBox.querySelector('[data-slot="link"]');
    a.href = jobHref(job.id);
    a.textContent = job.id;
    lastBox.dataset.id = job.id;
    lastBox.hidden = false;
    lastView.update(job);
  };

  // ------------------------------------------------ list
  const rows = new Map(); // id → {tr, sig}
  async function load() {
    const q = new URLSearchParams({ limit: '100' });
    if (stateSel.value) q.set('state', stateSel.value);
    let page;
    try {
      page = await api('GET', '/api/v1/jobs?' + q.toString());
    } catch (e) {
      if (unauthorized(e)) {
        if (stop) stop();
        return;
      }
      showError(errEl, 'Cannot list the jobs: ' + message(e));
      return;
    }
    showError(errEl, '');
    const jobs = (page && page.jobs) || [];
    const seen = new Set();
    let before = null;
    for (let i = jobs.length - 1; i >= 0; i--) {
      const j = jobs[i];
      seen.add(j.id);
      let r = rows.get(j.id);
      const sig = JSON.stringify([j.state, j.progress, j.error, j.finished_at, j.attempts, j.tasks, Math.floor(Date.now() / 10000)]);
      if (!r) {
        const tr = document.createElement('tr');
        tr.dataset.testid = 'job-row';
        tr.dataset.id = j.id;
        r = { tr, sig: '' };
        rows.set(j.id, r);
      }
      if (r.sig !== sig) {
        r.tr.innerHTML = jobRowHTML(j);
        r.sig = sig;
      }
      r.tr.dataset.state = j.state;
      // Keep the order newest first: insert before the row that follows.
      if (r.tr.nextSibling !== before || r.tr.parentNode !== tbody) tbody.insertBefore(r.tr, before);
      before = r.tr;
    }
    for (const [id, r] of rows) {
      if (!seen.has(id)) {
        r.tr.remove();
        rows.delete(id);
      }
    }
    empty.hidden = jobs.length > 0;
    const total = page && typeof page.total === 'number' ? page.total : jobs.length;
    count.textContent = `${jobs.length} of ${total} job${total === 1 ? '' : 's'}${stateSel.value ? ' ' + stateSel.value : ''}`;
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (lastId) {
      let j = jobs.find((x) => x.id === lastId);
      if (!j) j = await api('GET', '/api/v1/jobs/' + encodeURIComponent(lastId)).catch(() => null);
      if (j) showLast(j);
    }
  }

  // Clicking a row (not a link) opens the job.
  tbody.addEventListener('click', (e) => {
    if (e.target.closest('a, button, input, select, details')) return;
    const tr = e.target.closest('tr[data-id]');
    if (tr) location.hash = jobHref(tr.dataset.id);
  });
  stateSel.addEventListener('change', () => load().catch(() => {}));

  let stop = poll(load, 1000);
  return () => {
    if (stop) stop();
    stop = null;
    if (lastView) lastView.destroy();
  };
}
