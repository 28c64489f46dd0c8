// forms.js: form helpers shared by the recordings, jobs, templates and
// workflows pages.
//
//   el(html)                          one element from an HTML string
//   showError(box, err)               an error in words in a .error element (err: ApiError, Error or text)
//   jsonArea({testid, value, rows})   a JSON <textarea> with live validation
//   errorField(message, value)        the field an API error names, resolved to its
//                                     full path inside value (the params or body sent)
//   clearFieldErrors(form)            remove the field errors of a form
//   showFieldError(after, field, msg) a [data-testid="field-error"][data-field] after an input
//   reportError(form, err, opts)      an API error next to the field it names, plus the whole message
//   confirmAction(text)               window.confirm, a single place to change it
//   outputURL(path), recordingURL(stream, file, query)
//
// The API's validation messages (see web/templates.go, vod, transcoder) name
// the field in these forms, after prefixes such as "invalid template: ",
// "invalid workflow: ", "invalid job: ", "invalid body: ", "bad input: " and
// "template: ":
//   video.codec "zzz": want h264, ...          → video.codec
//   video.width -3: must be ...                → video.width
//   tasks[0].template "nope": no ...           → tasks[0].template
//   name "x y": use 1 to 64 letters ...        → name
//   params: must be a JSON object              → params
//   bitrate "abc": write it like 128000, ...   → bitrate (only the leaf: resolved to
//                                                video.bitrate by finding the key
//                                                "bitrate" with the value "abc" in the params)
//   unknown field "foo"                        → foo (resolved the same way, by key)
//   cannot unmarshal string into Go struct field VideoParams.video.width of type int
//                                              → video.width
//   file workflows need folder (...)           → folder (also match, bucket)
//   transcode template "x" is built in; ... / exists already; ... / workflow "x" exists already
//                                              → name (409)
// api.js's fieldOf() is the fallback for anything else.

import { ApiError, fieldOf, errorText } from './api.js';

// TASK_TYPES are the VOD task types, in the order the forms offer them;
// types that only the server knows (from its templates) come after.
export const TASK_TYPES = ['transcode', 'snapshot', 'sprite', 'animated', 'adaptive', 'enhance', 'quality', 'captions', 'highlights', 'summary', 'qc'];

export function el(html) {
  const t = document.createElement('template');
  t.innerHTML = html.trim();
  return t.content.firstElementChild;
}

// message words an error for a user.
export function message(err) {
  if (err === undefined || err === null) return '';
  if (typeof err === 'string') return err;
  if (err instanceof ApiError) return errorText(err);
  return err.message || String(err);
}

// showError puts err in words into the .error element box (hidden when
// err is empty).
export function showError(box, err) {
  if (!box) return;
  const text = message(err);
  box.textContent = text;
  box.hidden = !text;
}

// errorBox makes a hidden .error element.
export function errorBox(testid) {
  const d = document.createElement('div');
  d.className = 'error';
  d.setAttribute('role', 'alert');
  if (testid) d.dataset.testid = testid;
  d.hidden = true;
  return d;
}

export function confirmAction(text) {
  return window.confirm(text);
}

// jsonArea makes a JSON textarea whose content is checked as it is typed: a
// syntax error shows on the line below it (a .field-error with
// data-field="json", no data-testid: the API's field errors have that).
// get() returns the parsed value or throws an Error in words.
export function jsonArea({ testid, value, rows = 10, placeholder = '', name = '', allowEmpty = false, label = '' } = {}) {
  const wrap = document.createElement('div');
  wrap.style.marginBottom = '0.75rem';
  const ta = document.createElement('textarea');
  ta.spellcheck = false;
  ta.rows = rows;
  if (testid) ta.dataset.testid = testid;
  if (name) ta.name = name;
  if (label) ta.setAttribute('aria-label', label);
  ta.placeholder = placeholder;
  ta.setAttribute('autocomplete', 'off');
  ta.setAttribute('autocapitalize', 'off');
  // The syntax line below the textarea always takes its line, so that
  // showing an error does not move the buttons under a pointer.
  const hint = document.createElement('div');
  hint.dataset.field = 'json';
  hint.setAttribute('aria-live', 'polite');
  wrap.append(ta, hint);
  const showHint = (err) => {
    hint.className = err ? 'field-error' : 'muted small';
    hint.style.marginTop = '0.25rem';
    hint.style.minHeight = '1.3em';
    hint.textContent = err || (ta.value.trim() ? 'valid JSON' : '');
    if (err) ta.setAttribute('aria-invalid', 'true');
    else ta.removeAttribute('aria-invalid');
  };

  const parse = () => {
    const text = ta.value.trim();
    if (!text) {
      if (allowEmpty) return undefined;
      throw new Error('enter JSON, such as {}');
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error('not valid JSON: ' + (e && e.message ? e.message : e));
    }
  };
  const check = () => {
    try {
      parse();
      showHint('');
      return true;
    } catch (e) {
      showHint(e.message);
      return false;
    }
  };
  let timer = 0;
  ta.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
  const set = (v) => {
    ta.value = v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v, null, 2);
    showHint('');
  };
  set(value);
  return {
    el: wrap,
    textarea: ta,
    get() {
      clearTimeout(timer);
      try {
        const v = parse();
        showHint('');
        return v;
      } catch (e) {
        showHint(e.message);
        throw e;
      }
    },
    set,
    check,
  };
}

