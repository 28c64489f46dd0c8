// templates.js: the task templates page (#/templates): every template,
// by task type (the built-in presets read-only, the user's editable), and
// a form to create or edit one: type, name and params as JSON.
//
// GET /api/v1/templates, POST /api/v1/templates,
// PUT and DELETE /api/v1/templates/<type>/<name>.
//
// A template the API refuses (400) shows its message next to the field it
// names: after the type select, the name input, or the params textarea
// (data-field = the path inside params, such as video.bitrate); see
// forms.js for the message formats.

import { api, esc, fmtTime } from './api.js';
import {
  TASK_TYPES,
  busy,
  clearFieldErrors,
  confirmAction,
  jsonArea,
  message,
  reportError,
  showError,
  unauthorized,
} from './forms.js';

const EXAMPLES = {
  transcode: { container: 'mp4', video: { codec: 'h264', width: 1280, height: 720, bitrate: '2500k' }, audio: { codec: 'aac', bitrate: '128k' } },
  snapshot: { format: 'jpg', interval: 10, width: 640 },
  sprite: {},
  animated: { format: 'gif', duration: 3, fps: 10, width: 320 },
};

function tplPath(t) {
  return `/api/v1/templates/${encodeURIComponent(t.type)}/${encodeURIComponent(t.name)}`;
}

function compact(v) {
  const s = JSON.stringify(v);
  return s && s.length > 160 ? s.slice(0, 157) + '…' : s || '';
}

function rowHTML(t) {
  const b = !!t.builtin;
  return `<tr data-testid="template-row" data-type="${esc(t.type)}" data-name="${esc(t.name)}" data-builtin="${b}">
    <td data-label="Name" class="cell-name"><div class="break">${esc(t.name)}
      <div class="small">${b ? '<span class="badge badge-off">built-in, read-only</span>' : `<span class="badge badge-info">yours</span> <span class="muted">${esc(t.updated_at ? 'saved ' + fmtTime(t.updated_at) : '')}</span>`}</div></div></td>
    <td data-label="Params"><code class="small break" title="${esc(JSON.stringify(t.params, null, 2))}">${esc(compact(t.params))}</code></td>
    <td data-label="Actions"><div class="row">
      ${b ? '' : '<button type="button" class="btn btn-small" data-action="edit" data-testid="template-edit">Edit</button>'}
      <button type="button" class="btn btn-small" data-action="copy" data-testid="template-copy">${b ? 'View / copy' : 'Copy'}</button>
      ${b ? '' : '<button type="button" class="btn btn-small btn-danger" data-action="delete" data-testid="template-delete">Delete</button>'}
    </div></td>
  </tr>`;
}

