#!/usr/bin/env node
// whip.mjs publishes Chromium's fake camera and microphone to a WHIP
// endpoint, from a page this script serves on its own origin (so the WHIP
// POST is cross-origin, as from any web publisher).
//
//   node whip.mjs --url http://127.0.0.1:8080/whip/live/cam1 --key s3cret
//
// Options:
//   --url URL          the WHIP endpoint
//   --key KEY          bearer token (the stream key)
//   --hold SECONDS     how long to keep publishing once connected (default 20);
//                      closing stdin ends the session earlier
//   --timeout SECONDS  hang guard for connecting (default 30)
//   --chromium PATH    browser binary (default /usr/bin/chromium or $CHROMIUM)
//   --codec NAME       offer only this video codec (vp8, h264, vp9, av1), with
//                      RTCRtpTransceiver.setCodecPreferences; default: the
//                      browser's own list
//
// Chromium runs with --use-fake-device-for-media-stream and
// --use-fake-ui-for-media-stream: getUserMedia gets a generated picture and
// a beep without a permission prompt. The page adds sendonly video and audio
// transceivers, POSTs the offer (with every ICE candidate) to the endpoint
// and applies the answer.
//
// When the connection is up and media flows it writes the line PUBLISHING
// to stderr. At the end it DELETEs the session resource, prints one JSON
// object on stdout and exits 0 (published), 1 (failed) or 2 (set-up error).

import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    key: { type: 'string', default: '' },
    hold: { type: 'string', default: '20' },
    timeout: { type: 'string', default: '30' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    codec: { type: 'string', default: '' },
  },
});

function fail(code, msg, extra = {}) {
  process.stdout.write(JSON.stringify({ ok: false, error: msg, ...extra }) + '\n');
  process.exit(code);
}
if (!opts.url) fail(2, 'missing --url');

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  fail(2, `cannot load playwright-core (run npm ci in test/browser): ${e.message}`);
}

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>MPS WHIP publish test</title></head>
<body><video id="v" muted autoplay playsinline width="320" height="240"></video>
<script>
window.__mps = { state: 'new', events: [], errors: [] };
const st = window.__mps;
const note = (m) => st.events.push((performance.now() / 1000).toFixed(2) + ' ' + m);
window.__publish = async (url, key, codec) => {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: true });
  document.getElementById('v').srcObject = media;
  const pc = new RTCPeerConnection();
  window.__pc = pc;
  pc.addEventListener('connectionstatechange', () => { st.state = pc.connectionState; note('connection ' + pc.connectionState); });
  for (const track of media.getTracks()) {
    const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    if (codec && track.kind === 'video') {
      const want = 'video/' + codec.toLowerCase();
      const prefs = RTCRtpSender.getCapabilities('video').codecs.filter((c) => c.mimeType.toLowerCase() === want);
      if (!prefs.length) throw new Error('the browser cannot send ' + codec);
      tr.setCodecPreferences(prefs);
    }
  }
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  // No trickle ICE: wait for every candidate (bounded).
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const t = setTimeout(resolve, 3000);
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } });
  });
  st.offerCodecs = (pc.localDescription.sdp.match(/a=rtpmap:\\d+ [^\\r\\n]+/g) || []).map((l) => l.split(' ')[1]);
  const headers = { 'Content-Type': 'application/sdp' };
  if (key) headers.Authorization = 'Bearer ' + key;
  const resp = await fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
  const body = await resp.text();
  st.status = resp.status;
  st.location = resp.headers.get('Location');
  if (resp.status !== 201) throw new Error('WHIP POST answered ' + resp.status + ': ' + body.trim());
  st.answer = body;
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
};
window.__stats = async () => {
  const out = { video: null, audio: null };
  const stats = await window.__pc.getStats();
  const codecs = {};
  stats.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s; });
  stats.forEach((s) => {
    if (s.type !== 'outbound-rtp') return;
    const c = codecs[s.codecId];
    out[s.kind] = { codec: c ? c.mimeType : null, fmtp: c ? c.sdpFmtpLine : null, bytesSent: s.bytesSent, packetsSent: s.packetsSent,
      framesEncoded: s.framesEncoded, keyFramesEncoded: s.keyFramesEncoded, pliCount: s.pliCount, firCount: s.firCount, nackCount: s.nackCount, frameWidth: s.frameWidth, frameHeight: s.frameHeight, encoder: s.encoderImplementation };
  });
  return out;
};
window.__end = async () => {
  if (st.location) {
    const u = new URL(st.location, window.__whipURL);
    const r = await fetch(u, { method: 'DELETE' });
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
  offerCodecs: [], answerVideoCodecs: [], video: null, audio: null, events: [], errors: [], console: [] };
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
const hang = setTimeout(() => finish('timeout: hang guard reached'), (Number(opts.timeout) + Number(opts.hold) + 20) * 1000);

try {
  browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost'],
  });
} catch (e) {
  fail(2, `cannot launch ${opts.chromium}: ${e.message}`);
}