const PREFIX = /^(?:invalid (?:template|workflow|job|body|request)|bad input|template|workflow|job)\s*:\s*/i;
const PATH = '[A-Za-z_][\\w-]*(?:\\.[A-Za-z_][\\w-]*|\\[\\d+\\])*';

// parseField reads the field an error message names: {path, leaf, value}.
// leaf is true when the message gives only the last key (the path is then
// to be found in the value sent); value is the quoted value it names, if any.
export function parseField(msg) {
  if (!msg) return null;
  let s = String(msg).trim();
  let m = /Go struct field [A-Za-z_]\w*\.([\w.[\]-]+) of type/.exec(s);
  if (m) return { path: m[1], leaf: false };
  m = /unknown field "([^"]+)"/.exec(s);
  if (m) return { path: m[1], leaf: true, key: true, body: /^invalid body:/i.test(s) };
  for (let i = 0; i < 6 && PREFIX.test(s); i++) s = s.replace(PREFIX, '');
  // path "value": ... | path 123: ... | path: ... | path [..]: ...
  m = new RegExp('^(' + PATH + ')(?: ("(?:[^"\\\\]|\\\\.)*")| (-?[\\d.]+(?:e[+-]?\\d+)?)| (\\[[^\\]]*\\]))?(?::|$)').exec(s);
  if (m) {
    let value;
    if (m[2] !== undefined) {
      try {
        value = JSON.parse(m[2]);
      } catch {
        value = undefined;
      }
    } else if (m[3] !== undefined) value = Number(m[3]);
    const path = m[1];
    // A bare leaf key that some task type reports without its parents.
    const leaf = !path.includes('.') && !path.includes('[') && !['name', 'type', 'params', 'on', 'match', 'folder', 'bucket', 'prefix', 'tasks', 'output', 'priority', 'notify', 'input'].includes(path);
    return { path, leaf, value, hasValue: m[2] !== undefined || m[3] !== undefined };
  }
  // 409s about the name: 'transcode template "mp4-720p" is built in; choose
  // another name', '... exists already; PUT ... replaces it', 'workflow "w1"
  // exists already', 'transcode template "mp4-720p": built-in, read-only: ...'
  m = /^(?:[\w.-]+ )?(?:template|workflow) "(?:[^"\\]|\\.)*"(?: is built in| exists already|: built-in)/.exec(s);
  if (m) return { path: 'name', leaf: false };
  // "recording.finished workflows need match (...)", "file workflows need folder (...)"
  m = /\bworkflows need (match|folder|bucket)\b/.exec(s);
  if (m) return { path: m[1], leaf: false };
  const f = fieldOf(msg);
  return f ? { path: f, leaf: !/[.[]/.test(f) } : null;
}