export async function render(root, params = {}) {
  root.innerHTML = `
    <section class="page">
      <div class="page-head">
        <h1>Templates</h1>
        <span class="muted small">Task templates for VOD jobs; a task names one and may override its fields.</span>
      </div>
      <form class="card" data-testid="template-form" novalidate>
        <h2 data-slot="title">New template</h2>
        <div class="grid grid-2">
          <label class="field">Type
            <select data-testid="template-type" name="type"></select>
          </label>
          <label class="field">Name
            <input type="text" data-testid="template-name" name="name" autocomplete="off" maxlength="64"
              placeholder="my-720p">
          </label>
        </div>
        <label class="field" for="template-params">Params (JSON: the fields of the task type)</label>
        <div data-slot="params"></div>
        <div class="row">
          <button type="submit" class="btn btn-primary" data-testid="template-save">Save</button>
          <button type="button" class="btn" data-testid="template-new">New</button>
          <span class="muted small" data-slot="mode"></span>
        </div>
        <div class="error" data-testid="form-error" role="alert" hidden></div>
        <div class="notice" data-testid="template-saved" hidden></div>
      </form>
      <div class="row">
        <label class="inline">Show
          <select data-testid="templates-filter"><option value="">all types</option></select>
        </label>
        <span class="muted small" data-testid="templates-count"></span>
      </div>
      <div class="error" data-testid="error" role="alert" hidden></div>
      <div data-testid="templates" class="stack"></div>
    </section>`;

  const $ = (s) => root.querySelector(s);
  const form = $('[data-testid="template-form"]');
  const typeSel = $('[data-testid="template-type"]');
  const nameIn = $('[data-testid="template-name"]');
  const formErr = $('[data-testid="form-error"]');
  const saved = $('[data-testid="template-saved"]');
  const listErr = $('[data-testid="error"]');
  const groups = $('[data-testid="templates"]');
  const filter = $('[data-testid="templates-filter"]');
  const count = $('[data-testid="templates-count"]');
  const pj = jsonArea({ testid: 'template-params', rows: 12, value: {}, label: 'params' });
  pj.textarea.id = 'template-params';
  $('[data-slot="params"]').replaceWith(pj.el);

  let templates = [];
  let editing = null; // {type, name} of the user template being edited
  const types = [...TASK_TYPES];

  const fillTypes = () => {
    const cur = typeSel.value;
    typeSel.innerHTML = types.map((t) => `<option value="${esc(t)}">${esc(t)}</option>`).join('');
    if (cur && types.includes(cur)) typeSel.value = cur;
    const f = filter.value;
    filter.innerHTML = '<option value="">all types</option>' + types.map((t) => `<option value="${esc(t)}">${esc(t)}</option>`).join('');
    filter.value = f;
  };
  fillTypes();

  const setMode = () => {
    const same = editing && editing.type === typeSel.value && editing.name === nameIn.value.trim();
    $('[data-slot="title"]').textContent = editing ? `Edit ${editing.type}/${editing.name}` : 'New template';
    $('[data-slot="mode"]').textContent = editing
      ? same
        ? `Save replaces ${editing.type}/${editing.name} (PUT).`
        : 'Another type or name: Save creates a new template.'
      : 'Save creates the template.';
  };
  typeSel.addEventListener('change', setMode);
  nameIn.addEventListener('input', setMode);

  const resetForm = (type) => {
    editing = null;
    clearFieldErrors(form);
    showError(formErr, '');
    saved.hidden = true;
    typeSel.value = type || typeSel.value || types[0];
    nameIn.value = '';
    pj.set(EXAMPLES[typeSel.value] || {});
    setMode();
  };

  const load = async () => {
    let res;
    try {
      res = await api('GET', '/api/v1/templates');
    } catch (e) {
      if (unauthorized(e)) return false;
      showError(listErr, 'Cannot list the templates: ' + message(e));
      return true;
    }
    showError(listErr, '');
    templates = (res && res.templates) || [];
    for (const t of templates) if (!types.includes(t.type)) types.push(t.type);
    fillTypes();
    draw();
    return true;
  };

  const draw = () => {
    const only = filter.value;
    const shown = templates.filter((t) => !only || t.type === only);
    const byType = new Map();
    for (const t of shown) {
      if (!byType.has(t.type)) byType.set(t.type, []);
      byType.get(t.type).push(t);
    }
    const order = [...byType.keys()].sort((a, b) => {
      const ia = types.indexOf(a);
      const ib = types.indexOf(b);
      return ia - ib || a.localeCompare(b);
    });
    groups.innerHTML =
      order
        .map((type) => {
          const list = byType.get(type);
          list.sort((a, b) => Number(a.builtin === false) - Number(b.builtin === false) || a.name.localeCompare(b.name));
          return `<section class="card card-flush" data-testid="template-group" data-type="${esc(type)}">
            <h2 class="card-pad">${esc(type)} <span class="muted small">${list.length}</span></h2>
            <table class="table" style="table-layout:fixed"><colgroup><col style="width:24%"><col><col style="width:15rem"></colgroup>
            <thead><tr><th>Name</th><th>Params</th><th>Actions</th></tr></thead>
            <tbody>${list.map(rowHTML).join('')}</tbody></table></section>`;
        })
        .join('') || '<p class="muted empty">No templates.</p>';
    const mine = templates.filter((t) => !t.builtin).length;
    count.textContent = `${templates.length} templates, ${mine} of yours`;
  };
  filter.addEventListener('change', draw);

  groups.addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-action]');
    if (!btn) return;
    const tr = btn.closest('tr[data-name]');
    const t = tr && templates.find((x) => x.type === tr.dataset.type && x.name === tr.dataset.name);
    if (!t) return;
    const act = btn.dataset.action;
    if (act === 'edit' || act === 'copy') {
      clearFieldErrors(form);
      showError(formErr, '');
      saved.hidden = true;
      typeSel.value = t.type;
      pj.set(t.params || {});
      if (act === 'edit') {
        editing = { type: t.type, name: t.name };
        nameIn.value = t.name;
      } else {
        editing = null;
        nameIn.value = t.name + '-copy';
      }
      setMode();
      form.scrollIntoView({ block: 'start' });
      (act === 'edit' ? pj.textarea : nameIn).focus();
      return;
    }
    if (act === 'delete') {
      if (!confirmAction(`Delete the ${t.type} template "${t.name}"? Jobs that name it can no longer be submitted.`)) return;
      await busy(btn, async () => {
        try {
          await api('DELETE', tplPath(t));
        } catch (err) {
          if (!unauthorized(err)) showError(listErr, `Cannot delete ${t.type}/${t.name}: ${message(err)}`);
          return;
        }
        showError(listErr, '');
        if (editing && editing.type === t.type && editing.name === t.name) resetForm(t.type);
        await load();
      });
    }
  });

  $('[data-testid="template-new"]').addEventListener('click', () => resetForm());

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    showError(formErr, '');
    saved.hidden = true;
    const fields = { type: typeSel, name: nameIn, params: pj.textarea };
    const type = typeSel.value;
    const name = nameIn.value.trim();
    let p;
    try {
      p = pj.get();
    } catch (err) {
      reportError(form, new Error('params: ' + err.message), { box: formErr, fields });
      return;
    }
    if (!p || typeof p !== 'object' || Array.isArray(p)) {
      reportError(form, new Error('params: must be a JSON object, such as {}'), { box: formErr, fields });
      return;
    }
    const body = { type, name, params: p };
    const replace = editing && editing.type === type && editing.name === name;
    await busy($('[data-testid="template-save"]'), async () => {
      let res;
      try {
        res = replace ? await api('PUT', tplPath(body), body) : await api('POST', '/api/v1/templates', body);
      } catch (err) {
        if (unauthorized(err)) return;
        reportError(form, err, { box: formErr, fields, rest: pj.textarea, restValue: p, restPrefix: 'params' });
        return;
      }
      const t = res || body;
      editing = { type: t.type, name: t.name };
      if (t.params) pj.set(t.params);
      saved.textContent = `Saved the ${t.type} template "${t.name}".`;
      saved.hidden = false;
      setMode();
      await load();
    });
  });

  // #/templates?type=snapshot preselects a type.
  if (params.type) {
    if (!types.includes(params.type)) types.push(params.type);
    fillTypes();
    filter.value = params.type;
  }
  resetForm(params.type);
  await load();
  return () => {};
}
