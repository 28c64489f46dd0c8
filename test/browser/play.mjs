#!/usr/bin/env node
// play.mjs plays one live stream in headless Chromium with hls.js or dash.js
// and checks what a viewer would see: the video's currentTime advances and
// decoded frames grow.
//
//   node play.mjs --url http://127.0.0.1:8080/live/cam1/index.m3u8 --player hls
//   node play.mjs --url http://127.0.0.1:8080/live/cam1/manifest.mpd --player dash
//
// Options:
//   --url URL          stream URL (an HLS multivariant playlist or a DASH MPD)
//   --player hls|dash  which player library to use
//   --advance SECONDS  how far currentTime must advance (default 3)
//   --timeout SECONDS  hang guard for the whole run (default 45)
//   --chromium PATH    browser binary (default /usr/bin/chromium or $CHROMIUM)
//   --same-origin      serve the media through this script's own HTTP server
//                      instead of fetching it cross-origin from MPS (by default
//                      the page is on another origin, so MPS must send CORS headers)
//   --screenshot FILE  save a PNG of the page at the end
//   --switch           once playing, force a switch to the rendition with the
//                      smallest height and check that playback goes on in it
//                      (the played height must become that rendition's)
//   --subtitles        once playing, turn the first subtitles track on and
//                      play on until one of its cues is active (showing) at
//                      the video's current time; the cues seen are reported
//
// With PLAY_DEBUG=1 in the environment, the player's debug log and every
// request and response are written to stderr.
//
// When playback has started it writes the line PLAYING to stderr, so that a
// driving test can disturb the stream (make the publisher reconnect) while
// the page plays on.
//
// It prints one JSON object on stdout and exits 0 on success, 1 on a playback
// failure and 2 on a usage or set-up error.

import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    player: { type: 'string', default: 'hls' },
    advance: { type: 'string', default: '3' },
    timeout: { type: 'string', default: '45' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    'same-origin': { type: 'boolean', default: false },
    screenshot: { type: 'string' },
    switch: { type: 'boolean', default: false },
    subtitles: { type: 'boolean', default: false },
  },
});

function fail(code, msg, extra = {}) {
  process.stdout.write(JSON.stringify({ ok: false, error: msg, ...extra }) + '\n');
  process.exit(code);
}

if (!opts.url) fail(2, 'missing --url');
if (!['hls', 'dash'].includes(opts.player)) fail(2, `unknown --player ${opts.player}`);
const wantAdvance = Number(opts.advance);
const timeoutMs = Number(opts.timeout) * 1000;

const libs = {
  hls: path.join(here, 'node_modules/hls.js/dist/hls.min.js'),
  dash: path.join(here, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'),
};
if (!existsSync(libs[opts.player])) fail(2, `${libs[opts.player]} is missing: run npm ci in ${here}`);

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  fail(2, `cannot load playwright-core (run npm ci in ${here}): ${e.message}`);
}

const target = new URL(opts.url);