try {
  const ctx = await browser.newContext();
  const pg = await ctx.newPage();
  pg.on('console', (m) => { if (['error', 'warning'].includes(m.type()) && result.console.length < 30) result.console.push(`${m.type()}: ${m.text()}`); });
  pg.on('pageerror', (e) => result.errors.push('page error: ' + e.message));
  await pg.goto(origin + '/');
  await pg.evaluate((u) => { window.__whipURL = u; }, opts.url);
  try {
    await pg.evaluate(([u, k, c]) => window.__publish(u, k, c), [opts.url, opts.key, opts.codec]);
  } catch (e) {
    result.errors.push('publish: ' + e.message.split('\n')[0]);
  }
  const snap = async () => {
    const s = await pg.evaluate(() => ({ ...window.__mps, answer: undefined }));
    Object.assign(result, { status: s.status, location: s.location, state: s.state, offerCodecs: s.offerCodecs || [], events: s.events });
    result.errors.push(...s.errors);
  };
  const answer = await pg.evaluate(() => window.__mps.answer || '');
  // The video codecs the answer accepts, in its order of preference.
  const vsec = answer.split(/\r?\nm=/).find((m) => m.startsWith('video') || m.startsWith('m=video'));
  if (vsec) {
    const pts = (vsec.split(/\r?\n/)[0].split(' ').slice(3));
    const map = {};
    for (const l of vsec.split(/\r?\n/)) { const m = l.match(/^a=rtpmap:(\d+) ([^/]+)/); if (m) map[m[1]] = m[2]; }
    result.answerVideoCodecs = pts.map((p) => map[p] || p);
  }
  await snap();
  if (!result.errors.length) {
    // Connected, with video frames encoded and sent.
    const deadline = Date.now() + Number(opts.timeout) * 1000;
    for (;;) {
      const s = await pg.evaluate(() => window.__stats());
      result.video = s.video;
      result.audio = s.audio;
      const state = await pg.evaluate(() => window.__mps.state);
      if (state === 'failed' || state === 'closed') { result.errors.push('connection ' + state); break; }
      if (state === 'connected' && s.video && s.video.framesEncoded > 10 && s.audio && s.audio.packetsSent > 10) break;
      if (Date.now() > deadline) { result.errors.push(`not publishing after ${opts.timeout} s (state ${state})`); break; }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  if (!result.errors.length) {
    process.stderr.write('PUBLISHING\n');
    // Publish for --hold seconds, or until stdin closes.
    await new Promise((resolve) => {
      const t = setTimeout(resolve, Number(opts.hold) * 1000);
      process.stdin.on('end', () => { clearTimeout(t); resolve(); });
      process.stdin.on('error', () => {});
      process.stdin.resume();
    });
    const s = await pg.evaluate(() => window.__stats());
    result.video = s.video;
    result.audio = s.audio;
    const state = await pg.evaluate(() => window.__mps.state);
    if (state !== 'connected') result.errors.push('connection ' + state + ' at the end');
    await pg.evaluate(() => window.__end());
    result.deleteStatus = await pg.evaluate(() => window.__mps.deleteStatus ?? null);
  }
  await snap();
  result.ok = result.errors.length === 0;
  await finish(result.ok ? null : result.errors.join('; '));
} catch (e) {
  await finish('exception: ' + (e && e.stack || e));
}
