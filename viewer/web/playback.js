// Skywatch console: playback of recordings in the single (full-screen)
// camera view. A timeline under the picture shows the spans the camera was
// recorded in and its incidents over the last 10 minutes or 1, 6 or 24
// hours; a click
// plays from there, a drag selects a span (played from its start, and what
// Export downloads); 1x, 2x or 4x; Live goes back to the WebRTC picture.
//
// The recording plays in a <video> of its own on
// /api/cameras/{id}/video.mp4?start=…, asked again from each clicked time.
// Its time 0 is the keyframe at or before the asked start; a HEAD request
// gives that instant (X-Recording-Start), so the page shows wall-clock
// times. Export fetches the span with download=1 and shows the SHA-256 that
// the server sends before the body (X-Content-SHA256): on plain HTTP, where
// command centres' closed networks often run, browsers have no
// crypto.subtle to hash it here.
'use strict';

(function () {
  const S = window.Skywatch;
  const h = S.h;

  const RANGES = [10, 60, 360, 1440]; // minutes
  const SPEEDS = [1, 2, 4];
  const REFRESH_MS = 10000;
  const DRAG_PX = 4; // a smaller move is a click
  const DEFAULT_EXPORT_MS = 5 * 60 * 1000;
  const PRE_INCIDENT_MS = 30 * 1000; // an incident's mark plays from this long before it

  S.addStrings({
    'zh-CN': {
      'pb.live': '实时',
      'pb.liveTitle': '回到实时画面',
      'pb.range': '时间范围',
      'pb.rangeN': '{n} 小时',
      'pb.rangeMin': '{n} 分钟',
      'pb.speed': '倍速',
      'pb.export': '导出',
      'pb.exportTitle': '下载所选时段（未选时为播放位置起 5 分钟）的 MP4',
      'pb.exporting': '正在导出…',
      'pb.exported': '已导出 {name}（{size}）',
      'pb.sha256': 'SHA-256：{sha}',
      'pb.noRecording': '此处没有录像',
      'pb.noSpans': '所选时间范围内没有录像',
      'pb.error': '录像不可用：{message}',
      'pb.hint': '单击时间轴从该处回放，拖动选择时段',
      'pb.playingAt': '回放 {time}',
      'pb.incident': '警情 {id}（{time}）',
      'pb.selection': '已选 {from} – {to}',
      'pb.recState.recording': '录像中',
      'pb.recState.waiting': '等待画面',
      'pb.recState.stopped': '录像已停止',
      'pb.recState.off': '未录像',
      'player.state.playback': '回放',
    },
    en: {
      'pb.live': 'Live',
      'pb.liveTitle': 'Back to the live picture',
      'pb.range': 'Range',
      'pb.rangeN': '{n} h',
      'pb.rangeMin': '{n} min',
      'pb.speed': 'Speed',
      'pb.export': 'Export',
      'pb.exportTitle': 'Download the selected span (or 5 minutes from the playhead) as MP4',
      'pb.exporting': 'Exporting…',
      'pb.exported': 'Exported {name} ({size})',
      'pb.sha256': 'SHA-256: {sha}',
      'pb.noRecording': 'Nothing recorded here',
      'pb.noSpans': 'Nothing recorded in this range',
      'pb.error': 'Recording unavailable: {message}',
      'pb.hint': 'Click the timeline to play from there, drag to select a span',
      'pb.playingAt': 'Playback {time}',
      'pb.incident': 'Incident {id} ({time})',
      'pb.selection': 'Selected {from} – {to}',
      'pb.recState.recording': 'Recording',
      'pb.recState.waiting': 'Waiting for a picture',
      'pb.recState.stopped': 'Recording stopped',
      'pb.recState.off': 'Not recorded',
      'player.state.playback': 'Playback',
    },
  });

  const iso = (ms) => new Date(ms).toISOString();

  function fmtSize(bytes) {
    if (bytes >= 1 << 20) return (bytes / (1 << 20)).toFixed(1) + ' MiB';
    if (bytes >= 1 << 10) return (bytes / (1 << 10)).toFixed(0) + ' KiB';
    return bytes + ' B';
  }

  // filenameOf reads the file name of a Content-Disposition.
  function filenameOf(cd, fallback) {
    const m = /filename="([^"]+)"/.exec(cd || '');
    return m ? m[1] : fallback;
  }

  // errorOf reads the server's {"error"} of a failed answer.
  async function errorOf(resp) {
    try {
      const body = await resp.json();
      if (body && body.error) return body.error;
    } catch (_) { /* not JSON */ }
    return S.t('error.http', { status: resp.status });
  }

  // downloadMP4 saves the MP4 that url answers as a file (the name its
  // Content-Disposition gives, else fallback) and resolves to its name,
  // size and the SHA-256 the server sent before it; it throws an Error
  // with the server's reason and the answer's status. The incident view
  // downloads its clips with it too.
  async function downloadMP4(url, fallback) {
    const resp = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
    if (!resp.ok) {
      const err = new Error(await errorOf(resp));
      err.status = resp.status;
      throw err;
    }
    const sha = resp.headers.get('X-Content-SHA256') || '';
    const name = filenameOf(resp.headers.get('Content-Disposition'), fallback);
    const blob = await resp.blob();
    const href = URL.createObjectURL(blob);
    const a = h('a', { href, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    return { name, size: blob.size, sha };
  }

  // Playback is the timeline and the recording player of one tile. host
  // is the tile: {el, video, cameraId, stopLive(), startLive()}.
  class Playback {
    constructor(host) {
      this.host = host;
      this.camera = null;
      this.open = false;
      this.mode = 'live';
      this.minutes = 60;
      this.speed = 1;
      this.spans = [];
      this.incidents = [];
      this.status = null;
      this.maxExportMs = 30 * 60 * 1000;
      this.recStart = 0; // wall-clock ms of the recording's time 0
      this.selection = null; // [from, to] in ms
      this.message = '';
      this.exportInfo = null; // {name, size, sha}
      this.exporting = false;
      this.timer = null;
      this.seq = 0;

      this.video = h('video', { class: 'tile-rec-video', muted: true, playsinline: true, disablepictureinpicture: true, 'data-testid': 'pb-video' });
      this.video.muted = true;
      this.video.addEventListener('loadedmetadata', () => { this.video.playbackRate = this.speed; });
      this.video.addEventListener('timeupdate', () => this.renderHead());
      this.video.addEventListener('ended', () => this.next());
      this.video.addEventListener('error', () => {
        if (this.mode === 'playback' && this.video.getAttribute('src')) {
          this.message = S.t('pb.error', { message: S.t('error.network') });
          this.renderMessage();
        }
      });

      this.liveBtn = h('button', { type: 'button', class: 'btn btn-small pb-live', 'data-testid': 'pb-live', onclick: () => this.live() });
      this.speedBtns = SPEEDS.map((n) => h('button', {
        type: 'button', class: 'btn btn-small', 'data-testid': 'pb-speed-' + n, 'data-speed': String(n),
        onclick: () => this.setSpeed(n),
      }, n + '×'));
      this.speedGroup = h('div', { class: 'btn-group', role: 'group' }, this.speedBtns);
      this.rangeBtns = RANGES.map((n) => h('button', {
        type: 'button', class: 'btn btn-small', 'data-testid': 'pb-range-' + n, 'data-minutes': String(n),
        onclick: () => { this.minutes = n; this.refresh(); },
      }));
      this.rangeGroup = h('div', { class: 'btn-group', role: 'group' }, this.rangeBtns);
      this.timeEl = h('span', { class: 'pb-time num', 'data-testid': 'pb-time' });
      this.stateEl = h('span', { class: 'pb-state' });
      this.exportBtn = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'pb-export', onclick: () => this.export() });
      this.msgEl = h('div', { class: 'pb-msg', 'data-testid': 'pb-msg', role: 'status' });
      this.shaEl = h('div', { class: 'pb-sha mono', 'data-testid': 'pb-sha256' });
      this.spansEl = h('div', { class: 'pb-spans' });
      this.marksEl = h('div', { class: 'pb-marks' });
      this.selEl = h('div', { class: 'pb-sel', hidden: true });
      this.headEl = h('div', { class: 'pb-head', hidden: true });
      this.axisEl = h('div', { class: 'pb-axis num' });
      this.track = h('div', { class: 'pb-track', 'data-testid': 'pb-track' }, this.spansEl, this.selEl, this.marksEl, this.headEl);
      this.el = h('div', { class: 'tile-pb', 'data-testid': 'playback', 'data-mode': 'live' },
        h('div', { class: 'pb-row' }, this.liveBtn, this.speedGroup, this.timeEl, this.stateEl, h('span', { class: 'spacer' }),
          this.rangeGroup, this.exportBtn),
        this.track, this.axisEl, this.msgEl, this.shaEl);
      // The bar is the tile's, not the tile's clicks (select, expand).
      for (const type of ['click', 'dblclick', 'mousedown', 'dragstart']) this.el.addEventListener(type, (ev) => ev.stopPropagation());
      this.el.draggable = false;
      this.wireTrack();
      host.el.append(this.video, this.el);
    }

    // show opens the timeline of camera (in the single view).
    show(camera) {
      if (this.open && this.camera === camera) return;
      this.stopPlayback();
      this.camera = camera;
      this.open = true;
      this.selection = null;
      this.exportInfo = null;
      this.message = '';
      this.host.el.classList.add('has-pb');
      this.refresh();
      this.render();
    }

    // hide closes the timeline and stops a playback (the tile then plays
    // live again on its own).
    hide() {
      if (!this.open) return;
      this.open = false;
      clearTimeout(this.timer);
      this.stopPlayback();
      this.host.el.classList.remove('has-pb');
    }

    stopPlayback() {
      this.seq++;
      this.mode = 'live';
      this.video.pause();
      this.video.removeAttribute('src');
      this.video.load();
      this.el.dataset.mode = 'live';
      this.host.el.classList.remove('is-playback');
    }

    // live goes back to the live picture.
    live() {
      if (this.mode === 'live') return;
      this.stopPlayback();
      this.message = '';
      this.host.startLive();
      this.render();
    }

    window() {
      const to = Date.now();
      return [to - this.minutes * 60 * 1000, to];
    }

    async refresh() {
      clearTimeout(this.timer);
      if (!this.open) return;
      const camera = this.camera;
      const [from, to] = this.window();
      const path = '/api/cameras/' + encodeURIComponent(camera) + '/recordings?from=' + encodeURIComponent(iso(from)) + '&to=' + encodeURIComponent(iso(to));
      try {
        const [rec, incs] = await Promise.all([
          S.api('GET', path),
          S.api('GET', '/api/incidents?since=' + encodeURIComponent(iso(from)) + '&limit=200').catch(() => null),
        ]);
        if (!this.open || camera !== this.camera) return;
        this.spans = (rec.spans || []).map((s) => [Date.parse(s.start), Date.parse(s.end)]);
        this.status = rec.status || null;
        if (rec.max_export_s) this.maxExportMs = rec.max_export_s * 1000;
        const list = incs && Array.isArray(incs.incidents) ? incs.incidents : [];
        this.incidents = list.filter((i) => (i.cameras || []).some((c) => c.id === camera))
          .map((i) => ({ id: i.id, at: Date.parse(i.first), cls: i.class }));
        if (this.message && !this.spans.length) this.message = S.t('pb.noSpans');
      } catch (err) {
        if (!this.open || camera !== this.camera) return;
        this.spans = [];
        this.message = S.t('pb.error', { message: err.message });
      }
      this.render();
      this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
    }

    // ----- the track: click to play, drag to select

    timeAt(clientX) {
      const r = this.track.getBoundingClientRect();
      const [from, to] = this.window();
      const x = Math.min(Math.max(clientX - r.left, 0), r.width);
      return from + (x / Math.max(r.width, 1)) * (to - from);
    }

    wireTrack() {
      let down = null;
      this.track.addEventListener('pointerdown', (ev) => {
        if (ev.button !== 0) return;
        ev.preventDefault();
        // A press on an incident's mark that does not drag plays from
        // before that incident.
        const mark = ev.target.closest('.pb-mark');
        down = { x: ev.clientX, t: this.timeAt(ev.clientX), mark: mark ? Number(mark.dataset.at) : 0 };
        this.track.setPointerCapture(ev.pointerId);
      });
      this.track.addEventListener('pointermove', (ev) => {
        if (!down || Math.abs(ev.clientX - down.x) < DRAG_PX) return;
        const t = this.timeAt(ev.clientX);
        this.selection = [Math.min(down.t, t), Math.max(down.t, t)];
        this.renderTrack();
      });
      this.track.addEventListener('pointerup', (ev) => {
        if (!down) return;
        const d = down;
        down = null;
        if (Math.abs(ev.clientX - d.x) < DRAG_PX) {
          this.selection = null;
          this.playAt(d.mark ? d.mark - PRE_INCIDENT_MS : d.t);
        } else {
          const t = this.timeAt(ev.clientX);
          this.selection = [Math.min(d.t, t), Math.max(d.t, t)];
          this.playAt(this.selection[0]);
        }
      });
      this.track.addEventListener('pointercancel', () => { down = null; });
    }

    // playAt plays the recording from wall-clock ms t (the keyframe at or
    // before it). A time in a gap plays from the next span.
    async playAt(t) {
      const next = this.spans.find(([a, b]) => b > t);
      if (next && next[0] > t) t = next[0];
      const seq = ++this.seq;
      const url = '/api/cameras/' + encodeURIComponent(this.camera) + '/video.mp4?start=' + encodeURIComponent(iso(t));
      this.message = '';
      let resp;
      try {
        resp = await fetch(url, { method: 'HEAD', credentials: 'same-origin', cache: 'no-store' });
      } catch (_) {
        resp = null;
      }
      if (seq !== this.seq || !this.open) return;
      if (!resp || !resp.ok) {
        this.message = resp && resp.status === 404 ? S.t('pb.noRecording')
          : S.t('pb.error', { message: resp ? S.t('error.http', { status: resp.status }) : S.t('error.network') });
        this.render();
        return;
      }
      this.recStart = Date.parse(resp.headers.get('X-Recording-Start')) || t;
      this.askedAt = t;
      if (this.mode !== 'playback') this.host.stopLive();
      this.mode = 'playback';
      this.el.dataset.mode = 'playback';
      this.el.dataset.asked = iso(t);
      this.el.dataset.recStart = iso(this.recStart);
      this.host.el.classList.add('is-playback');
      this.video.src = url;
      this.video.defaultPlaybackRate = this.speed;
      this.video.playbackRate = this.speed;
      this.video.play().catch((err) => { this.el.dataset.playError = err.name + ': ' + err.message; });
      this.render();
    }

    // next plays the span after the one that ended, if any.
    next() {
      if (this.mode !== 'playback') return;
      const now = this.playhead();
      const after = this.spans.find(([a]) => a > now + 500);
      if (after) this.playAt(after[0]);
    }

    playhead() {
      return this.recStart + this.video.currentTime * 1000;
    }

    setSpeed(n) {
      this.speed = n;
      this.video.defaultPlaybackRate = n;
      this.video.playbackRate = n;
      this.render();
    }

    // export downloads the selected span, or 5 minutes from the playhead
    // (at most recordings.max_export), and shows its SHA-256.
    async export() {
      if (this.exporting || !this.camera) return;
      let from, to;
      if (this.selection) [from, to] = this.selection;
      else {
        from = this.mode === 'playback' ? this.playhead() : this.window()[1] - DEFAULT_EXPORT_MS;
        to = from + DEFAULT_EXPORT_MS;
      }
      to = Math.min(to, from + this.maxExportMs, Date.now());
      const url = '/api/cameras/' + encodeURIComponent(this.camera) + '/video.mp4?start=' + encodeURIComponent(iso(from)) +
        '&end=' + encodeURIComponent(iso(to)) + '&download=1';
      this.exporting = true;
      this.exportInfo = null;
      this.message = S.t('pb.exporting');
      this.render();
      try {
        this.exportInfo = await downloadMP4(url, this.camera + '.mp4');
        this.message = '';
      } catch (err) {
        const message = err.status === 404 ? S.t('pb.noRecording') : err.message || String(err);
        this.message = S.t('pb.error', { message });
      } finally {
        this.exporting = false;
        this.render();
      }
    }

    // ----- rendering

    render() {
      if (!this.open) return;
      this.liveBtn.textContent = S.t('pb.live');
      this.liveBtn.title = S.t('pb.liveTitle');
      this.liveBtn.setAttribute('aria-pressed', String(this.mode === 'live'));
      this.speedGroup.setAttribute('aria-label', S.t('pb.speed'));
      this.speedBtns.forEach((b) => b.setAttribute('aria-pressed', String(Number(b.dataset.speed) === this.speed)));
      this.rangeGroup.setAttribute('aria-label', S.t('pb.range'));
      this.rangeBtns.forEach((b) => {
        const n = Number(b.dataset.minutes);
        b.textContent = n < 60 ? S.t('pb.rangeMin', { n }) : S.t('pb.rangeN', { n: n / 60 });
        b.setAttribute('aria-pressed', String(n === this.minutes));
      });
      this.exportBtn.textContent = S.t('pb.export');
      this.exportBtn.title = S.t('pb.exportTitle');
      this.exportBtn.hidden = !S.noAuth && !S.can('act');
      this.exportBtn.disabled = this.exporting;
      const st = this.status;
      this.stateEl.textContent = st ? S.tv('pb.recState.', st.state) + (st.reason ? ' · ' + st.reason : '') : '';
      this.stateEl.className = 'pb-state pb-state-' + (st ? st.state : 'off');
      this.renderMessage();
      this.renderTrack();
      this.renderHead();
    }

    renderMessage() {
      const hint = this.selection
        ? S.t('pb.selection', { from: S.fmtTime(this.selection[0]), to: S.fmtTime(this.selection[1]) })
        : S.t('pb.hint');
      this.msgEl.textContent = this.message || hint;
      this.msgEl.classList.toggle('pb-msg-err', !!this.message && !this.exporting);
      const e = this.exportInfo;
      this.shaEl.hidden = !e;
      this.shaEl.dataset.sha256 = e ? e.sha : '';
      this.shaEl.textContent = e ? S.t('pb.exported', { name: e.name, size: fmtSize(e.size) }) + '  ' + S.t('pb.sha256', { sha: e.sha }) : '';
    }

    renderTrack() {
      const [from, to] = this.window();
      const pct = (t) => ((Math.min(Math.max(t, from), to) - from) / (to - from)) * 100 + '%';
      const width = (a, b) => ((Math.min(b, to) - Math.max(a, from)) / (to - from)) * 100 + '%';
      this.spansEl.replaceChildren(...this.spans.filter(([a, b]) => b > from && a < to).map(([a, b]) =>
        h('div', { class: 'pb-span', 'data-testid': 'pb-span', 'data-start': iso(a), 'data-end': iso(b), style: { left: pct(a), width: width(a, b) } })));
      this.marksEl.replaceChildren(...this.incidents.filter((i) => i.at >= from && i.at <= to).map((i) =>
        h('button', {
          type: 'button', class: 'pb-mark', 'data-testid': 'pb-incident', 'data-incident': i.id, 'data-at': String(i.at), style: { left: pct(i.at) },
          title: S.t('pb.incident', { id: i.id, time: S.fmtDateTime(i.at) }), 'aria-label': S.t('pb.incident', { id: i.id, time: S.fmtDateTime(i.at) }),
          // The track takes the pointer (a drag may start on a mark); a
          // key press on the mark plays from before the incident.
          onclick: (ev) => {
            ev.stopPropagation();
            if (ev.detail !== 0) return;
            this.selection = null;
            this.playAt(i.at - PRE_INCIDENT_MS);
          },
        })));
      const sel = this.selection;
      this.selEl.hidden = !sel;
      if (sel) {
        this.selEl.style.left = pct(sel[0]);
        this.selEl.style.width = width(sel[0], sel[1]);
      }
      const ticks = [];
      const step = (to - from) / 6;
      for (let k = 0; k <= 6; k++) ticks.push(h('span', { style: { left: (k / 6) * 100 + '%' } }, S.fmtTime(from + k * step)));
      this.axisEl.replaceChildren(...ticks);
    }

    renderHead() {
      if (!this.open) return;
      const playing = this.mode === 'playback';
      this.headEl.hidden = !playing;
      this.host.el.classList.toggle('is-playback', playing);
      if (!playing) {
        this.timeEl.textContent = '';
        return;
      }
      const t = this.playhead();
      const [from, to] = this.window();
      this.headEl.style.left = ((Math.min(Math.max(t, from), to) - from) / (to - from)) * 100 + '%';
      this.timeEl.textContent = S.t('pb.playingAt', { time: S.fmtDateTime(t) });
      this.el.dataset.playhead = iso(t);
    }
  }

  S.Playback = Playback;
  S.downloadMP4 = downloadMP4;
})();
