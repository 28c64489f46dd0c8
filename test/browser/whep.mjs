#!/usr/bin/env node
// whep.mjs plays one stream through WHEP in headless Chromium, from a page
// this script serves on its own origin, and checks what a viewer gets: the
// <video> element decodes frames (requestVideoFrameCallback and
// getVideoPlaybackQuality both count) and an audio track arrives and
// receives packets.
//
//   node whep.mjs --url http://127.0.0.1:8080/whep/live/cam1
//
// Options:
//   --url URL          the WHEP endpoint
//   --frames N         decoded frames to wait for (default 60)
//   --timeout SECONDS  hang guard (default 30)
//   --chromium PATH    browser binary (default /usr/bin/chromium or $CHROMIUM)
//
// The page adds recvonly video and audio transceivers, POSTs the offer
// (with every ICE candidate) to the endpoint, applies the answer, attaches
// the received stream to a muted autoplaying <video>, and DELETEs the
// session at the end. It prints one JSON object on stdout and exits 0 on
// success, 1 on a playback failure and 2 on a set-up error.

import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    frames: { type: 'string', default: '60' },
    timeout: { type: 'string', default: '30' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
  },
});

function fail(code, msg, extra = {}) {
  process.stdout.write(JSON.stringify({ ok: false, error: msg, ...extra }) + '\n');
  process.exit(code);
}
if (!opts.url) fail(2, 'missing --url');
const wantFrames = Number(opts.frames);
const timeoutMs = Number(opts.timeout) * 1000;

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  fail(2, `cannot load playwright-core (run npm ci in test/browser): ${e.message}`);
}

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>MPS WHEP playback test</title></head>
<body><video id="v" muted autoplay playsinline width="640" height="360"></video>
<script>
window.__mps = { state: 'new', events: [], errors: [], tracks: [], rvfcFrames: 0, firstFrameAt: null };
const st = window.__mps;
const note = (m) => st.events.push((performance.now() / 1000).toFixed(2) + ' ' + m);
const video = document.getElementById('v');
video.addEventListener('error', () => st.errors.push('video element error: ' + (video.error && video.error.message)));
for (const ev of ['loadedmetadata', 'playing', 'waiting', 'stalled']) video.addEventListener(ev, () => note('video ' + ev));
// requestVideoFrameCallback counts the frames actually presented.
const onFrame = (_now, meta) => {
  st.rvfcFrames++;
  st.presentedFrames = meta.presentedFrames;
  if (st.firstFrameAt === null) st.firstFrameAt = performance.now();
  video.requestVideoFrameCallback(onFrame);
};
if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
window.__play = async (url) => {
  const pc = new RTCPeerConnection();
  window.__pc = pc;
  st.t0 = performance.now();
  pc.addEventListener('connectionstatechange', () => { st.state = pc.connectionState; note('connection ' + pc.connectionState); });
  const ms = new MediaStream();
  pc.addEventListener('track', (e) => {
    st.tracks.push({ kind: e.track.kind, muted: e.track.muted });
    note('track ' + e.track.kind);
    ms.addTrack(e.track);
    video.srcObject = ms;
    video.play().catch((err) => note('play() rejected: ' + err.message));
  });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const t = setTimeout(resolve, 3000);
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } });
  });
  const resp = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const body = await resp.text();
  st.status = resp.status;
  st.location = resp.headers.get('Location');
  if (resp.status !== 201) throw new Error('WHEP POST answered ' + resp.status + ': ' + body.trim());
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
};
window.__sample = async () => {
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : { totalVideoFrames: 0, droppedVideoFrames: 0 };
  const out = { state: st.state, rvfcFrames: st.rvfcFrames, totalVideoFrames: q.totalVideoFrames, droppedVideoFrames: q.droppedVideoFrames,
    w: video.videoWidth, h: video.videoHeight, t: video.currentTime, paused: video.paused, video: null, audio: null,
    firstFrameMs: st.firstFrameAt === null ? null : Math.round(st.firstFrameAt - st.t0) };
  if (window.__pc) {
    const stats = await window.__pc.getStats();
    const codecs = {};
    stats.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s; });
    stats.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const c = codecs[s.codecId];
      out[s.kind] = { codec: c ? c.mimeType : null, packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, bytesReceived: s.bytesReceived,
        framesDecoded: s.framesDecoded, keyFramesDecoded: s.keyFramesDecoded, totalSamplesReceived: s.totalSamplesReceived,
        jitterBufferDelay: s.jitterBufferDelay, jitterBufferEmittedCount: s.jitterBufferEmittedCount, decoder: s.decoderImplementation };
    });
  }
  return out;
};
window.__end = async (base) => {
  if (st.location) {
    const r = await fetch(new URL(st.location, base), { method: 'DELETE' });
    st.deleteStatus = r.status;
  }
  if (window.__pc) window.__pc.close();
};
</script></body></html>`;

const server = http.createServer((req, res) => {
  if (req.url === '/' || req.url.startsWith('/?')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page);
    return;
  }
  res.writeHead(req.url === '/favicon.ico' ? 204 : 404);
  res.end();
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const result = { ok: false, url: opts.url, pageOrigin: origin, status: null, location: null, deleteStatus: null, state: null,
  tracks: [], start: null, end: null, video: null, audio: null, events: [], errors: [], console: [] };
let browser;
let finished = false;
async function finish(err) {
  if (finished) return;
  finished = true;
  if (err) result.error = err;
  try { if (browser) await browser.close(); } catch {}
  server.close();
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
  process.exit(result.ok ? 0 : 1);
}
const hang = setTimeout(() => finish('timeout: hang guard reached'), timeoutMs + 15000);

try {
  browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost'],
  });
} catch (e) {
  fail(2, `cannot launch ${opts.chromium}: ${e.message}`);
}

try {
  const ctx = await browser.newContext({ viewport: { width: 800, height: 480 } });
  const pg = await ctx.newPage();
  pg.on('console', (m) => { if (['error', 'warning'].includes(m.type()) && result.console.length < 30) result.console.push(`${m.type()}: ${m.text()}`); });
  pg.on('pageerror', (e) => result.errors.push('page error: ' + e.message));
  await pg.goto(origin + '/');
  try {
    await pg.evaluate((u) => window.__play(u), opts.url);
  } catch (e) {
    result.errors.push('play: ' + e.message.split('\n')[0]);
  }
  const deadline = Date.now() + timeoutMs;
  let s;
  if (!result.errors.length) {
    // First decoded frame, then wantFrames more.
    for (;;) {
      s = await pg.evaluate(() => window.__sample());
      if (s.state === 'failed' || s.state === 'closed') { result.errors.push('connection ' + s.state); break; }
      if (s.rvfcFrames > 0 && s.totalVideoFrames > 0) break;
      if (Date.now() > deadline) { result.errors.push(`no decoded frame within ${opts.timeout} s (state ${s.state})`); break; }
      await new Promise((r) => setTimeout(r, 100));
    }
    result.start = s;
    while (!result.errors.length) {
      await new Promise((r) => setTimeout(r, 250));
      s = await pg.evaluate(() => window.__sample());
      if (s.state === 'failed' || s.state === 'closed') { result.errors.push('connection ' + s.state); break; }
      const audioOK = s.audio && s.audio.packetsReceived > 50;
      if (s.rvfcFrames - result.start.rvfcFrames >= wantFrames && s.totalVideoFrames > result.start.totalVideoFrames && audioOK) break;
      if (Date.now() > deadline) break;
    }
    result.end = s;
    await pg.evaluate((b) => window.__end(b), opts.url);
  }
  const st = await pg.evaluate(() => window.__mps);
  Object.assign(result, { status: st.status, location: st.location, deleteStatus: st.deleteStatus ?? null, state: st.state, tracks: st.tracks, events: st.events });
  result.errors.push(...st.errors);
  if (result.end) {
    result.video = result.end.video;
    result.audio = result.end.audio;
  }
  const problems = [...result.errors];
  if (!problems.length) {
    const a = result.start, b = result.end;
    if (!(b.rvfcFrames - a.rvfcFrames >= wantFrames)) problems.push(`requestVideoFrameCallback counted ${b.rvfcFrames - a.rvfcFrames} frames, want >= ${wantFrames}`);
    if (!(b.totalVideoFrames > a.totalVideoFrames)) problems.push(`totalVideoFrames did not grow (${a.totalVideoFrames} -> ${b.totalVideoFrames})`);
    if (!result.tracks.some((t) => t.kind === 'audio')) problems.push('no audio track arrived');
    else if (!(b.audio && b.audio.packetsReceived > 50)) problems.push(`audio track received ${b.audio ? b.audio.packetsReceived : 0} packets`);
  }
  result.ok = problems.length === 0;
  await finish(problems.join('; '));
} catch (e) {
  await finish('exception: ' + (e && e.stack || e));
}
