// stream.js: one stream's page (#/streams/<name>): the hls.js preview with
// its level picker, WHEP playback, the thumbnail, the publish URLs and the
// ladder, recording, captions and kick controls. The state comes from
// GET /api/v1/streams/<name> every 2 s.

import { ApiError, api, esc, errorText, fmtAgo, fmtBitrate, fmtBytes, fmtDuration, hostPort, poll, serverInfo } from './api.js';
import { playHLS, playWHEP } from './player.js';
import { captionsBadge, codecsOf, fpsOf, ladderBadge, recordingBadge, resolutionOf, stateBadge } from './streams.js';

function pathOf(name) {
  return String(name).split('/').map(encodeURIComponent).join('/');
}

export async function render(root, params) {
  const name = params.name.replace(/\/+$/, '');
  const p = pathOf(name);
  const apiPath = '/api/v1/streams/' + p;
  const parts = name.split('/');
  const app = parts[0];
  const key0 = parts.slice(1).join('/') || parts[0];

  root.innerHTML = `
  <section class="page stream-page" data-stream="${esc(name)}">
    <div class="page-head">
      <div>
        <a class="muted small" href="#/streams">← Streams</a>
        <h1 class="break">${esc(name)} <span data-testid="stream-state"></span></h1>
      </div>
      <div class="row">
        <button class="btn btn-danger" type="button" data-testid="kick" title="Disconnect the publisher">Kick publisher</button>
      </div>
    </div>
    <div class="error" data-testid="error" role="alert" hidden></div>
    <div class="notice" data-testid="action-result" role="status" hidden></div>
    <div class="error" data-testid="action-error" role="alert" hidden></div>
    <div class="notice" data-testid="remote-note" hidden></div>

    <div class="grid grid-2">
      <div class="card">
        <div class="card-head">
          <h2>Preview</h2>
          <label class="inline">Quality
            <select data-testid="levels" aria-label="Quality"><option value="-1">Auto</option></select>
          </label>
        </div>
        <div class="video-wrap"><video data-testid="preview" class="video" muted autoplay playsinline controls></video></div>
        <p class="muted small">LL-HLS: <a data-testid="hls-url" href="/${esc(p)}/index.m3u8" target="_blank" rel="noopener">/${esc(name)}/index.m3u8</a>
          · DASH: <a href="/${esc(p)}/manifest.mpd" target="_blank" rel="noopener">/${esc(name)}/manifest.mpd</a></p>
        <div data-testid="whep" class="whep" hidden>
          <div class="card-head">
            <h3>WebRTC (WHEP)</h3>
            <button class="btn" type="button" data-testid="whep-play">Play over WebRTC</button>
          </div>
          <span class="muted small" data-testid="whep-state"></span>
          <div class="error" data-testid="whep-error" role="alert" hidden></div>
          <div class="video-wrap" data-testid="whep-wrap" hidden><video data-testid="whep-video" class="video" muted autoplay playsinline controls></video></div>
        </div>
      </div>

      <div class="stack">
        <div class="card">
          <div class="card-head"><h2>Thumbnail</h2><span class="muted small" data-testid="thumbnail-time"></span></div>
          <div class="thumb-wrap"><img data-testid="thumbnail" class="thumb" alt="thumbnail of ${esc(name)}"></div>
          <p class="muted small" data-testid="thumbnail-missing" hidden>No thumbnail yet.</p>
        </div>
        <div class="card">
          <h2>Details</h2>
          <dl class="dl" data-testid="details"></dl>
        </div>
      </div>
    </div>

    <div class="card">
      <h2>Controls</h2>
      <div class="controls">
        <div class="control" data-testid="ladder-control">
          <h3>Ladder <span data-testid="ladder-state"></span></h3>
          <label class="field">Template <select data-testid="ladder-template" aria-label="Ladder template"></select></label>
          <div class="row">
            <button class="btn btn-primary" type="button" data-testid="ladder-start">Start ladder</button>
            <button class="btn" type="button" data-testid="ladder-stop">Stop ladder</button>
          </div>
          <div class="muted small" data-testid="ladder-info"></div>
        </div>
        <div class="control" data-testid="record-control">
          <h3>Recording <span data-testid="record-state"></span></h3>
          <label class="field">Renditions <select data-testid="record-renditions" aria-label="Renditions to record">
              <option value="source">source</option><option value="all">all (source and every rung)</option></select></label>
          <div class="row">
            <button class="btn btn-primary" type="button" data-testid="record-start">Start recording</button>
            <button class="btn" type="button" data-testid="record-stop">Stop recording</button>
          </div>
          <div class="muted small" data-testid="record-info"></div>
        </div>
        <div class="control" data-testid="captions-control">
          <h3>Live captions <span data-testid="captions-state"></span></h3>
          <label class="field">Spoken language (ISO 639-1) <input data-testid="captions-language" value="en" maxlength="8" aria-label="Spoken language"></label>
          <div class="row">
            <button class="btn btn-primary" type="button" data-testid="captions-start">Start captions</button>
            <button class="btn" type="button" data-testid="captions-stop">Stop captions</button>
          </div>
          <div class="muted small" data-testid="captions-info"></div>
        </div>
      </div>
    </div>

    <div class="card" data-testid="publish-urls">
      <h2>Publish</h2>
      <div class="error" data-testid="server-error" role="alert" hidden></div>
      <label class="field">Stream key (when the application requires one)
        <input data-testid="publish-key" type="text" autocomplete="off" spellcheck="false" placeholder="KEY">
      </label>
      <div data-testid="publish-list" class="copy-list"></div>
    </div>
  </section>`;

  const $ = (sel) => root.querySelector(`[data-testid="${sel}"]`);
  const errEl = $('error');
  const resultEl = $('action-result');
  const actionErr = $('action-error');
  const video = $('preview');
  const levels = $('levels');
  const cleanups = [];
  let stopped = false;
  let last = null; // the stream's last state
  let busy = false;

  // --- preview ---------------------------------------------------------
  let stopPreview = null;
  let rungKey = null;
  let reloads = 0;
  let lastReload = 0;
  const startPreview = () => {
    if (stopPreview) stopPreview();
    stopPreview = playHLS(video, `/${p}/index.m3u8`, { levels, live: true });
  };
  startPreview();
  cleanups.push(() => stopPreview && stopPreview());

  // --- thumbnail -------------------------------------------------------
  const img = $('thumbnail');
  const thumbMissing = $('thumbnail-missing');
  img.addEventListener('load', () => {
    img.hidden = false;
    thumbMissing.hidden = true;
    $('thumbnail-time').textContent = 'at ' + new Date().toLocaleTimeString();
  });
  img.addEventListener('error', () => {
    img.hidden = true;
    thumbMissing.hidden = false;
  });
  const refreshThumb = () => {
    img.src = `/${p}/thumbnail.jpg?t=${Date.now()}`;
  };
  refreshThumb();
  const thumbTimer = setInterval(refreshThumb, 5000);
  cleanups.push(() => clearInterval(thumbTimer));

  // --- results ---------------------------------------------------------
  let resultTimer = 0;
  const showResult = (msg) => {
    actionErr.hidden = true;
    resultEl.textContent = msg;
    resultEl.hidden = false;
    clearTimeout(resultTimer);
    resultTimer = setTimeout(() => (resultEl.hidden = true), 8000);
  };
  const showActionError = (what, e) => {
    resultEl.hidden = true;
    actionErr.textContent = `${what} failed: ${errorText(e)}`;
    actionErr.hidden = false;
  };
  cleanups.push(() => clearTimeout(resultTimer));

  // --- state -----------------------------------------------------------
  const setText = (sel, html) => {
    const el = $(sel);
    if (el.innerHTML !== html) el.innerHTML = html;
  };

  const details = (s) => {
    const rows = [];
    const add = (k, v) => rows.push(`<dt>${esc(k)}</dt><dd>${v}</dd>`);
    add('Protocol', esc(s.protocol || '–'));
    if (s.remote_addr) add('Publisher', esc(s.remote_addr));
    if (s.node) add('Node', esc(s.node) + (s.node_address ? ` <span class="muted">(${esc(s.node_address)})</span>` : ''));
    if (!s.remote) {
      add('Codecs', esc(codecsOf(s)));
      add('Resolution', esc(resolutionOf(s)));
      add('Frame rate', esc(fpsOf(s)));
      add('Bitrate', esc(fmtBitrate(s.bitrate)));
      for (const t of s.tracks || []) {
        const d =
          t.kind === 'video'
            ? `${t.codec} ${t.width || '?'}×${t.height || '?'} ${t.fps ? t.fps + ' fps' : ''} · ${fmtBitrate(t.bitrate)}`
            : `${t.codec} ${t.sample_rate ? t.sample_rate + ' Hz' : ''} ${t.channels ? t.channels + ' ch' : ''} · ${fmtBitrate(t.bitrate)}`;
        add(`Track ${t.index} (${t.kind})`, esc(d));
      }
      add('Bytes in / out', `${esc(fmtBytes(s.bytes_in))} / ${esc(fmtBytes(s.bytes_out))}`);
      const readers = (s.readers || []).map((r) => `${r.kind}${r.remote_addr ? ' ' + r.remote_addr : ''}`);
      add('Readers', `${esc(s.reader_count ?? 0)}${readers.length ? ` <span class="muted">(${esc(readers.join(', '))})</span>` : ''}`);
    }
    add('Uptime', esc(fmtDuration(s.uptime_seconds)));
    if (s.session !== undefined) add('Session', `${esc(s.session)}${s.session_started_at ? ` <span class="muted">since ${esc(fmtAgo(s.session_started_at))}</span>` : ''}`);
    if (s.pull) add('Pull', `${esc(s.pull.state)} <span class="muted">${esc(s.pull.url || '')}</span>${s.pull.last_error ? `<div class="error-text">${esc(s.pull.last_error)}</div>` : ''}`);
    return rows.join('');
  };

  const applyState = (s) => {
    last = s;
    const remote = !!(s && s.remote);
    const live = !!s && !remote;
    setText('stream-state', s ? stateBadge(s) : '<span class="badge badge-off">not found</span>');
    setText('details', s ? details(s) : '<dt>State</dt><dd>not found</dd>');
    setText('ladder-state', s && !remote ? ladderBadge(s) : '');
    setText('record-state', s && !remote ? recordingBadge(s) : '');
    setText('captions-state', s && !remote ? captionsBadge(s) : '');

    const l = s && s.ladder;
    setText(
      'ladder-info',
      l
        ? esc(
            `${l.template} · ${l.state}` +
              (l.rungs && l.rungs.length ? ` · rungs: ${l.rungs.join(', ')}` : '') +
              (l.progress && l.progress.fps ? ` · ${l.progress.fps.toFixed(0)} fps` : '') +
              (l.progress && l.progress.speed ? `, speed ${l.progress.speed.toFixed(2)}x` : '') +
              (l.restarts ? ` · ${l.restarts} restarts` : '') +
              (l.last_error ? ` · last error: ${l.last_error}` : ''),
          )
        : 'No ladder runs: the stream plays as published.',
    );
    const r = s && s.recording && s.recording.recording ? s.recording : null;
    setText(
      'record-info',
      r
        ? esc(
            `${r.format} · ${(r.renditions || []).join(', ')} · ${r.trigger} · since ${fmtAgo(r.since)}` +
              ((r.current || []).length ? ` · ${(r.current || []).length} archive(s) writing` : '') +
              (r.error ? ` · error: ${r.error}` : ''),
          ) + ' · <a href="#/recordings?stream=' + esc(encodeURIComponent(name)) + '">recordings</a>'
        : 'Not recording.',
    );
    const c = s && s.captions;
    setText(
      'captions-info',
      c
        ? esc(
            `${c.engine || ''} ${c.language || ''} · ${c.state} · ${c.cues} cues · lag ${(c.lag || 0).toFixed(1)} s` + (c.error ? ` · error: ${c.error}` : ''),
          )
        : 'Not captioned.',
    );

    if (!busy) {
      $('ladder-start').disabled = !live;
      $('ladder-stop').disabled = !live || !l;
      $('record-start').disabled = !live;
      $('record-stop').disabled = !live || !r;
      $('captions-start').disabled = !live;
      $('captions-stop').disabled = !live || !c;
      $('kick').disabled = !live || s.state !== 'live';
    }

    const note = $('remote-note');
    if (remote) {
      const href = s.node_address ? `${s.node_address.replace(/\/+$/, '')}/#/streams/${p}` : '';
      note.innerHTML = `This stream lives on node <b>${esc(s.node || '?')}</b>: only its registry facts are known here; the preview is proxied.` + (href ? ` Open <a href="${esc(href)}">that node's console</a> to control it.` : '');
      note.hidden = false;
    } else {
      note.hidden = true;
    }

    // A new set of renditions: reload the preview to see the new levels
    // (again a few times while the multivariant playlist lags behind).
    const key = l && l.state === 'running' ? (l.rungs || []).join(',') : '';
    const now = Date.now();
    if (rungKey !== null && key !== rungKey) {
      startPreview();
      reloads = 0;
      lastReload = now;
    } else if (key && reloads < 6 && now - lastReload > 5000) {
      const hls = stopPreview && stopPreview.hls;
      if (hls && hls.levels && hls.levels.length > 0 && hls.levels.length < l.rungs.length) {
        startPreview();
        reloads++;
        lastReload = now;
      }
    }
    rungKey = key;
  };

  const load = async () => {
    try {
      const s = await api('GET', apiPath);
      if (stopped) return;
      errEl.hidden = true;
      applyState(s);
    } catch (e) {
      if (stopped) return;
      if (e instanceof ApiError && e.status === 404) {
        errEl.textContent = `The stream ${name} does not exist (now): ${e.message}. This page updates when it is published.`;
        applyState(null);
      } else {
        errEl.textContent = 'Cannot read the stream: ' + errorText(e);
      }
      errEl.hidden = false;
    }
  };
  const stopPoll = poll(load, 2000);
  cleanups.push(stopPoll);

  // --- actions ---------------------------------------------------------
  const action = async (what, btn, fn) => {
    busy = true;
    btn.disabled = true;
    btn.classList.add('busy');
    try {
      const msg = await fn();
      if (!stopped) showResult(msg);
    } catch (e) {
      if (!stopped) showActionError(what, e);
    } finally {
      busy = false;
      btn.classList.remove('busy');
      btn.disabled = false;
      if (!stopped) await load();
    }
  };

  // ladder templates
  const tplSel = $('ladder-template');
  api('GET', '/api/v1/ladders')
    .then((list) => {
      if (stopped) return;
      list = Array.isArray(list) ? list : [];
      tplSel.innerHTML = list
        .map((t) => {
          const rungs = (t.rungs || []).map((r) => r.name).join(', ');
          return `<option value="${esc(t.name)}" title="${esc(rungs)}">${esc(t.name)}${rungs ? ` (${esc(rungs)})` : ''}</option>`;
        })
        .join('');
      if (!list.length) tplSel.innerHTML = '<option value="">no templates</option>';
      if (last && last.ladder) tplSel.value = last.ladder.template;
    })
    .catch((e) => {
      if (stopped) return;
      tplSel.innerHTML = '<option value="">(unavailable)</option>';
      showActionError('Listing the ladder templates', e);
    });

  $('ladder-start').addEventListener('click', (e) =>
    action('Starting the ladder', e.currentTarget, async () => {
      const template = tplSel.value;
      if (!template) throw new Error('choose a ladder template');
      const l = await api('PUT', apiPath + '/ladder', { template });
      return `Ladder ${l && l.template ? l.template : template}: ${l && l.state ? l.state : 'starting'}.`;
    }),
  );
  $('ladder-stop').addEventListener('click', (e) =>
    action('Stopping the ladder', e.currentTarget, async () => {
      await api('DELETE', apiPath + '/ladder');
      return 'Ladder stopped.';
    }),
  );
  $('record-start').addEventListener('click', (e) =>
    action('Starting the recording', e.currentTarget, async () => {
      const r = await api('POST', apiPath + '/recording', { renditions: [$('record-renditions').value] });
      return `Recording ${r && r.renditions ? r.renditions.join(', ') : ''} (${r && r.format ? r.format : ''}) since ${r && r.since ? new Date(r.since).toLocaleTimeString() : 'now'}.`;
    }),
  );
  $('record-stop').addEventListener('click', (e) =>
    action('Stopping the recording', e.currentTarget, async () => {
      await api('DELETE', apiPath + '/recording');
      return 'Recording stopped; its archives are closed.';
    }),
  );
  $('captions-start').addEventListener('click', (e) =>
    action('Starting the captions', e.currentTarget, async () => {
      const language = $('captions-language').value.trim();
      const c = await api('PUT', apiPath + '/captions', language ? { language } : undefined);
      return `Captions ${c && c.state ? c.state : 'started'}${c && c.engine ? ` (${c.engine}, ${c.language || ''})` : ''}.`;
    }),
  );
  $('captions-stop').addEventListener('click', (e) =>
    action('Stopping the captions', e.currentTarget, async () => {
      await api('DELETE', apiPath + '/captions');
      return 'Captions stopped.';
    }),
  );
  $('kick').addEventListener('click', (e) =>
    action('Kicking the publisher', e.currentTarget, async () => {
      await api('DELETE', apiPath);
      return 'Publisher disconnected; the stream waits out its grace period for a reconnect.';
    }),
  );

  // --- WHEP --------------------------------------------------------------
  const whepBtn = $('whep-play');
  const whepVideo = $('whep-video');
  const whepErr = $('whep-error');
  let stopWhep = null;
  const endWhep = () => {
    if (stopWhep) stopWhep();
    stopWhep = null;
    whepBtn.textContent = 'Play over WebRTC';
    $('whep-wrap').hidden = true;
    $('whep-state').textContent = '';
  };
  whepBtn.addEventListener('click', async () => {
    if (stopWhep) {
      endWhep();
      return;
    }
    whepErr.hidden = true;
    whepBtn.disabled = true;
    $('whep-wrap').hidden = false;
    $('whep-state').textContent = 'connecting…';
    try {
      const c = await playWHEP(whepVideo, `/whep/${p}`, {
        onState: (st) => {
          if (!stopped) $('whep-state').textContent = st;
        },
      });
      if (stopped) {
        c();
        return;
      }
      stopWhep = c;
      whepBtn.textContent = 'Stop WebRTC';
    } catch (err) {
      $('whep-wrap').hidden = true;
      $('whep-state').textContent = '';
      whepErr.textContent = 'WebRTC playback failed: ' + (err.message || err);
      whepErr.hidden = false;
    } finally {
      whepBtn.disabled = false;
    }
  });
  cleanups.push(() => stopWhep && stopWhep());

  // --- publish URLs -----------------------------------------------------
  const keyInput = $('publish-key');
  const list = $('publish-list');
  let info = null;
  const renderUrls = () => {
    const key = keyInput.value.trim();
    const q = key ? `?key=${encodeURIComponent(key)}` : '';
    const items = [];
    const rtmp = hostPort(info ? info.rtmp : ':1935');
    if (rtmp) {
      const base = `rtmp://${rtmp.hostport}/${app}`;
      items.push({ id: 'rtmp-server', label: 'OBS / RTMP server', value: base });
      items.push({ id: 'rtmp-key', label: 'OBS stream key', value: key0 + q });
      items.push({ id: 'ffmpeg', label: 'ffmpeg (RTMP)', value: `ffmpeg -re -i input.mp4 -c:v libx264 -c:a aac -f flv "${base}/${key0}${q}"` });
    } else {
      items.push({ id: 'rtmp-off', label: 'RTMP', off: 'RTMP ingest is off on this server.' });
    }
    const srt = hostPort(info && info.srt);
    if (srt) {
      items.push({ id: 'srt', label: 'SRT', value: `srt://${srt.hostport}?streamid=publish:${name}${key ? ':' + key : ''}` });
    } else if (info) {
      items.push({ id: 'srt-off', label: 'SRT', off: 'SRT ingest is off (srt.enabled).' });
    }
    if (!info || info.webrtc) {
      items.push({ id: 'whip', label: 'WHIP (WebRTC)', value: `${location.protocol}//${location.host}/whip/${name}`, note: key ? `Bearer token: ${key}` : 'Bearer token: the stream key' });
    } else {
      items.push({ id: 'whip-off', label: 'WHIP', off: 'WebRTC is off (webrtc.enabled).' });
    }
    const rtsp = hostPort(info && info.rtsp);
    if (rtsp) items.push({ id: 'rtsp', label: 'RTSP', value: `rtsp://${rtsp.hostport}/${name}${q}` });
    list.innerHTML = items
      .map((it) =>
        it.off
          ? `<div class="copy-item"><span class="copy-label">${esc(it.label)}</span><span class="muted">${esc(it.off)}</span></div>`
          : `<div class="copy-item" data-kind="${esc(it.id)}">
               <label class="copy-label" for="pub-${esc(it.id)}">${esc(it.label)}</label>
               <div class="copy-row">
                 <input id="pub-${esc(it.id)}" class="copy-field mono" data-testid="url-${esc(it.id)}" readonly value="${esc(it.value)}">
                 <button class="btn btn-small" type="button" data-testid="copy-${esc(it.id)}" data-copy="pub-${esc(it.id)}">Copy</button>
               </div>
               ${it.note ? `<div class="muted small">${esc(it.note)}</div>` : ''}
             </div>`,
      )
      .join('');
  };
  keyInput.addEventListener('input', renderUrls);
  list.addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-copy]');
    if (!btn) return;
    const input = root.querySelector('#' + btn.dataset.copy);
    const ok = await copyText(input);
    btn.textContent = ok ? 'Copied' : 'Select and copy';
    setTimeout(() => (btn.textContent = 'Copy'), 1500);
  });
  list.addEventListener('focusin', (e) => {
    if (e.target.classList.contains('copy-field')) e.target.select();
  });
  renderUrls();
  serverInfo()
    .then((i) => {
      if (stopped) return;
      info = i || {};
      $('whep').hidden = !info.webrtc;
      renderUrls();
    })
    .catch((e) => {
      if (stopped) return;
      // Without the server's facts: guess the defaults, say so, and still offer WHEP.
      const se = $('server-error');
      se.textContent = `Cannot read the server's listeners (GET /api/v1/server): ${errorText(e)}. The URLs below assume the defaults.`;
      se.hidden = false;
      $('whep').hidden = false;
    });

  return () => {
    stopped = true;
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch (err) {
        console.error(err);
      }
    }
  };
}

async function copyText(input) {
  const text = input.value;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall back to selecting the text
  }
  input.focus();
  input.select();
  try {
    return document.execCommand('copy');
  } catch {
    return false;
  }
}
