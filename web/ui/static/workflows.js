// workflows.js: the workflows page (#/workflows): the rules that submit a
// job when something happens (those of the configuration, jobs.workflows,
// read-only; the user's, editable), and a form with the workflow as a JSON
// body.
//
// GET /api/v1/workflows, POST /api/v1/workflows,
// PUT and DELETE /api/v1/workflows/<name>.
//
// A workflow the API refuses (400) shows its message after the body
// textarea, in a field error whose data-field is the path the message
// names (name, on, match, folder, tasks[0].template, ...); see forms.js.

import { api, esc } from './api.js';
import { busy, clearFieldErrors, confirmAction, jsonArea, message, reportError, showError, unauthorized } from './forms.js';

const EXAMPLE = {
  name: 'archive-mp4',
  on: 'recording.finished',
  match: 'live/*',
  tasks: [{ type: 'transcode', template: 'mp4-720p' }],
};

const TRIGGERS = {
  'recording.finished': 'when a recording of a matching stream ends (input: its last archive)',
  'recording.file_completed': 'for every completed archive of a matching stream',
  file: 'for every new file in a folder inside a media root',
  s3: 'for every new object below a prefix of a bucket',
};

function wfPath(name) {
  return '/api/v1/workflows/' + encodeURIComponent(name);
}

function sourceOf(w) {
  if (w.on === 'file') return `folder ${w.folder || '?'}`;
  if (w.on === 's3') return `s3://${w.bucket || '?'}/${w.prefix || ''}`;
  return `streams ${w.match || '?'}`;
}

function tasksOf(w) {
  return (w.tasks || []).map((t) => `${t.type}${t.template ? ' · ' + t.template : ''}${t.params ? ' (+params)' : ''}`).join(', ') || '–';
}

// bodyOf is a workflow as the form edits it (without builtin).
function bodyOf(w) {
  const b = Object.assign({}, w);
  delete b.builtin;
  return b;
}

function rowHTML(w) {
  const b = !!w.builtin;
  return `<tr data-testid="workflow-row" data-name="${esc(w.name)}" data-builtin="${b}">
    <td data-label="Name" class="cell-name"><div class="break">${esc(w.name)}
      <div class="small">${b ? '<span class="badge badge-off">configuration, read-only</span>' : '<span class="badge badge-info">yours</span>'}</div></div></td>
    <td data-label="On"><span title="${esc(TRIGGERS[w.on] || '')}">${esc(w.on)}</span></td>
    <td data-label="Source" class="break">${esc(sourceOf(w))}</td>
    <td data-label="Tasks" class="small break">${esc(tasksOf(w))}</td>
    <td data-label="Output" class="small break"><div>${esc(w.output || '(job id)')}${w.notify ? `<div class="muted">notify ${esc(w.notify.url)}</div>` : ''}</div></td>
    <td data-label="Actions"><div class="row">
      ${b ? '' : '<button type="button" class="btn btn-small" data-action="edit" data-testid="workflow-edit">Edit</button>'}
      <button type="button" class="btn btn-small" data-action="copy" data-testid="workflow-copy">${b ? 'View / copy' : 'Copy'}</button>
      ${b ? '' : '<button type="button" class="btn btn-small btn-danger" data-action="delete" data-testid="workflow-delete">Delete</button>'}
    </div></td>
  </tr>`;
}

