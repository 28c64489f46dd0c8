// app.js: the console's router, navigation, login and page mounting.
//
// Routes (hash): #/streams (default), #/streams/<name> (the name keeps its
// slashes), #/recordings, #/jobs, #/jobs/<id>, #/templates, #/workflows,
// #/system. Each page is an ES module exporting
//   export async function render(root, params)
// that fills root (a fresh <div> per mount) and may return a cleanup
// function, called when the route changes or the user must log in.

import { setToken, token, esc } from './api.js';

const main = document.getElementById('app');

const ROUTES = [
  { re: /^streams\/(.+)$/, page: 'streams', load: () => import('./stream.js'), params: (m) => ({ name: m[1] }) },
  { re: /^streams\/?$/, page: 'streams', load: () => import('./streams.js') },
  { re: /^recordings\/?$/, page: 'recordings', load: () => import('./recordings.js') },
  { re: /^jobs\/(.+)$/, page: 'jobs', load: () => import('./jobs.js'), params: (m) => ({ id: m[1] }) },
  { re: /^jobs\/?$/, page: 'jobs', load: () => import('./jobs.js') },
  { re: /^templates\/?$/, page: 'templates', load: () => import('./templates.js') },
  { re: /^workflows\/?$/, page: 'workflows', load: () => import('./workflows.js') },
  { re: /^system\/?$/, page: 'system', load: () => import('./system.js') },
];

let cleanup = null;
let generation = 0;
let loginShown = false;

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// parse turns location.hash into {route, params, query}.
function parse() {
  let h = location.hash.replace(/^#\/?/, '');
  let query = {};
  const q = h.indexOf('?');
  if (q >= 0) {
    query = Object.fromEntries(new URLSearchParams(h.slice(q + 1)));
    h = h.slice(0, q);
  }
  h = h.split('/').map(safeDecode).join('/');
  if (h === '') h = 'streams';
  for (const r of ROUTES) {
    const m = r.re.exec(h);
    if (m) return { route: r, params: Object.assign({}, query, r.params ? r.params(m) : {}), path: h };
  }
  return { route: null, params: query, path: h };
}

function setActive(page) {
  for (const a of document.querySelectorAll('.nav a')) {
    const on = a.dataset.page === page;
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function stopPage() {
  const c = cleanup;
  cleanup = null;
  if (typeof c === 'function') {
    try {
      c();
    } catch (e) {
      console.error('cleanup failed', e);
    }
  }
}

// mount renders the current route into a fresh container.
async function mount() {
  const gen = ++generation;
  stopPage();
  loginShown = false;
  const { route, params, path } = parse();
  setActive(route ? route.page : '');
  const root = document.createElement('div');
  root.className = 'page-root';
  main.replaceChildren(root);
  if (!route) {
    root.innerHTML = `<section class="page"><h1>Not found</h1><p class="error">No page at #/${esc(path)}.</p>
      <p><a href="#/streams">Go to the streams</a></p></section>`;
    return;
  }
  root.innerHTML = '<section class="page"><p class="muted">Loading…</p></section>';
  let mod;
  try {
    mod = await route.load();
  } catch (e) {
    if (gen !== generation) return;
    root.innerHTML = `<section class="page"><p class="error">Cannot load this page: ${esc(e.message || e)}</p></section>`;
    return;
  }
  if (gen !== generation || loginShown) return;
  root.innerHTML = '';
  let c;
  try {
    c = await mod.render(root, params);
  } catch (e) {
    console.error(e);
    if (gen === generation && !loginShown && root.isConnected) {
      const div = document.createElement('div');
      div.className = 'page';
      div.innerHTML = `<p class="error">${esc(e && e.message ? e.message : e)}</p>`;
      root.replaceChildren(div);
    }
    return;
  }
  if (gen !== generation || loginShown) {
    // The route changed (or the login form came up) while the page rendered.
    if (typeof c === 'function') c();
    return;
  }
  cleanup = c;
}

// showLogin replaces the page with the login form (no data stays shown).
function showLogin(detail) {
  const msg = detail && detail.message ? detail.message : '';
  const status = detail && detail.status ? detail.status : 401;
  if (loginShown) {
    const err = main.querySelector('[data-testid="login-error"]');
    if (err && msg) {
      err.textContent = msg;
      err.hidden = false;
    }
    return;
  }
  loginShown = true;
  generation++;
  stopPage();
  const had = token() !== '';
  const hint =
    status === 403
      ? 'The server answered 403: with no token configured it answers only clients on its own machine. Set api.token (MPS_API_TOKEN) on the server and enter it here.'
      : had
        ? 'The server refused the saved token. Enter the API token (api.token or MPS_API_TOKEN).'
        : 'This server requires the API token (api.token or MPS_API_TOKEN).';
  const wrap = document.createElement('div');
  wrap.className = 'page login-page';
  wrap.innerHTML = `
    <form class="card login" data-testid="login" autocomplete="on">
      <h1>Log in</h1>
      <p class="muted">${esc(hint)}</p>
      <p class="error" data-testid="login-error" role="alert" ${msg ? '' : 'hidden'}>${esc(msg)}</p>
      <label class="field">API token
        <input data-testid="token" type="password" name="token" autocomplete="current-password" required autofocus>
      </label>
      <div class="row"><button class="btn btn-primary" type="submit" data-testid="login-submit">Log in</button></div>
    </form>`;
  main.replaceChildren(wrap);
  setActive('');
  const form = wrap.querySelector('form');
  const input = form.querySelector('input');
  input.focus();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    setToken(t);
    mount();
  });
}

window.addEventListener('mps:unauthorized', (e) => showLogin(e.detail));
window.addEventListener('hashchange', () => mount());

document.querySelector('[data-testid="logout"]').addEventListener('click', (e) => {
  e.preventDefault();
  setToken('');
  mount();
});

if (!location.hash) history.replaceState(null, '', '#/streams');
mount();
