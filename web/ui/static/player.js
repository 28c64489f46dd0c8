// player.js: playback helpers for every page of the console.
//
//   playHLS(video, url, opts?)   hls.js (or native HLS) on a <video>; returns
//                                a cleanup function. opts: {levels: <select>,
//                                live: bool, onError(msg)}. Errors are shown
//                                in a .error element right after the video.
//   playDASH(video, url, opts?)  the same with dash.js (an .mpd)
//   playURL(video, url, opts?)   picks HLS, DASH or a plain file by extension
//   playWHEP(video, url)         WebRTC playback (WHEP); resolves to a cleanup
//   playersMissing()             true when hls.js is not loaded
//
// The libraries are classic scripts loaded by index.html from /ui/vendor/
// (window.Hls, window.dashjs); `make ui` puts them there.

export const MISSING = 'player libraries missing: run make ui';

export function playersMissing() {
  return typeof window.Hls === 'undefined';
}

// errorBox returns the .error element shown after the video, made on demand.
function errorBox(video) {
  let el = video.nextElementSibling;
  if (!el || !el.classList || !el.classList.contains('player-error')) {
    el = document.createElement('div');
    el.className = 'error player-error';
    el.setAttribute('role', 'alert');
    el.hidden = true;
    video.insertAdjacentElement('afterend', el);
  }
  return el;
}

function showError(video, msg, opts) {
  if (msg && opts && typeof opts.onError === 'function') opts.onError(msg);
  if (!video.parentNode) return;
  const el = errorBox(video);
  el.textContent = msg;
  el.hidden = !msg;
}

function levelLabel(l) {
  const parts = [];
  if (l.height) parts.push(l.height + 'p');
  else if (l.name) parts.push(l.name);
  if (l.bitrate) parts.push(Math.round(l.bitrate / 1000) + ' kb/s');
  return parts.join(' · ') || 'level';
}

function fillLevels(select, hls) {
  if (!select) return;
  const cur = hls.autoLevelEnabled ? -1 : hls.currentLevel;
  select.innerHTML = '';
  const auto = document.createElement('option');
  auto.value = '-1';
  auto.textContent = 'Auto';
  select.appendChild(auto);
  hls.levels.forEach((l, i) => {
    const o = document.createElement('option');
    o.value = String(i);
    o.textContent = levelLabel(l);
    select.appendChild(o);
  });
  select.value = String(cur);
  select.disabled = hls.levels.length < 1;
}

// playHLS plays an HLS URL on the video. It returns a cleanup function
// (with .hls, the hls.js instance, when hls.js is used).
export function playHLS(video, url, opts = {}) {
  showError(video, '', opts);
  video.muted = video.muted || video.hasAttribute('muted');
  const Hls = window.Hls;
  if (Hls && Hls.isSupported()) {
    let hls = null;
    let stopped = false;
    let retryTimer = 0;
    let netRetries = 0;
    const select = opts.levels || null;
    const onSelect = () => {
      if (!hls) return;
      const v = Number(select.value);
      if (v < 0) {
        hls.currentLevel = -1; // back to automatic selection
      } else {
        hls.currentLevel = v; // switch now, flushing the buffer
      }
    };
    if (select) select.addEventListener('change', onSelect);

    const start = () => {
      if (stopped) return;
      hls = new Hls({ lowLatencyMode: opts.live !== false, backBufferLength: 30, enableWorker: true });
      cleanup.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        netRetries = 0;
        fillLevels(select, hls);
        showError(video, '', opts);
        const p = video.play();
        if (p && p.catch) p.catch(() => {});
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
        if (!select || !hls) return;
        const auto = select.querySelector('option[value="-1"]');
        const l = hls.levels[data.level];
        if (auto) auto.textContent = hls.autoLevelEnabled && l ? `Auto (${levelLabel(l)})` : 'Auto';
      });
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!data.fatal) return;
        const code = data.response && data.response.code ? ` (HTTP ${data.response.code})` : '';
        const what = `playback error: ${data.details || data.type}${code}`;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          showError(video, what + ', recovering', opts);
          hls.recoverMediaError();
          return;
        }
        showError(video, what, opts);
        if (opts.live !== false && data.type === Hls.ErrorTypes.NETWORK_ERROR && netRetries < 30) {
          // A live stream may not be packaged yet, or comes back: try again.
          netRetries++;
          hls.destroy();
          hls = null;
          retryTimer = setTimeout(start, 2000);
        }
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    };
    const cleanup = () => {
      stopped = true;
      clearTimeout(retryTimer);
      if (select) select.removeEventListener('change', onSelect);
      if (hls) hls.destroy();
      hls = null;
      video.removeAttribute('src');
      try {
        video.load();
      } catch {
        // detached video
      }
    };
    start();
    return cleanup;
  }
  if (video.canPlayType('application/vnd.apple.mpegurl')) {
    // Safari (iOS), recent Chromium: native HLS; the level picker only offers Auto.
    if (!Hls) showError(video, MISSING + " (playing with the browser's own HLS support, without the level picker)", opts);
    if (opts.levels) {
      opts.levels.innerHTML = '<option value="-1">Auto</option>';
      opts.levels.disabled = true;
    }
    const onErr = () => showError(video, 'playback error: ' + (video.error ? video.error.message || 'code ' + video.error.code : 'unknown'), opts);
    video.addEventListener('error', onErr);
    video.src = url;
    const p = video.play();
    if (p && p.catch) p.catch(() => {});
    return () => {
      video.removeEventListener('error', onErr);
      video.removeAttribute('src');
      video.load();
    };
  }
  showError(video, Hls ? 'this browser cannot play HLS (no Media Source Extensions)' : MISSING, opts);
  return () => showError(video, '', opts);
}