export async function render(root) {
  root.innerHTML = `
    <section class="page">
      <div class="page-head">
        <h1>Workflows</h1>
        <span class="muted small">Rules that submit a job by themselves: on a finished recording, a new file or a new S3 object.</span>
      </div>
      <form class="card" data-testid="workflow-form" novalidate>
        <h2 data-slot="title">New workflow</h2>
        <label class="field" for="workflow-body">Workflow (JSON): name, on (${Object.keys(TRIGGERS).map(esc).join(', ')}),
          match, folder or bucket and prefix, tasks, and optionally output, priority, notify</label>
        <div data-slot="body"></div>
        <div class="row">
          <button type="submit" class="btn btn-primary" data-testid="workflow-save">Save</button>
          <button type="button" class="btn" data-testid="workflow-new">New</button>
          <span class="muted small" data-slot="mode"></span>
        </div>
        <div class="error" data-testid="form-error" role="alert" hidden></div>
        <div class="notice" data-testid="workflow-saved" hidden></div>
      </form>
      <div class="error" data-testid="error" role="alert" hidden></div>
      <div class="card card-flush">
        <table class="table" data-testid="workflows">
          <thead><tr><th>Name</th><th>On</th><th>Source</th><th>Tasks</th><th>Output</th><th>Actions</th></tr></thead>
          <tbody></tbody>
        </table>
        <p class="muted empty" data-testid="workflows-empty" hidden>No workflows yet.</p>
      </div>
    </section>`;

  const $ = (s) => root.querySelector(s);
  const form = $('[data-testid="workflow-form"]');
  const formErr = $('[data-testid="form-error"]');
  const saved = $('[data-testid="workflow-saved"]');
  const listErr = $('[data-testid="error"]');
  const tbody = $('tbody');
  const empty = $('[data-testid="workflows-empty"]');
  const body = jsonArea({ testid: 'workflow-body', rows: 14, value: EXAMPLE, label: 'workflow' });
  body.textarea.id = 'workflow-body';
  $('[data-slot="body"]').replaceWith(body.el);

  let workflows = [];
  let editing = ''; // the name of the user workflow being edited

  const currentName = () => {
    try {
      const v = JSON.parse(body.textarea.value);
      return v && typeof v.name === 'string' ? v.name : '';
    } catch {
      return '';
    }
  };
  const setMode = () => {
    const same = editing && currentName() === editing;
    $('[data-slot="title"]').textContent = editing ? `Edit ${editing}` : 'New workflow';
    $('[data-slot="mode"]').textContent = editing
      ? same
        ? `Save replaces ${editing} (PUT).`
        : 'Another name: Save creates a new workflow.'
      : 'Save creates the workflow.';
  };
  body.textarea.addEventListener('input', setMode);

  const resetForm = () => {
    editing = '';
    clearFieldErrors(form);
    showError(formErr, '');
    saved.hidden = true;
    body.set(EXAMPLE);
    setMode();
  };

  const load = async () => {
    let res;
    try {
      res = await api('GET', '/api/v1/workflows');
    } catch (e) {
      if (unauthorized(e)) return;
      showError(listErr, 'Cannot list the workflows: ' + message(e));
      return;
    }
    showError(listErr, '');
    workflows = (res && res.workflows) || [];
    tbody.innerHTML = workflows.map(rowHTML).join('');
    empty.hidden = workflows.length > 0;
  };

  tbody.addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-action]');
    if (!btn) return;
    const tr = btn.closest('tr[data-name]');
    const w = tr && workflows.find((x) => x.name === tr.dataset.name);
    if (!w) return;
    const act = btn.dataset.action;
    if (act === 'edit' || act === 'copy') {
      clearFieldErrors(form);
      showError(formErr, '');
      saved.hidden = true;
      const b = bodyOf(w);
      if (act === 'edit') editing = w.name;
      else {
        editing = '';
        b.name = w.name + '-copy';
      }
      body.set(b);
      setMode();
      form.scrollIntoView({ block: 'start' });
      body.textarea.focus();
      return;
    }
    if (act === 'delete') {
      if (!confirmAction(`Delete the workflow "${w.name}"? The jobs it submitted stay.`)) return;
      await busy(btn, async () => {
        try {
          await api('DELETE', wfPath(w.name));
        } catch (err) {
          if (!unauthorized(err)) showError(listErr, `Cannot delete ${w.name}: ${message(err)}`);
          return;
        }
        showError(listErr, '');
        if (editing === w.name) resetForm();
        await load();
      });
    }
  });

  $('[data-testid="workflow-new"]').addEventListener('click', resetForm);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    showError(formErr, '');
    saved.hidden = true;
    const opts = { box: formErr, rest: body.textarea };
    let w;
    try {
      w = body.get();
    } catch (err) {
      reportError(form, new Error('body: ' + err.message), opts);
      return;
    }
    if (!w || typeof w !== 'object' || Array.isArray(w)) {
      reportError(form, new Error('body: must be a JSON object, such as ' + JSON.stringify(EXAMPLE)), opts);
      return;
    }
    delete w.builtin;
    const name = typeof w.name === 'string' ? w.name.trim() : '';
    const replace = editing && name === editing;
    await busy($('[data-testid="workflow-save"]'), async () => {
      let res;
      try {
        res = replace ? await api('PUT', wfPath(name), w) : await api('POST', '/api/v1/workflows', w);
      } catch (err) {
        if (unauthorized(err)) return;
        reportError(form, err, Object.assign({ restValue: w }, opts));
        return;
      }
      const got = res || w;
      editing = got.name;
      body.set(bodyOf(got));
      saved.textContent = `Saved the workflow "${got.name}"; it applies from now on.`;
      saved.hidden = false;
      setMode();
      await load();
    });
  });

  resetForm();
  await load();
  return () => {};
}