// findPath looks for key (with the value, when given) inside obj and
// answers its full path ('video.bitrate', 'tasks[0].params.video.bitrate').
export function findPath(obj, key, value, hasValue) {
  const found = [];
  const walk = (v, path) => {
    if (found.length > 8) return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`));
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const p = path ? `${path}.${k}` : k;
        if (k === key) found.push({ p, x });
        walk(x, p);
      }
    }
  };
  walk(obj, '');
  if (!found.length) return '';
  if (hasValue) {
    const same = found.find((f) => f.x === value || String(f.x) === String(value));
    if (same) return same.p;
  }
  return found[0].p;
}

// errorField answers the field path an API error message names, resolved
// against value (the JSON sent) when the message names only a leaf.
export function errorField(msg, value) {
  const f = parseField(msg);
  if (!f) return '';
  if (f.leaf && value && typeof value === 'object') {
    const p = findPath(value, f.path, f.value, f.hasValue);
    if (p) return p;
  }
  return f.path;
}

export function clearFieldErrors(form) {
  if (!form) return;
  for (const e of form.querySelectorAll('[data-testid="field-error"]')) e.remove();
  for (const e of form.querySelectorAll('[aria-invalid="true"]')) e.removeAttribute('aria-invalid');
}

// showFieldError puts a field error right after the element after.
export function showFieldError(after, field, msg) {
  const d = document.createElement('div');
  d.className = 'field-error';
  d.dataset.testid = 'field-error';
  d.dataset.field = field;
  d.setAttribute('role', 'alert');
  d.textContent = msg;
  const input = after.matches && after.matches('input,select,textarea') ? after : after.querySelector && after.querySelector('input,select,textarea');
  if (input) input.setAttribute('aria-invalid', 'true');
  after.insertAdjacentElement('afterend', d);
  return d;
}

// reportError shows err on a form: the whole message in opts.box (a
// .error element), and, when the message names a field, a field error
// after that field's input. opts.fields maps top-level field names to
// their input elements; opts.rest is the element (a JSON textarea) whose
// content holds every other field, opts.restValue what it held and
// opts.restPrefix the prefix the API puts before its paths ('params' for
// a template's params). It answers the field shown, or ''.
export function reportError(form, err, { box, fields = {}, rest = null, restValue, restPrefix = '' } = {}) {
  clearFieldErrors(form);
  showError(box, err);
  const msg = err && err.message ? err.message : String(err || '');
  if (err instanceof ApiError && (err.status === 0 || err.status >= 500 || err.status === 401 || err.status === 403)) return '';
  let field = errorField(msg, restValue);
  if (!field && err && err.field) field = err.field;
  if (!field) return '';
  // The field's own input, else the nearest parent that has one
  // ('tasks[0].params.video.bitrate' → 'tasks[0].params', 'input.path' → 'input').
  for (let p = field; p; p = parentPath(p)) {
    if (fields[p]) {
      showFieldError(fields[p], field, msg);
      return field;
    }
  }
  if (restPrefix && (field === restPrefix || field.startsWith(restPrefix + '.'))) {
    const sub = field === restPrefix ? restPrefix : field.slice(restPrefix.length + 1);
    if (rest) showFieldError(rest, sub, msg);
    return sub;
  }
  if (rest) {
    showFieldError(rest, field, msg);
    return field;
  }
  return '';
}

// parentPath answers 'a.b' for 'a.b.c' and 'a' for 'a[0]', '' at the top.
export function parentPath(p) {
  const m = /^(.*)(?:\.[^.[\]]+|\[\d+\])$/.exec(p);
  return m ? m[1] : '';
}

function encPath(p) {
  return String(p)
    .split('/')
    .map((x) => encodeURIComponent(x))
    .join('/');
}

export function outputURL(path) {
  return '/outputs/' + encPath(String(path).replace(/^\/+/, ''));
}

export function recordingURL(stream, file, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const qs = q.toString();
  return '/recordings/' + encPath(stream) + '/' + file + (qs ? '?' + qs : '');
}

// toRFC3339 turns a datetime-local value into an RFC 3339 time (UTC), or ''.
export function toRFC3339(local) {
  if (!local) return '';
  const d = new Date(local);
  if (isNaN(d.getTime())) return '';
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// toLocalInput turns an RFC 3339 time into a datetime-local value.
export function toLocalInput(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d.getTime())) return '';
  const pad = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// busy disables a button while an action runs.
export async function busy(btn, fn) {
  if (btn) btn.disabled = true;
  try {
    return await fn();
  } finally {
    if (btn) btn.disabled = false;
  }
}

// unauthorized tells a poller to stop: the app shows the login form.
export function unauthorized(err) {
  return err instanceof ApiError && (err.status === 401 || err.status === 403);
}
