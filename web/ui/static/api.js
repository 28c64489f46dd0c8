// api.js: the API client of the MPS admin console, shared by every page.
//
//   api(method, path, body)  JSON in and out, with the bearer token;
//                            throws ApiError (status, message, body, field)
//   apiText(path)            the same for a text answer (GET /metrics)
//   token(), setToken(t)     the token in localStorage 'mps.token'
//   fieldOf(message)         the field an API validation error names, or ''
//   esc(s)                   HTML escaping for innerHTML
//   errorText(err)           an error in words, for a .error element
//   fmtBytes, fmtBitrate, fmtDuration, fmtTime, fmtAgo: display helpers
//   serverInfo()             GET /api/v1/server, fetched once (cached)
//   hostPort(addr)           {host, port} of a configured address, the
//                            empty or wildcard host replaced by location.hostname
//   poll(fn, ms)             run fn now and ms after each run ends; returns stop()
//
// A 401 or 403 answer dispatches the window event 'mps:unauthorized'
// (detail: {status, message}); app.js then shows the login form.

const TOKEN_KEY = 'mps.token';

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(t) {
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: nothing to keep
  }
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.field = fieldOf(message);
  }
}

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

async function send(method, path, body) {
  const init = { method, headers: authHeaders({ Accept: 'application/json' }), cache: 'no-store' };
  if (body !== undefined && body !== null) {
    init.headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'cannot reach the server: ' + (e && e.message ? e.message : String(e)), null);
  }
  return res;
}

async function readBody(res) {
  const text = await res.text().catch(() => '');
  if (!text) return { text: '', json: null };
  try {
    return { text, json: JSON.parse(text) };
  } catch {
    return { text, json: null };
  }
}

async function failure(method, path, res) {
  const { text, json } = await readBody(res);
  let msg = json && typeof json.error === 'string' && json.error ? json.error : text.trim();
  if (!msg) msg = `${method} ${path}: HTTP ${res.status} ${res.statusText || ''}`.trim();
  const err = new ApiError(res.status, msg, json !== null ? json : text);
  if (res.status === 401 || res.status === 403) {
    window.dispatchEvent(new CustomEvent('mps:unauthorized', { detail: { status: res.status, message: msg } }));
  }
  return err;
}

// api calls the admin API: JSON in and out. It answers the parsed JSON
// body (null for an empty answer such as a 204).
export async function api(method, path, body) {
  const res = await send(method, path, body);
  if (!res.ok) throw await failure(method, path, res);
  const { text, json } = await readBody(res);
  if (!text) return null;
  return json !== null ? json : text;
}

// apiText fetches a text resource behind the token (GET /metrics).
export async function apiText(path) {
  const res = await send('GET', path);
  if (!res.ok) throw await failure('GET', path, res);
  return res.text();
}

// fieldOf finds the field an API error message names: the path before a
// quoted value ('params: video.bitrate "abc": ...' → 'video.bitrate',
// 'name "x y": ...' → 'name'), or the field of 'unknown field "x"'.
export function fieldOf(message) {
  if (!message) return '';
  const s = String(message);
  let m = /unknown field "([^"]+)"/.exec(s);
  if (m) return m[1];
  m = /missing (?:field|parameter) "?([A-Za-z_][\w.\-[\]]*)"?/.exec(s);
  if (m) return m[1];
  const re = /(?:^|: )([A-Za-z_][\w-]*(?:\.[\w-]+|\[\d+\])*) "(?:[^"\\]|\\.)*"(?=:|$)/g;
  while ((m = re.exec(s))) {
    if (m[1] !== 'template' && m[1] !== 'workflow') return m[1];
  }
  return '';
}

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function esc(s) {
  return String(s === undefined || s === null ? '' : s).replace(/[&<>"']/g, (c) => ESC[c]);
}

// errorText words any error for the user.
export function errorText(err) {
  if (!err) return '';
  if (err instanceof ApiError) {
    if (err.status === 0) return err.message;
    return `${err.message} (HTTP ${err.status})`;
  }
  return err.message || String(err);
}

export function fmtBytes(n) {
  if (n === undefined || n === null || isNaN(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
}

export function fmtBitrate(bps) {
  if (!bps && bps !== 0) return '–';
  const v = Number(bps);
  if (v >= 1e6) return (v / 1e6).toFixed(2) + ' Mb/s';
  if (v >= 1e3) return (v / 1e3).toFixed(0) + ' kb/s';
  return v.toFixed(0) + ' b/s';
}

export function fmtDuration(sec) {
  if (sec === undefined || sec === null || isNaN(sec)) return '–';
  let s = Math.max(0, Math.floor(Number(sec)));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const pad = (x) => String(x).padStart(2, '0');
  if (d) return `${d}d ${h}h ${pad(m)}m`;
  if (h) return `${h}:${pad(m)}:${pad(s)}`;
  return `${m}:${pad(s)}`;
}

export function fmtTime(t) {
  if (!t) return '–';
  const d = new Date(t);
  if (isNaN(d.getTime()) || d.getUTCFullYear() < 1971) return '–';
  return d.toLocaleString();
}

export function fmtAgo(t) {
  if (!t) return '–';
  const d = new Date(t);
  if (isNaN(d.getTime()) || d.getUTCFullYear() < 1971) return '–';
  const s = (Date.now() - d.getTime()) / 1000;
  if (s < 0) return 'in ' + fmtDuration(-s);
  return fmtDuration(s) + ' ago';
}

// poll runs fn at once and again ms after each run ends (runs never
// overlap). It returns a function that stops it.
export function poll(fn, ms) {
  let stopped = false;
  let timer = 0;
  const tick = async () => {
    if (stopped) return;
    try {
      await fn();
    } catch (e) {
      console.error(e);
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

let serverPromise = null;

// serverInfo answers GET /api/v1/server (what the server listens on and
// runs), fetched once and kept; a failure is not kept.
export function serverInfo() {
  if (!serverPromise) {
    serverPromise = api('GET', '/api/v1/server').catch((e) => {
      serverPromise = null;
      throw e;
    });
  }
  return serverPromise;
}

// hostPort splits a configured address ("host:port", ":port", "[::]:port")
// and puts location.hostname in place of an empty or wildcard host.
export function hostPort(addr) {
  if (!addr) return null;
  let host = '';
  let port = '';
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(addr) || /^([^:]*):(\d+)$/.exec(addr);
  if (m) {
    host = m[1];
    port = m[2];
  } else if (/^\d+$/.test(addr)) {
    port = addr;
  } else {
    host = addr;
  }
  if (!host || host === '0.0.0.0' || host === '::' || host === '[::]') host = location.hostname || 'localhost';
  if (host.includes(':') && !host.startsWith('[')) host = '[' + host + ']';
  return { host, port, hostport: port ? `${host}:${port}` : host };
}
