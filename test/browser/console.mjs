#!/usr/bin/env node
// console.mjs drives MPS's web console in headless Chromium as an operator
// would, and reports what each step saw:
//
//   node console.mjs --url http://127.0.0.1:8080 --token T --stream live/ui \
//     --input clip.mp4 --artifacts DIR
//
// Steps (each reported in the JSON result's "steps"):
//   login     a wrong token shows the login form and no stream rows
//   streams   with the right token, the stream appears in the list (seconds it took)
//   preview   the stream page's preview plays (currentTime advances)
//   record    "start recording" makes a recording appear, and it plays
//   job       a snapshot job submitted from the form shows progress, then its images
//   template  a template with an invalid field shows the error next to that field
//   pages     a screenshot of every page, at laptop and phone sizes
//
// Screenshots go to --artifacts. It prints one JSON object and exits 0 when
// every step passed, 1 otherwise, 2 on a set-up error.

import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    stream: { type: 'string', default: 'live/ui' },
    input: { type: 'string', default: 'clip.mp4' },
    artifacts: { type: 'string', default: 'artifacts' },
    timeout: { type: 'string', default: '150' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
  },
});

const result = { ok: false, steps: {}, console: [], pageErrors: [], failedRequests: [] };
function fail(code, msg) {
  result.error = msg;
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
  process.exit(code);
}
if (!opts.url || !opts.token) fail(2, 'missing --url or --token');

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  fail(2, `cannot load playwright-core: ${e.message}`);
}
mkdirSync(opts.artifacts, { recursive: true });

let browser;
const hang = setTimeout(() => finish('timeout: hang guard reached'), Number(opts.timeout) * 1000);
async function finish(err) {
  clearTimeout(hang);
  if (err) result.error = err;
  try { if (browser) await browser.close(); } catch {}
  result.ok = !result.error && Object.values(result.steps).every((s) => s.ok);
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
  process.exit(result.ok ? 0 : 1);
}

const shot = (pg, name) => pg.screenshot({ path: path.join(opts.artifacts, name + '.png'), fullPage: true }).catch(() => {});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, ms, every = 200) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {}
    if (Date.now() > end) return null;
    await sleep(every);
  }
}
// videoAdvances waits until the video matched by sel plays at least secs.
async function videoAdvances(pg, sel, secs, ms) {
  const t0 = await until(() => pg.evaluate((s) => { const v = document.querySelector(s); return v && v.currentTime > 0 ? v.currentTime : 0; }, sel), ms);
  if (!t0) return { start: 0, end: 0 };
  const t1 = await until(() => pg.evaluate(([s, from, d]) => { const v = document.querySelector(s); return v && v.currentTime >= from + d ? v.currentTime : 0; }, [sel, t0, secs]), ms);
  return { start: t0, end: t1 || 0 };
}

async function newPage(ctx, token) {
  const pg = await ctx.newPage();
  await pg.addInitScript((t) => localStorage.setItem('mps.token', t), token);
  pg.on('console', (m) => { if (['error', 'warning'].includes(m.type()) && result.console.length < 50) result.console.push(`${m.type()}: ${m.text()}`); });
  pg.on('pageerror', (e) => result.pageErrors.push(e.message));
  pg.on('response', (r) => { if (r.status() >= 500 && result.failedRequests.length < 30) result.failedRequests.push(`${r.url()} HTTP ${r.status()}`); });
  return pg;
}

try {
  browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--autoplay-policy=no-user-gesture-required',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost'],
  });
} catch (e) {
  fail(2, `cannot launch ${opts.chromium}: ${e.message}`);
}