// playDASH plays a DASH manifest with dash.js.
export function playDASH(video, url, opts = {}) {
  showError(video, '', opts);
  const dashjs = window.dashjs;
  if (!dashjs) {
    showError(video, MISSING, opts);
    return () => showError(video, '', opts);
  }
  const player = dashjs.MediaPlayer().create();
  player.on(dashjs.MediaPlayer.events.ERROR, (e) => {
    const err = e && e.error ? e.error.message || e.error.code || e.error : e;
    showError(video, 'playback error: ' + (typeof err === 'string' ? err : JSON.stringify(err)), opts);
  });
  player.initialize(video, url, true);
  const cleanup = () => {
    try {
      player.reset();
    } catch {
      // already reset
    }
  };
  cleanup.player = player;
  return cleanup;
}

// playURL plays an HLS playlist, a DASH manifest or a plain media file.
export function playURL(video, url, opts = {}) {
  const p = url.split('?')[0].toLowerCase();
  if (p.endsWith('.m3u8')) return playHLS(video, url, Object.assign({ live: false }, opts));
  if (p.endsWith('.mpd')) return playDASH(video, url, opts);
  showError(video, '', opts);
  const onErr = () => showError(video, 'playback error: ' + (video.error ? video.error.message || 'code ' + video.error.code : 'unknown'), opts);
  video.addEventListener('error', onErr);
  video.src = url;
  return () => {
    video.removeEventListener('error', onErr);
    video.removeAttribute('src');
    video.load();
  };
}

// playWHEP plays url (/whep/<name>) over WebRTC. It resolves to a cleanup
// function that ends the session; it throws an Error in words on failure.
export async function playWHEP(video, url, { onState } = {}) {
  if (typeof RTCPeerConnection === 'undefined') throw new Error('this browser has no WebRTC');
  const pc = new RTCPeerConnection();
  let location = null;
  let closed = false;
  const cleanup = async () => {
    if (closed) return;
    closed = true;
    pc.close();
    video.srcObject = null;
    if (location) {
      try {
        await fetch(new URL(location, window.location.href), { method: 'DELETE' });
      } catch {
        // the session ends on its own when the peer goes away
      }
    }
  };
  try {
    const ms = new MediaStream();
    pc.addEventListener('track', (e) => {
      ms.addTrack(e.track);
      video.srcObject = ms;
      const p = video.play();
      if (p && p.catch) p.catch(() => {});
    });
    pc.addEventListener('connectionstatechange', () => {
      if (onState) onState(pc.connectionState);
    });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    // No trickle ICE: wait for every candidate (at most 3 s).
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, 3000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
    let resp;
    try {
      resp = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    } catch (e) {
      throw new Error('cannot reach the server: ' + e.message);
    }
    const body = await resp.text();
    if (resp.status !== 201 && resp.status !== 200) {
      throw new Error(`WHEP ${resp.status}: ${body.trim() || resp.statusText}`);
    }
    location = resp.headers.get('Location');
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
  } catch (e) {
    await cleanup();
    throw e;
  }
  return cleanup;
}