// The page. Everything the test reads is in window.__mps.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>MPS ${opts.player} playback test</title></head>
<body>
<video id="v" muted playsinline controls width="640" height="360"></video>
<script src="/lib/player.js"></script>
<script>
window.__mps = { errors: [], events: [], ready: false };
// levels lists the video renditions the player knows; switchTo forces one.
window.__mps.levels = () => {
  const p = window.__player;
  if (!p) return [];
  if (window.Hls && p instanceof Hls) return p.levels.map((l) => ({ height: l.height, width: l.width, bitrate: l.bitrate }));
  return (p.getRepresentationsByType('video') || []).map((r) => ({ height: r.height, width: r.width, bitrate: r.bandwidth }));
};
window.__mps.switchTo = (idx) => {
  const p = window.__player;
  if (window.Hls && p instanceof Hls) { p.currentLevel = idx; return; }
  p.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
  p.setRepresentationForTypeByIndex('video', idx, true);
};
// subtitlesOn turns the first subtitles track on; activeCues lists the
// cues of showing text tracks that are active now.
window.__mps.subtitlesOn = () => {
  const p = window.__player;
  if (window.Hls && p instanceof Hls) {
    p.subtitleDisplay = true;
    p.subtitleTrack = 0;
  } else if (p && p.setTextTrack) {
    p.enableText(true);
    p.setTextTrack(0);
  }
  const v = document.getElementById('v');
  for (const tt of v.textTracks) {
    if (tt.kind === 'subtitles' || tt.kind === 'captions') tt.mode = 'showing';
  }
  return Array.from(v.textTracks).map((tt) => ({ kind: tt.kind, label: tt.label, language: tt.language, mode: tt.mode }));
};
window.__mps.activeCues = () => {
  const v = document.getElementById('v');
  const out = [];
  for (const tt of v.textTracks) {
    if (tt.mode !== 'showing' || !tt.activeCues) continue;
    for (const c of tt.activeCues) out.push({ text: c.text, start: c.startTime, end: c.endTime, at: v.currentTime });
  }
  return out;
};
const state = window.__mps;
const video = document.getElementById('v');
const src = new URLSearchParams(location.search).get('src');
const note = (m) => { state.events.push((performance.now() / 1000).toFixed(2) + ' ' + m); };
video.addEventListener('error', () => state.errors.push('video element error: ' + (video.error && video.error.message)));
for (const ev of ['loadedmetadata', 'playing', 'waiting', 'stalled', 'ended']) {
  video.addEventListener(ev, () => note('video ' + ev + ' t=' + video.currentTime.toFixed(2)));
}
try {
  if (${JSON.stringify(opts.player)} === 'hls') {
    if (!Hls.isSupported()) throw new Error('hls.js: MediaSource not supported');
    const hls = new Hls({ lowLatencyMode: true, debug: ${process.env.PLAY_DEBUG ? 'true' : 'false'} });
    window.__player = hls;
    hls.on(Hls.Events.ERROR, (_e, d) => {
      const m = 'hls.js ' + (d.fatal ? 'FATAL ' : '') + d.type + ' ' + d.details +
        (d.response ? ' http=' + d.response.code : '') + (d.url ? ' ' + d.url : '') + (d.error ? ' ' + d.error : '');
      if (d.fatal) state.errors.push(m); else note(m);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => {
      note('manifest parsed, levels=' + d.levels.length);
      video.play().catch((e) => note('play() rejected: ' + e.message));
    });
    hls.on(Hls.Events.LEVEL_LOADED, (_e, d) => {
      const det = d.details;
      // What hls.js made of the playlist: low-latency mode needs parts and blocking reload.
      state.info = { live: det.live, parts: det.partList ? det.partList.length : 0, canBlockReload: det.canBlockReload, partTarget: det.partTarget, targetDuration: det.targetduration };
      if (!state.levelLogged) { state.levelLogged = true; note('level loaded ' + JSON.stringify(state.info)); }
    });
    // Count discontinuities that playback crossed (a publisher reconnect).
    state.crossed = 0;
    let lastCC = null;
    hls.on(Hls.Events.FRAG_CHANGED, (_e, d) => {
      if (lastCC !== null && d.frag.cc !== lastCC) { state.crossed++; note('crossed discontinuity ' + lastCC + ' -> ' + d.frag.cc); }
      lastCC = d.frag.cc;
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else {
    const player = dashjs.MediaPlayer().create();
    window.__player = player;
    // No clock source on the internet: if the MPD has no UTCTiming element,
    // dash.js would ask time.akamai.com; use this page's own /time instead.
    player.updateSettings({
      debug: { logLevel: ${process.env.PLAY_DEBUG ? 'dashjs.Debug.LOG_LEVEL_DEBUG' : 'dashjs.Debug.LOG_LEVEL_WARNING'} },
      streaming: { utcSynchronization: { defaultTimingSource: { scheme: 'urn:mpeg:dash:utc:http-iso:2014', value: location.origin + '/time' } } },
    });
    player.on(dashjs.MediaPlayer.events.ERROR, (e) => {
      const err = e.error || e;
      state.errors.push('dash.js error ' + (err.code !== undefined ? err.code + ' ' : '') + (err.message || JSON.stringify(err)));
    });
    // Count period changes that playback crossed (a publisher reconnect).
    // PERIOD_SWITCH_COMPLETED also fires for the first period: count the
    // periods played after it.
    state.crossed = 0;
    const periods = new Set();
    player.on(dashjs.MediaPlayer.events.PERIOD_SWITCH_COMPLETED, (e) => {
      const id = e.toStreamInfo && e.toStreamInfo.id;
      if (!periods.has(id)) {
        if (periods.size > 0) state.crossed++;
        periods.add(id);
      }
      note('period switch to ' + id);
    });
    player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => {
      state.info = { dynamic: player.isDynamic() };
      note('dash stream initialized, dynamic=' + player.isDynamic());
    });
    // dash.js starts playback itself (autoplay); calling video.play() before
    // it has attached would hide the 'play' event from it, and it would
    // then never refresh the MPD.
    player.initialize(video, src, true);
  }
  state.ready = true;
} catch (e) {
  state.errors.push('setup: ' + e.message);
}
</script>
</body></html>`;

// Local server for the page, the player library and, with --same-origin, a
// pass-through proxy to MPS under /media/.
const server = http.createServer(async (req, res) => {
  try {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/' || u.pathname === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page);
      return;
    }
    if (u.pathname === '/lib/player.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(await readFile(libs[opts.player]));
      return;
    }
    if (u.pathname === '/time') {
      res.writeHead(200, { 'content-type': 'text/plain', 'access-control-allow-origin': '*', 'cache-control': 'no-store' });
      res.end(new Date().toISOString());
      return;
    }
    if (u.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (opts['same-origin'] && u.pathname.startsWith('/media/')) {
      const upstream = new URL(u.pathname.slice('/media'.length) + u.search, target.origin);
      const preq = http.request(upstream, { method: req.method, headers: { ...req.headers, host: target.host } }, (pres) => {
        res.writeHead(pres.statusCode, pres.headers);
        pres.pipe(res);
      });
      preq.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
      req.pipe(preq);
      return;
    }
    res.writeHead(404);
    res.end('not found');
  } catch (e) {
    res.writeHead(500);
    res.end(String(e));
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;
const src = opts['same-origin'] ? `${origin}/media${target.pathname}${target.search}` : target.href;

const result = {
  ok: false,
  player: opts.player,
  url: opts.url,
  src,
  pageOrigin: origin,
  startTime: null,
  endTime: null,
  advanced: 0,
  framesStart: null,
  framesEnd: null,
  droppedFrames: null,
  videoWidth: 0,
  videoHeight: 0,
  errors: [],
  events: [],
  console: [],
  failedRequests: [],
  externalRequests: [],
  info: null, // hls: {live, parts, canBlockReload, partTarget, targetDuration}; dash: {dynamic}
  latency: null, // seconds behind live as the player estimates it (informational)
  crossed: 0, // discontinuities (hls.js) or period switches (dash.js) that playback went through
  levels: [], // with --switch: the video renditions offered
  switchedTo: null, // with --switch: {index, height} of the forced rendition
  switchTime: null, // with --switch: currentTime when the switch was asked
  textTracks: [], // with --subtitles: the text tracks of the video element
  activeCues: [], // with --subtitles: the distinct cues seen active, with the currentTime when first seen
};

let browser;
const hang = setTimeout(() => finish('timeout: hang guard reached'), timeoutMs + 15000);

async function finish(err) {
  clearTimeout(hang);
  if (err) result.error = err;
  try {
    if (browser) await browser.close();
  } catch {}
  server.close();
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
  process.exit(result.ok ? 0 : 1);
}

try {
  browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      // This machine has no network beyond loopback: resolve nothing else.
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost'],
  });
} catch (e) {
  fail(2, `cannot launch ${opts.chromium}: ${e.message}`);
}

try {
  const ctx = await browser.newContext({ viewport: { width: 800, height: 480 } });
  const pg = await ctx.newPage();
  // PLAY_DEBUG=1: the player's debug log and every request go to stderr.
  if (process.env.PLAY_DEBUG) {
    const t0 = Date.now();
    const ts = () => ((Date.now() - t0) / 1000).toFixed(2);
    pg.on('console', (m) => process.stderr.write(`${ts()} console ${m.text().slice(0, 400)}\n`));
    pg.on('request', (r) => process.stderr.write(`${ts()} request ${r.url()}\n`));
    pg.on('requestfinished', async (r) => {
      const resp = await r.response();
      process.stderr.write(`${ts()} response ${resp && resp.status()} ${r.url()}\n`);
    });
  }
  pg.on('console', (m) => {
    if (['error', 'warning'].includes(m.type()) && result.console.length < 50) result.console.push(`${m.type()}: ${m.text()}`);
  });
  pg.on('pageerror', (e) => result.errors.push('page error: ' + e.message));
  pg.on('request', (r) => {
    const u = new URL(r.url());
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) return; // blob:, data:
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) && result.externalRequests.length < 10) result.externalRequests.push(r.url());
  });
  pg.on('requestfailed', (r) => {
    if (result.failedRequests.length < 30) result.failedRequests.push(`${r.url()} ${r.failure() && r.failure().errorText}`);
  });
  pg.on('response', (r) => {
    if (r.status() >= 400 && result.failedRequests.length < 30) result.failedRequests.push(`${r.url()} HTTP ${r.status()}`);
  });

  await pg.goto(`${origin}/?src=${encodeURIComponent(src)}`);
  const deadline = Date.now() + timeoutMs;
  const sample = () => pg.evaluate(() => {
    const v = document.getElementById('v');
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : { totalVideoFrames: 0, droppedVideoFrames: 0 };
    return {
      t: v.currentTime, paused: v.paused, readyState: v.readyState,
      frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
      w: v.videoWidth, h: v.videoHeight,
      errors: window.__mps.errors.slice(), events: window.__mps.events.slice(),
      info: window.__mps.info || null,
      crossed: window.__mps.crossed || 0,
      latency: window.__player && typeof window.__player.latency === 'number' ? window.__player.latency
        : (window.__player && window.__player.getCurrentLiveLatency ? window.__player.getCurrentLiveLatency() : null),
    };
  });

  let s;
  // Wait until playback has started (currentTime moved past its first value).
  for (;;) {
    s = await sample();
    if (s.errors.length) break;
    if (s.readyState >= 2 && !s.paused && s.t > 0) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  result.startTime = s.t;
  result.framesStart = s.frames;
  // Tell a driving test that playback is running (it may now, for example,
  // make the publisher reconnect).
  if (!s.errors.length && s.t > 0) process.stderr.write('PLAYING\n');
  let wantHeight = 0;
  if (opts.switch && !s.errors.length && s.t > 0) {
    result.levels = await pg.evaluate(() => window.__mps.levels());
    let idx = -1;
    result.levels.forEach((l, i) => { if (idx < 0 || l.height < result.levels[idx].height) idx = i; });
    if (result.levels.length < 2) {
      result.errors.push(`--switch: ${result.levels.length} video rendition(s), want at least 2`);
    } else {
      wantHeight = result.levels[idx].height;
      result.switchedTo = { index: idx, height: wantHeight };
      result.switchTime = s.t;
      await pg.evaluate((i) => window.__mps.switchTo(i), idx);
      // Measure the advance from the moment of the switch.
      result.startTime = s.t;
      result.framesStart = s.frames;
    }
  }
  const seen = new Set();
  const watchCues = async () => {
    for (const c of await pg.evaluate(() => window.__mps.activeCues())) {
      const key = c.text + '@' + c.start;
      if (!seen.has(key)) { seen.add(key); result.activeCues.push(c); }
    }
  };
  if (opts.subtitles && !s.errors.length && s.t > 0) {
    // hls.js lists subtitle tracks once the manifest is parsed; the
    // element's text track may come a moment later.
    for (let i = 0; i < 20; i++) {
      result.textTracks = await pg.evaluate(() => window.__mps.subtitlesOn());
      if (result.textTracks.some((t) => t.mode === 'showing')) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  if (!s.errors.length && Date.now() <= deadline) {
    // Let it play until currentTime advanced by wantAdvance seconds (and,
    // with --subtitles, until a cue was active).
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      s = await sample();
      if (opts.subtitles) await watchCues();
      if (s.errors.length) break;
      if (s.t - result.startTime >= wantAdvance && s.frames > result.framesStart && (!wantHeight || s.h === wantHeight) &&
        (!opts.subtitles || result.activeCues.length > 0)) break;
      if (Date.now() > deadline) break;
    }
  }
  result.endTime = s.t;
  result.advanced = Number((s.t - result.startTime).toFixed(3));
  result.framesEnd = s.frames;
  result.droppedFrames = s.dropped;
  result.videoWidth = s.w;
  result.videoHeight = s.h;
  result.errors.push(...s.errors);
  result.events = s.events;
  result.info = s.info;
  result.crossed = s.crossed;
  result.latency = s.latency;
  if (opts.screenshot) await pg.screenshot({ path: opts.screenshot });

  const problems = [];
  if (result.errors.length) problems.push('player reported errors');
  if (!(result.advanced >= wantAdvance)) problems.push(`currentTime advanced ${result.advanced}s, want >= ${wantAdvance}s`);
  if (!(result.framesEnd > result.framesStart)) problems.push(`totalVideoFrames did not grow (${result.framesStart} -> ${result.framesEnd})`);
  if (wantHeight && result.videoHeight !== wantHeight) problems.push(`after the switch the video is ${result.videoHeight} px high, want ${wantHeight}`);
  if (opts.subtitles && !result.textTracks.some((t) => t.mode === 'showing')) problems.push(`no subtitles track to show: ${JSON.stringify(result.textTracks)}`);
  if (opts.subtitles && result.activeCues.length === 0) problems.push('no subtitle cue became active while the video played');
  result.ok = problems.length === 0;
  await finish(problems.join('; '));
} catch (e) {
  await finish('exception: ' + (e && e.stack || e));
}