const base = opts.url.replace(/\/$/, '');
const name = opts.stream;
try {
  const laptop = await browser.newContext({ viewport: { width: 1280, height: 800 } });

  // login: a wrong token shows the login form, not data.
  {
    const pg = await newPage(laptop, 'wrong-token');
    await pg.goto(base + '/#/streams');
    const form = await until(() => pg.isVisible('[data-testid="login"]'), 10000);
    const rows = await pg.locator('[data-testid="stream-row"]').count();
    await shot(pg, 'login');
    result.steps.login = { ok: !!form && rows === 0, loginForm: !!form, rows };
    await pg.close();
  }

  const pg = await newPage(laptop, opts.token);
  // streams: the stream appears within 5 s.
  {
    const t0 = Date.now();
    await pg.goto(base + '/#/streams');
    const row = await until(() => pg.isVisible(`[data-testid="stream-row"][data-name="${name}"]`), 15000);
    const secs = (Date.now() - t0) / 1000;
    await shot(pg, 'streams');
    result.steps.streams = { ok: !!row && secs <= 5, seconds: secs };
  }

  // preview: the stream page plays.
  {
    await pg.goto(base + '/#/streams/' + name);
    const adv = await videoAdvances(pg, '[data-testid="preview"]', 2, 30000);
    const levels = await pg.locator('[data-testid="levels"] option').count().catch(() => 0);
    await shot(pg, 'stream');
    result.steps.preview = { ok: adv.end > 0, ...adv, levelOptions: levels };
  }

  // record: start recording from the page; a recording appears and plays.
  {
    await pg.click('[data-testid="record-start"]');
    await sleep(6000);
    await pg.click('[data-testid="record-stop"]').catch(() => {});
    await pg.goto(base + '/#/recordings');
    const row = await until(async () => {
      const n = await pg.locator(`[data-testid="recording-row"][data-stream="${name}"]`).count();
      if (n > 0) return true;
      await pg.reload();
      return false;
    }, 20000, 1500);
    let adv = { start: 0, end: 0 };
    if (row) {
      await pg.locator(`[data-testid="recording-row"][data-stream="${name}"]`).first().locator('button', { hasText: /play/i }).first().click();
      adv = await videoAdvances(pg, '[data-testid="recording-player"]', 1, 30000);
    }
    await shot(pg, 'recordings');
    result.steps.record = { ok: !!row && adv.end > 0, recording: !!row, ...adv };
  }

  // job: a snapshot job from the form shows progress, then images.
  {
    await pg.goto(base + '/#/jobs');
    await pg.waitForSelector('[data-testid="job-form"]', { timeout: 10000 });
    await pg.fill('[data-testid="job-input"]', opts.input);
    await pg.selectOption('[data-testid="job-type"]', 'snapshot');
    await until(() => pg.locator('[data-testid="job-template"] option[value="snapshot-sample-10s"]').count(), 5000);
    await pg.selectOption('[data-testid="job-template"]', 'snapshot-sample-10s');
    await pg.click('[data-testid="job-submit"]');
    const sawProgress = await until(() => pg.locator('[data-testid="job-progress"]').count(), 20000, 100);
    await shot(pg, 'jobs');
    const done = await until(() => pg.locator('[data-testid="job-row"][data-state="succeeded"]').count(), 60000, 500);
    if (done) await pg.locator('[data-testid="job-row"][data-state="succeeded"] a').first().click();
    const images = await until(() => pg.evaluate(() => [...document.querySelectorAll('[data-testid="output-image"]')]
      .filter((i) => i.complete && i.naturalWidth > 0).length), 20000);
    await shot(pg, 'job');
    result.steps.job = { ok: !!sawProgress && !!done && images > 0, progressShown: !!sawProgress, succeeded: !!done, images: images || 0 };
  }

  // template: an invalid field shows its error next to it.
  {
    await pg.goto(base + '/#/templates');
    await pg.waitForSelector('[data-testid="template-form"]', { timeout: 10000 });
    await pg.selectOption('[data-testid="template-type"]', 'transcode');
    await pg.fill('[data-testid="template-name"]', 'ui-bad');
    await pg.fill('[data-testid="template-params"]', '{"video": {"bitrate": "lots"}}');
    await pg.click('[data-testid="template-save"]');
    const err = await until(async () => {
      const el = pg.locator('[data-testid="field-error"]').first();
      if (!(await el.count()) || !(await el.isVisible())) return null;
      return { field: await el.getAttribute('data-field'), text: await el.innerText() };
    }, 10000);
    await shot(pg, 'templates');
    result.steps.template = { ok: !!err && /bitrate/.test(err.field || ''), ...(err || {}) };
  }

  // pages: every page at laptop and phone sizes.
  {
    const pages = ['streams', 'streams/' + name, 'recordings', 'jobs', 'templates', 'workflows', 'system'];
    for (const p of pages) {
      await pg.goto(base + '/#/' + p);
      await sleep(1500);
      await shot(pg, 'laptop-' + p.replace(/\//g, '_'));
    }
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const ph = await newPage(phone, opts.token);
    let overflow = [];
    for (const p of pages) {
      await ph.goto(base + '/#/' + p);
      await sleep(1500);
      await shot(ph, 'phone-' + p.replace(/\//g, '_'));
      const wide = await ph.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 2);
      if (wide) overflow.push(p);
    }
    result.steps.pages = { ok: overflow.length === 0, phoneOverflow: overflow };
  }
  await finish();
} catch (e) {
  await finish('exception: ' + (e && e.stack || e));
}
