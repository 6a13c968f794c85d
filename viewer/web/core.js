// Skywatch console: the core every view builds on (window.Skywatch).
//
//   Skywatch.t / addStrings / lang / setLang      translations (i18n.js)
//   Skywatch.fmtTime / fmtDateTime / fmtAge / fmtDuration   times in the user's zone
//   Skywatch.api(method, path, body)              JSON API with CSRF; throws ApiError
//   Skywatch.me, Skywatch.can(perm)               the logged-in user
//   Skywatch.on(type, fn) → unsubscribe           'alarm', 'incident', 'resync'
//                                                 (and 'connection' {live: bool};
//                                                 'session' me after each login,
//                                                 'logout' when it ends)
//   Skywatch.prefs.get(key) / set(key, value)     per-user preferences on the server
//   Skywatch.Player(video, cameraId, {stream, onState})   WHEP player
//   Skywatch.registerView / navigate / currentView         views and hash routes
//   Skywatch.areas, areaById, areaName, areaPath  the jurisdiction tree
//   Skywatch.h(tag, props, ...children)           builds DOM without innerHTML
//   Skywatch.icon(name)                           a small line icon (svg)
//   Skywatch.toast(message, kind)                 a short notice in the corner ({key, vars} or text)
//   Skywatch.dialog({title, body, buttons}) → Promise of the chosen value
//   Skywatch.setBadge(view, text, kind)           a count on a tab
//
// Routes: #/<view>[/<id>][?k=v&...] → view <view> mounted with params
// {id, k, ...}. A view may have update(params): then navigating within the
// view calls it instead of mounting the view again.
'use strict';

(function () {
  const S = window.Skywatch;

  // ---------------------------------------------------------------- DOM

  // h builds an element: props are attributes, except class, text, style
  // (set through the CSSOM), on* (a listener when the value is a function)
  // and the DOM properties below; children are nodes, strings or arrays of
  // them (null skipped).
  const PROPS = new Set(['hidden', 'disabled', 'checked', 'value', 'selected', 'tabIndex', 'title', 'type', 'name', 'placeholder', 'htmlFor', 'autocomplete', 'required', 'readOnly', 'multiple', 'draggable']);
  S.h = function (tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false && !PROPS.has(k)) continue;
      if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'style') setStyle(el, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (PROPS.has(k)) el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    appendChildren(el, children);
    return el;
  };
  // setStyle sets styles through the CSSOM: the CSP refuses style
  // attributes. v is {prop: value} or "prop: value; ...".
  function setStyle(el, v) {
    const pairs = typeof v === 'string'
      ? v.split(';').map((d) => d.split(':')).filter((p) => p.length === 2).map((p) => [p[0].trim(), p[1].trim()])
      : Object.entries(v);
    for (const [prop, val] of pairs) el.style.setProperty(prop, String(val));
  }
  function appendChildren(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) appendChildren(el, c);
      else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  const h = S.h;

  // icon builds a small line icon (class "icon", 16 px, currentColor).
  const ICONS = {
    close: 'M6 6l12 12M18 6L6 18',
    expand: 'M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5',
    collapse: 'M9 4v5H4M15 4v5h5M9 20v-5H4M15 20v-5h5',
    search: 'M18 11a7 7 0 1 1-14 0a7 7 0 1 1 14 0M20 20l-4-4',
    chevron: 'M9 6l6 6-6 6',
    camera: 'M3 7h12v10H3zM15 10l6-3v10l-6-3',
    trash: 'M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13',
    refresh: 'M20 12a8 8 0 1 1-2.3-5.6M20 4v5h-5',
    alert: 'M12 3l10 18H2zM12 10v5M12 18v.5',
    pin: 'M12 21s-7-6.2-7-11a7 7 0 0 1 14 0c0 4.8-7 11-7 11zM14.5 10a2.5 2.5 0 1 1-5 0a2.5 2.5 0 1 1 5 0',
    user: 'M16 8a4 4 0 1 1-8 0a4 4 0 1 1 8 0M4 21c1-4 4-6 8-6s7 2 8 6',
    download: 'M12 4v11M7 10l5 5 5-5M4 20h16',
    grid: 'M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z',
  };
  S.icon = function (name, cls) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'icon' + (cls ? ' ' + cls : ''));
    svg.setAttribute('aria-hidden', 'true');
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', ICONS[name] || '');
    svg.append(path);
    return svg;
  };

  // ---------------------------------------------------------------- time

  const formatters = new Map();
  function zone() {
    return (S.me && S.me.time_zone) || undefined;
  }
  function formatter() {
    const tz = zone() || '';
    let f = formatters.get(tz);
    if (!f) {
      const opts = { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
      try {
        f = new Intl.DateTimeFormat('en-GB', Object.assign({ timeZone: tz || undefined }, opts));
      } catch (_) {
        f = new Intl.DateTimeFormat('en-GB', opts); // an unknown zone: the browser's
      }
      formatters.set(tz, f);
    }
    return f;
  }
  // toDate reads an ISO string, a Date or milliseconds; null for nothing,
  // garbage, or Go's zero time.
  function toDate(v) {
    if (v === undefined || v === null || v === '') return null;
    const d = v instanceof Date ? v : new Date(v);
    if (isNaN(d.getTime()) || d.getUTCFullYear() < 1971) return null;
    return d;
  }
  function parts(v) {
    const d = toDate(v);
    if (!d) return null;
    const p = {};
    for (const x of formatter().formatToParts(d)) p[x.type] = x.value;
    if (p.hour === '24') p.hour = '00';
    return p;
  }
  S.toDate = toDate;
  // fmtTime: "16:05:09" in the user's time zone; "" for no time.
  S.fmtTime = function (v) {
    const p = parts(v);
    return p ? p.hour + ':' + p.minute + ':' + p.second : '';
  };
  // fmtDateTime: "2026-11-27 16:05:09" in the user's time zone.
  S.fmtDateTime = function (v) {
    const p = parts(v);
    return p ? p.year + '-' + p.month + '-' + p.day + ' ' + p.hour + ':' + p.minute + ':' + p.second : '';
  };
  // fmtDate: "2026-11-27" in the user's time zone.
  S.fmtDate = function (v) {
    const p = parts(v);
    return p ? p.year + '-' + p.month + '-' + p.day : '';
  };
  // fmtAge: "3 min ago" (or "in 3 min" for a future time), translated.
  S.fmtAge = function (v, now) {
    const d = toDate(v);
    if (!d) return '';
    const diff = Math.round(((now || Date.now()) - d.getTime()) / 1000);
    const s = Math.abs(diff);
    const past = diff >= 0;
    if (past && s < 5) return S.t('time.justNow');
    let key, n;
    if (s < 60) [key, n] = ['Seconds', s];
    else if (s < 3600) [key, n] = ['Minutes', Math.floor(s / 60)];
    else if (s < 86400) [key, n] = ['Hours', Math.floor(s / 3600)];
    else [key, n] = ['Days', Math.floor(s / 86400)];
    return past ? S.t('time.' + key.toLowerCase() + 'Ago', { n }) : S.t('time.in' + key, { n });
  };
  // fmtDuration: seconds as "2 min 5 s", "1 h 4 min", translated.
  S.fmtDuration = function (seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    if (s < 60) return S.t('time.dur.s', { s });
    if (s < 3600) return S.t('time.dur.ms', { m: Math.floor(s / 60), s: s % 60 });
    if (s < 86400) return S.t('time.dur.hm', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
    return S.t('time.dur.dh', { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
  };

  // ---------------------------------------------------------------- API

  // ApiError is a failed API call: status 0 for a network error, else the
  // HTTP status; message is the server's "error" text; body the parsed
  // reply (for example retry_after_s of a refused login).
  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.body = body || null;
    }
  }
  S.ApiError = ApiError;

  function csrfHeaders(headers) {
    if (S.me && S.me.csrf) headers['X-CSRF-Token'] = S.me.csrf;
    return headers;
  }

  // api calls the JSON API. It resolves to the parsed reply (null for 204,
  // the text for a reply that is not JSON) and rejects with an ApiError; a
  // 401 also ends the session and shows the login form.
  S.api = async function (method, path, body) {
    method = (method || 'GET').toUpperCase();
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined && body !== null) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && method !== 'HEAD') csrfHeaders(headers);
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (_) {
      throw new ApiError(0, S.t('error.network'), null);
    }
    if (resp.status === 204) return null;
    const text = await resp.text().catch(() => '');
    let data = text;
    if ((resp.headers.get('Content-Type') || '').includes('json')) {
      try {
        data = text ? JSON.parse(text) : null;
      } catch (_) {
        data = null;
      }
    }
    if (!resp.ok) {
      const msg = data && typeof data === 'object' && data.error ? data.error : S.t('error.http', { status: resp.status });
      const err = new ApiError(resp.status, msg, typeof data === 'object' ? data : null);
      if (resp.status === 401 && path !== '/api/login') sessionLost('login.expired');
      throw err;
    }
    return data;
  };

  // ---------------------------------------------------------------- user

  S.me = null;
  // noAuth is true while the server has no operator accounts (GET /api/me
  // answers an anonymous user without a CSRF token, or is 404):
  // then there is no logout, and preferences stay in this browser.
  S.noAuth = false;
  S.can = function (perm) {
    return !!(S.me && S.me.permissions && S.me.permissions[perm]);
  };

  // ---------------------------------------------------------------- events

  const listeners = new Map();
  S.on = function (type, fn) {
    if (!listeners.has(type)) listeners.set(type, new Set());
    listeners.get(type).add(fn);
    return () => listeners.get(type).delete(fn);
  };
  S.off = function (type, fn) {
    if (listeners.has(type)) listeners.get(type).delete(fn);
  };
  // emit calls the listeners; one that throws does not stop the others
  // (its error is rethrown on its own, so that it is still seen).
  function emit(type, data) {
    for (const fn of [...(listeners.get(type) || [])]) {
      try {
        fn(data);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
  S.emit = emit;

  // The one EventSource on /api/stream. The browser reconnects by itself
  // after a network error; when the server refuses (an HTTP error) the
  // EventSource closes and we reconnect with backoff, after checking the
  // session. Every reconnect and every gap fires 'resync'.
  const stream = { es: null, timer: null, backoff: 1000, opened: false, live: false };
  function setLive(live) {
    if (stream.live === live) return;
    stream.live = live;
    emit('connection', { live });
    renderConn();
  }
  function openStream() {
    closeStream();
    const es = new EventSource('/api/stream');
    stream.es = es;
    es.onopen = () => {
      if (stream.es !== es) return;
      stream.backoff = 1000;
      setLive(true);
      if (stream.opened) emit('resync', { reason: 'reconnect' });
      stream.opened = true;
    };
    const relay = (type) => (ev) => {
      if (stream.es !== es) return;
      let data = null;
      try {
        data = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      emit(type, data);
    };
    es.addEventListener('alarm', relay('alarm'));
    es.addEventListener('incident', relay('incident'));
    es.addEventListener('gap', () => emit('resync', { reason: 'gap' }));
    es.addEventListener('incident_gap', () => emit('resync', { reason: 'incident_gap' }));
    es.onerror = () => {
      if (stream.es !== es) return;
      setLive(false);
      if (es.readyState !== EventSource.CLOSED) return; // the browser retries
      es.close();
      stream.es = null;
      const wait = stream.backoff;
      stream.backoff = Math.min(stream.backoff * 2, 30000);
      stream.timer = setTimeout(() => {
        stream.timer = null;
        if (!S.me) return;
        // A refused stream may be an ended session: /api/me says so (and a
        // 401 there shows the login form).
        S.api('GET', '/api/me').catch(() => {}).finally(() => {
          if (S.me && !stream.es) openStream();
        });
      }, wait);
    };
  }
  function closeStream() {
    clearTimeout(stream.timer);
    stream.timer = null;
    if (stream.es) stream.es.close();
    stream.es = null;
    stream.opened = false;
    stream.live = false;
  }

  // ---------------------------------------------------------------- prefs

  const PREFS_DELAY_MS = 800;
  const prefsState = { timer: null, dirty: false, tries: 0 };
  function prefsObj() {
    if (!S.me) return {};
    if (!S.me.prefs || typeof S.me.prefs !== 'object' || Array.isArray(S.me.prefs)) S.me.prefs = {};
    return S.me.prefs;
  }
  function savePrefs(unloading) {
    clearTimeout(prefsState.timer);
    prefsState.timer = null;
    if (!prefsState.dirty || !S.me) return;
    prefsState.dirty = false;
    const body = JSON.stringify(prefsObj());
    if (S.noAuth) {
      try {
        localStorage.setItem('skywatch.prefs', body);
      } catch (_) { /* storage full or off: keep them in memory */ }
      return;
    }
    fetch('/api/me/prefs', {
      method: 'PUT',
      headers: csrfHeaders({ 'Content-Type': 'application/json' }),
      body,
      credentials: 'same-origin',
      keepalive: !!unloading,
    }).then((resp) => {
      if (resp.ok) prefsState.tries = 0;
      else if (resp.status === 401) sessionLost('login.expired');
      else if (resp.status >= 500) retryPrefs();
    }, () => retryPrefs());
  }
  // retryPrefs tries again a few times (a server that keeps no
  // preferences answers 503 for good).
  function retryPrefs() {
    if (++prefsState.tries > 3) return;
    prefsState.dirty = true;
    if (!prefsState.timer) prefsState.timer = setTimeout(() => savePrefs(false), 10000);
  }
  S.prefs = {
    // get returns a copy of the stored value, undefined when unset.
    get(key) {
      const v = prefsObj()[key];
      return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
    },
    // set stores value (JSON) under key and saves soon.
    set(key, value) {
      if (!S.me) return;
      const p = prefsObj();
      if (JSON.stringify(p[key]) === JSON.stringify(value)) return;
      if (value === undefined) delete p[key];
      else p[key] = JSON.parse(JSON.stringify(value));
      prefsState.dirty = true;
      clearTimeout(prefsState.timer);
      prefsState.timer = setTimeout(() => savePrefs(false), PREFS_DELAY_MS);
    },
    // flush saves now what is waiting.
    flush() {
      savePrefs(false);
    },
  };

  // ---------------------------------------------------------------- player

  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 10000;
  // A session that was playing and broke (its server died, the network
  // moved) is tried again at once, nearly: another node of a cluster
  // takes the camera over within its failover time, and the tile should
  // play again as soon as it does.
  const RETRY_FIRST_MS = 250;
  const GATHER_TIMEOUT_MS = 3000;
  const CONNECT_TIMEOUT_MS = 15000;
  // Chromium reports "disconnected" once its peer has been silent for
  // about 5 s already; a picture that stopped for 3 s (a visible page
  // decodes every frame, and cameras send at least one a second) is a
  // quicker sign that the serving node went away.
  const DISCONNECTED_GRACE_MS = 1000;
  const STALL_MS = 3000;
  const WATCH_EVERY_MS = 1000;
  const players = new Set();
  const deleting = new Set(); // WHEP DELETEs on their way: a logout waits for them
  let sessionGone = false; // the server said 401: nothing of the session is left to end

  // retryAfter is a WHEP answer's Retry-After in ms (seconds only), 0
  // when it has none.
  function retryAfter(resp) {
    const s = Number(resp.headers.get('Retry-After'));
    return Number.isFinite(s) && s > 0 ? s * 1000 : 0;
  }

  // say makes a setState reason of a string key.
  function say(key, vars) {
    return () => S.t(key, vars);
  }

  // gatheringComplete waits (at most 3 s) for the offer's candidates: the
  // server takes no trickled candidates.
  function gatheringComplete(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        pc.removeEventListener('icegatheringstatechange', check);
        clearTimeout(timer);
        resolve();
      };
      const check = () => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const timer = setTimeout(done, GATHER_TIMEOUT_MS);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  // PlayerImpl plays one camera into one <video> over WHEP and keeps it
  // playing: on any failure it reconnects with backoff (1 s doubling to
  // 10 s; 0.25 s first when a playing session broke; the server's
  // Retry-After when it gives one) until stop(). States: connecting,
  // playing, retrying, offline (the camera cannot stream now), denied (out
  // of scope: no retry), removed (the camera was removed from the
  // configuration: no retry). When a playing session breaks, the player
  // first asks the session's URL why: a configuration change that ended it
  // says so (410 with camera_removed or camera_changed).
  class PlayerImpl {
    constructor(video, cameraId, opts) {
      opts = opts || {};
      this.video = video;
      this.cameraId = cameraId;
      this.stream = opts.stream === 'sub' ? 'sub' : 'main';
      this.onState = typeof opts.onState === 'function' ? opts.onState : () => {};
      this.state = '';
      this.why = null; // () → the detail, in the language of the moment
      this.pc = null;
      this.location = null;
      this.gen = 0;
      this.stopped = true;
      this.backoff = RETRY_MIN_MS;
      this.timers = {};
      this.lastFrames = -1;
      this.lastProgress = 0;
      this.asking = -1; // the gen whose session's end is being asked about
      video.muted = true;
      video.autoplay = true;
      video.playsInline = true;
      this.onPlaying = () => {
        if (this.state !== 'playing' && this.pc && this.pc.connectionState === 'connected' && this.video.readyState >= 2) this.markPlaying();
      };
    }

    start() {
      if (!this.stopped) return;
      this.stopped = false;
      players.add(this);
      for (const type of ['playing', 'loadeddata', 'timeupdate']) this.video.addEventListener(type, this.onPlaying);
      this.connect();
    }

    stop() {
      this.stopped = true;
      players.delete(this);
      this.gen++;
      this.teardown();
      this.video.srcObject = null;
      for (const type of ['playing', 'loadeddata', 'timeupdate']) this.video.removeEventListener(type, this.onPlaying);
    }

    // setStream switches between the sub and the main stream.
    setStream(stream) {
      const s = stream === 'sub' ? 'sub' : 'main';
      if (s === this.stream) return;
      this.stream = s;
      if (!this.stopped) {
        this.backoff = RETRY_MIN_MS;
        this.connect(true);
      }
    }

    // detail says why the player is in its state ("" when there is
    // nothing to add), in the language shown now.
    get detail() {
      return this.why ? this.why() : '';
    }

    // setState moves to state; why is null or a function that says why,
    // called again whenever the detail is read (a language switch).
    setState(state, why) {
      const text = why ? why() : '';
      if (state === this.state && text === this.detail) return;
      this.state = state;
      this.why = why || null;
      this.onState(state, text);
    }

    clearTimers() {
      for (const k of Object.keys(this.timers)) {
        clearTimeout(this.timers[k]);
        clearInterval(this.timers[k]);
      }
      this.timers = {};
    }

    // teardown ends the current session: DELETE first, and the peer
    // connection closed once the server has answered (closing first makes
    // the server drop the session itself and the DELETE find nothing).
    // keepalive lets the DELETE out while the page is being left.
    teardown() {
      this.clearTimers();
      const pc = this.pc;
      this.pc = null;
      if (pc) {
        pc.ontrack = null;
        pc.onconnectionstatechange = null;
      }
      if (this.location && sessionGone) {
        // The server has ended the session and its video with it.
        this.location = null;
        if (pc) pc.close();
      } else if (this.location) {
        const loc = this.location;
        this.location = null;
        const close = () => pc && pc.close();
        const t = setTimeout(close, 2000);
        const del = fetch(loc, { method: 'DELETE', headers: csrfHeaders({}), credentials: 'same-origin', keepalive: true })
          .catch(() => {}).finally(() => {
            clearTimeout(t);
            close();
            deleting.delete(del);
          });
        deleting.add(del);
      } else if (pc) {
        pc.close();
      }
    }

    async connect(fresh) {
      this.teardown();
      const gen = ++this.gen;
      // While retrying, the tile keeps saying why until a picture comes.
      if (fresh || !['retrying', 'offline'].includes(this.state)) this.setState('connecting', null);
      else this.setState(this.state, say('player.reconnecting'));
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      this.pc = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.ontrack = (ev) => {
        if (gen !== this.gen) return;
        const ms = ev.streams[0] || new MediaStream([ev.track]);
        if (this.video.srcObject !== ms) this.video.srcObject = ms;
        this.video.play().catch(() => {});
      };
      pc.onconnectionstatechange = () => this.connectionChanged(pc, gen);
      let resp, text;
      try {
        await pc.setLocalDescription(await pc.createOffer());
        await gatheringComplete(pc);
        if (gen !== this.gen) return;
        const url = '/whep/' + encodeURIComponent(this.cameraId) + '?stream=' + this.stream;
        resp = await fetch(url, {
          method: 'POST',
          headers: csrfHeaders({ 'Content-Type': 'application/sdp' }),
          body: pc.localDescription.sdp,
          credentials: 'same-origin',
          cache: 'no-store',
        });
        text = await resp.text();
      } catch (_) {
        if (gen === this.gen) this.retry('retrying', say('player.network'));
        return;
      }
      if (gen !== this.gen) {
        // Stopped or restarted while the server answered: end that session.
        const loc = resp.status === 201 && resp.headers.get('Location');
        if (loc) fetch(loc, { method: 'DELETE', headers: csrfHeaders({}), credentials: 'same-origin', keepalive: true }).catch(() => {});
        return;
      }
      if (resp.status === 201) {
        this.location = resp.headers.get('Location');
        try {
          await pc.setRemoteDescription({ type: 'answer', sdp: text });
        } catch (_) {
          if (gen === this.gen) this.retry('retrying', say('player.failed'));
          return;
        }
        this.timers.connect = setTimeout(() => {
          if (gen === this.gen && this.state !== 'playing') this.retry('retrying', say('player.timeout'));
        }, CONNECT_TIMEOUT_MS);
        return;
      }
      let body = null;
      try {
        body = JSON.parse(text);
      } catch (_) { /* not JSON */ }
      switch (resp.status) {
        case 401:
          this.teardown();
          this.setState('offline', say('login.expired'));
          sessionLost('login.expired');
          return;
        case 403:
          // Out of the user's area, the server says; anything else
          // refused (a lost CSRF token) is said in general words.
          this.teardown();
          this.setState('denied', say(/outside your area/.test((body && body.error) || '') ? 'player.outsideArea' : 'player.denied'));
          return;
        case 404:
          if (body && body.code === 'camera_removed') {
            this.removed();
            return;
          }
          this.retry('offline', say('player.unknown'), RETRY_MAX_MS);
          return;
        case 429:
          // Past the server's cap on open video sessions: wait for others
          // to close.
          this.retry('retrying', say('player.tooMany', { limit: (body && body.limit) || '' }), RETRY_MAX_MS);
          return;
        case 503: {
          // The reason comes as a code, said here in the operator's
          // language; the server keeps the detail in its log. Its
          // Retry-After says when to come back (1 s while the camera
          // moves to another node of a cluster).
          const code = body && (body.code || (body.camera && body.camera.last_error_code));
          this.retry('offline', code ? () => S.t('player.unavailableWhy', { reason: S.tv('camera.error.', code) }) : say('player.unavailable'),
            0, retryAfter(resp));
          return;
        }
        default:
          // 502: the node that pulls the camera did not answer (it may
          // have just died); the server's Retry-After says when to retry.
          this.retry('retrying', say('player.server', { status: resp.status }), 0, retryAfter(resp));
      }
    }

    connectionChanged(pc, gen) {
      if (gen !== this.gen) return;
      switch (pc.connectionState) {
        case 'connected':
          clearTimeout(this.timers.grace);
          if (this.video.readyState >= 2) this.markPlaying();
          break;
        case 'disconnected':
          this.setState('retrying', say('player.interrupted'));
          clearTimeout(this.timers.grace);
          this.timers.grace = setTimeout(() => {
            if (gen === this.gen && pc.connectionState !== 'connected') this.interrupted(gen, say('player.interrupted'));
          }, DISCONNECTED_GRACE_MS);
          break;
        case 'failed':
          this.interrupted(gen, say('player.failed'));
          break;
      }
    }

    // interrupted handles a session that broke: it asks the session's URL
    // whether the server ended it because the camera was removed from the
    // configuration (stop, and say so) or its settings changed (connect
    // again at once, and say so), and otherwise retries as ever.
    async interrupted(gen, why) {
      if (this.asking === gen) return;
      this.asking = gen;
      const loc = this.location;
      let code = '';
      if (loc && !sessionGone) {
        try {
          const resp = await fetch(loc, { credentials: 'same-origin', cache: 'no-store' });
          if (resp.status === 410) code = ((await resp.json()) || {}).code || '';
        } catch (_) { /* no answer: retry as ever */ }
      }
      if (gen !== this.gen || this.stopped) return;
      if (code === 'camera_removed') {
        this.removed();
      } else if (code === 'camera_changed') {
        this.location = null; // the server has ended it: nothing to DELETE
        this.retry('retrying', say('player.changed'), 0, RETRY_FIRST_MS);
      } else {
        this.retry('retrying', why);
      }
    }

    // removed stops for good: the camera is no longer configured.
    removed() {
      this.location = null;
      this.teardown();
      this.gen++;
      this.setState('removed', say('player.removed'));
    }

    markPlaying() {
      if (this.stopped) return;
      clearTimeout(this.timers.connect);
      this.backoff = RETRY_FIRST_MS;
      this.setState('playing', null);
      if (!this.timers.watch) {
        const gen = this.gen;
        this.lastFrames = -1;
        this.lastProgress = Date.now();
        this.timers.watch = setInterval(() => this.watch(gen), WATCH_EVERY_MS);
      }
    }

    // watch reconnects when the picture has stopped while the page is
    // visible (hidden pages may not decode).
    watch(gen) {
      if (gen !== this.gen || this.state !== 'playing') return;
      const q = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : null;
      const frames = q ? q.totalVideoFrames : this.video.currentTime;
      const now = Date.now();
      if (frames !== this.lastFrames || document.hidden) {
        this.lastFrames = frames;
        this.lastProgress = now;
        return;
      }
      if (now - this.lastProgress > STALL_MS) this.interrupted(gen, say('player.noPicture'));
    }

    // retry tears the session down, shows state with why (a function, as
    // setState's), and connects again after the backoff, or after exactly
    // hinted ms when the server said when (Retry-After) without growing
    // the backoff. A tenth of jitter keeps a wall's tiles from coming back
    // all at once.
    retry(state, why, minWait, hinted) {
      if (this.stopped) return;
      this.teardown();
      this.gen++;
      let wait;
      if (hinted > 0) {
        wait = Math.min(hinted, RETRY_MAX_MS);
      } else {
        wait = Math.max(this.backoff, minWait || 0);
        this.backoff = Math.min(Math.max(this.backoff * 2, RETRY_MIN_MS), RETRY_MAX_MS);
      }
      wait = Math.round(wait * (1 + Math.random() * 0.1));
      this.setState(state, () => why() + ' · ' + S.t('player.retryIn', { s: Math.max(1, Math.round(wait / 1000)) }));
      this.timers.retry = setTimeout(() => {
        if (!this.stopped) this.connect(false);
      }, wait);
    }
  }

  // Player(video, cameraId, {stream: 'sub'|'main', onState(state, detail)})
  // works with and without new. detail is a translated sentence ("" when
  // there is nothing to add); .state and .detail hold the latest, .detail
  // in the language shown when it is read.
  S.Player = function (video, cameraId, opts) {
    return new PlayerImpl(video, cameraId, opts);
  };

  // ---------------------------------------------------------------- areas

  S.areas = [];
  const areaIndex = new Map();
  function setAreas(list) {
    S.areas = Array.isArray(list) ? list : [];
    areaIndex.clear();
    for (const a of S.areas) areaIndex.set(a.id, a);
  }
  S.loadAreas = async function () {
    try {
      setAreas(await S.api('GET', '/api/areas'));
    } catch (err) {
      if (err.status === 401) throw err;
      setAreas([]); // no incident engine: no areas
    }
    return S.areas;
  };
  S.areaById = function (id) {
    return areaIndex.get(id) || null;
  };
  // areaName is the area's name, or its ID when unknown.
  S.areaName = function (id) {
    if (!id) return '';
    const a = areaIndex.get(id);
    return a ? a.name || a.id : id;
  };
  // areaPath lists the names from the root down to the area.
  S.areaPath = function (id) {
    const names = [];
    const seen = new Set();
    for (let a = areaIndex.get(id); a && !seen.has(a.id); a = areaIndex.get(a.parent)) {
      seen.add(a.id);
      names.unshift(a.name || a.id);
    }
    if (!names.length && id) names.push(id);
    return names;
  };

  // ---------------------------------------------------------------- toasts

  // toast shows message for a few seconds; kind is info, ok, warn or error.
  // message is {key, vars}, translated again after a language switch, or
  // a string shown as it is (and dropped by a language switch, since it
  // is in the old language). A logout clears them all: they belong to the
  // user who caused them.
  const toasts = new Map(); // element → {key, vars} or null
  S.toast = function (message, kind, ms) {
    const box = document.getElementById('toasts');
    if (!box) return;
    const source = message && typeof message === 'object' ? message : null;
    const text = h('span', { class: 'toast-text' });
    const close = h('button', { type: 'button', class: 'toast-close', text: '×', onclick: () => drop(el) });
    const el = h('div', { class: 'toast toast-' + (kind || 'info'), role: kind === 'error' ? 'alert' : 'status' }, text, close);
    toasts.set(el, source);
    renderToast(el, source ? '' : String(message));
    box.append(el);
    while (box.children.length > 5) drop(box.firstElementChild);
    setTimeout(() => drop(el), ms || (kind === 'error' ? 8000 : 4000));
  };
  function drop(el) {
    toasts.delete(el);
    el.remove();
  }
  function renderToast(el, plain) {
    const source = toasts.get(el);
    el.querySelector('.toast-text').textContent = source ? S.t(source.key, source.vars) : plain;
    const close = el.querySelector('.toast-close');
    close.title = S.t('shell.dismiss');
    close.setAttribute('aria-label', close.title);
  }
  function clearToasts() {
    for (const el of [...toasts.keys()]) drop(el);
  }
  S.onLang(() => {
    for (const [el, source] of [...toasts]) {
      if (source) renderToast(el);
      else drop(el);
    }
  });

  // dialog shows a modal: {title, body (node or text), buttons: [{label,
  // value, kind: 'primary'|'danger'|'', testid}]}. It resolves to the
  // chosen button's value, null for Escape or a click beside it. A button
  // with check() returning false keeps the dialog open.
  S.dialog = function (opts) {
    return new Promise((resolve) => {
      const prev = document.activeElement;
      const close = (value) => {
        document.removeEventListener('keydown', onKey, true);
        back.remove();
        if (prev && prev.focus) prev.focus();
        resolve(value);
      };
      const onKey = (ev) => {
        if (ev.key === 'Escape') {
          ev.stopPropagation();
          close(null);
        }
      };
      const buttons = (opts.buttons || [{ label: S.t('common.ok'), value: true, kind: 'primary' }]).map((b) =>
        h('button', {
          type: 'button', class: ['btn', b.kind && 'btn-' + b.kind], 'data-testid': b.testid || null,
          text: b.label,
          onclick: () => {
            if (!b.check || b.check() !== false) close(b.value);
          },
        }));
      const modal = h('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-label': opts.title || '' },
        h('div', { class: 'modal-head', text: opts.title || '' }),
        h('div', { class: 'modal-body' }, opts.body || ''),
        h('div', { class: 'modal-foot' }, buttons));
      const back = h('div', { class: 'modal-backdrop', onclick: (ev) => { if (ev.target === back) close(null); } }, modal);
      document.addEventListener('keydown', onKey, true);
      document.body.append(back);
      const first = modal.querySelector('input, select, textarea') || buttons[buttons.length - 1];
      if (first) first.focus();
    });
  };

  // ---------------------------------------------------------------- views

  const VIEW_ORDER = ['wall', 'alarms', 'map', 'devices', 'units', 'audit'];
  const VIEW_NEEDS = { audit: 'audit' };
  const views = new Map();
  const badges = new Map();
  let mounted = null; // {name, view, el, params}

  S.registerView = function (name, def) {
    views.set(name, def);
    if (S.me) renderTabs();
  };
  function allowed(name) {
    const def = views.get(name);
    if (!def) return false;
    const need = def.need || VIEW_NEEDS[name];
    return !need || S.can(need);
  }
  function tabNames() {
    const names = VIEW_ORDER.filter((n) => views.has(n));
    for (const n of views.keys()) if (!names.includes(n)) names.push(n);
    return names.filter(allowed);
  }
  function parseHash(hash) {
    const m = /^#\/([^/?]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(hash || '');
    if (!m) return { name: '', params: {} };
    const params = {};
    if (m[3]) for (const [k, v] of new URLSearchParams(m[3])) params[k] = v;
    if (m[2]) params.id = decodeURIComponent(m[2]);
    return { name: decodeURIComponent(m[1]), params };
  }
  function buildHash(name, params) {
    let hash = '#/' + encodeURIComponent(name);
    const rest = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null || v === '') continue;
      if (k === 'id') hash += '/' + encodeURIComponent(v);
      else rest.set(k, String(v));
    }
    const q = rest.toString();
    return q ? hash + '?' + q : hash;
  }
  // navigate shows view name with params (an object; id goes in the path).
  S.navigate = function (name, params) {
    const hash = buildHash(name, params);
    if (location.hash === hash) route();
    else location.hash = hash;
  };
  S.currentView = function () {
    return mounted ? mounted.name : '';
  };
  S.viewParams = function () {
    return mounted ? Object.assign({}, mounted.params) : {};
  };

  function unmountView() {
    if (!mounted) return;
    const m = mounted;
    mounted = null;
    try {
      if (m.view.unmount) m.view.unmount();
    } finally {
      m.el.remove();
    }
  }
  function route() {
    if (!S.me) return;
    let { name, params } = parseHash(location.hash);
    const tabs = tabNames();
    if (!allowed(name)) {
      name = tabs.includes('wall') ? 'wall' : tabs[0];
      params = {};
      if (!name) return;
      history.replaceState(null, '', buildHash(name, params));
    }
    if (mounted && mounted.name === name) {
      if (JSON.stringify(mounted.params) === JSON.stringify(params)) return;
      if (mounted.view.update) {
        mounted.params = params;
        mounted.view.update(params);
        return;
      }
    }
    unmountView();
    const view = views.get(name);
    const el = h('section', { class: 'view view-' + name, 'data-view': name });
    document.getElementById('views').append(el);
    mounted = { name, view, el, params };
    renderTabs();
    renderTitle();
    view.mount(el, params);
  }
  function renderTitle() {
    const v = mounted && mounted.view;
    document.title = (v ? S.t(v.titleKey || 'tab.' + mounted.name) + ' · ' : '') + S.t('app.name');
  }

  // setBadge puts text (a count) on view's tab; "" removes it. kind "alert"
  // makes it stand out.
  S.setBadge = function (name, text, kind) {
    badges.set(name, { text: text === undefined || text === null ? '' : String(text), kind: kind || '' });
    const tab = document.querySelector('#tabs [data-view="' + CSS.escape(name) + '"] .tab-badge');
    if (tab) applyBadge(tab, badges.get(name));
  };
  function applyBadge(el, b) {
    el.textContent = b ? b.text : '';
    el.hidden = !b || !b.text;
    el.className = 'tab-badge' + (b && b.kind ? ' tab-badge-' + b.kind : '');
  }
  function renderTabs() {
    const nav = document.getElementById('tabs');
    if (!nav) return;
    nav.replaceChildren(...tabNames().map((name) => {
      const def = views.get(name);
      const active = !!mounted && mounted.name === name;
      const badge = h('span', { class: 'tab-badge', hidden: true });
      applyBadge(badge, badges.get(name));
      return h('a', {
        class: ['tab', active && 'active'], href: buildHash(name), role: 'tab',
        'aria-selected': String(active), 'data-view': name, 'data-testid': 'tab-' + name,
      }, h('span', { class: 'tab-label', text: S.t(def.titleKey || 'tab.' + name) }), badge);
    }));
  }

  // ---------------------------------------------------------------- shell

  function langSelect() {
    return document.getElementById('lang-select');
  }
  function renderLangSelect() {
    const sel = langSelect();
    sel.replaceChildren(...S.languages.map((l) => h('option', { value: l.code, text: l.label, selected: l.code === S.lang() })));
    sel.value = S.lang();
  }
  function renderConn() {
    const el = document.getElementById('conn');
    if (!el) return;
    el.classList.toggle('conn-live', stream.live);
    el.classList.toggle('conn-down', !stream.live);
    el.querySelector('.conn-text').textContent = S.t(stream.live ? 'shell.live' : 'shell.reconnecting');
    el.title = S.t(stream.live ? 'shell.liveTitle' : 'shell.reconnectingTitle');
  }
  function renderUser() {
    const me = S.me;
    if (!me) return;
    document.getElementById('user-name').textContent = S.noAuth ? S.t('shell.noAuth') : me.name || me.username;
    const role = document.getElementById('user-role');
    role.textContent = me.role ? S.tv('role.', me.role) : '';
    role.hidden = !me.role;
    role.className = 'badge role role-' + (me.role || 'none');
    const area = document.getElementById('user-area');
    area.textContent = me.area ? S.areaPath(me.area).join(' › ') : S.t('shell.allAreas');
    area.title = S.t('shell.area');
    document.getElementById('logout').hidden = S.noAuth;
  }
  function tickClock() {
    const el = document.getElementById('clock');
    if (el && S.me) el.textContent = S.fmtDateTime(new Date());
  }
  function renderShell() {
    renderLangSelect();
    renderConn();
    renderUser();
    renderTabs();
    renderTitle();
    tickClock();
  }

  S.onLang((lang) => {
    try {
      localStorage.setItem('skywatch.lang', lang);
    } catch (_) { /* storage off */ }
    if (!S.me) {
      renderLangSelect();
      document.title = S.t('login.title') + ' · ' + S.t('app.name');
      return;
    }
    if (!applyingSession) S.prefs.set('language', lang);
    renderShell();
    if (mounted && mounted.view.render) mounted.view.render();
  });

  // ---------------------------------------------------------------- idle

  // When the server sets idle_timeout_s, a console nobody has touched for
  // that long logs out (the wall keeps polling, so the server cannot tell).
  const idle = { last: Date.now(), timer: null, warned: false };
  function touch() {
    idle.last = Date.now();
    if (idle.warned) {
      idle.warned = false;
      document.getElementById('idle-warning').hidden = true;
    }
  }
  function checkIdle() {
    const limit = S.me && !S.noAuth ? Number(S.me.idle_timeout_s) || 0 : 0;
    if (!limit) return;
    const left = Math.round(limit - (Date.now() - idle.last) / 1000);
    const warn = document.getElementById('idle-warning');
    if (left <= 0) {
      logout('login.idle');
    } else if (left <= 60) {
      idle.warned = true;
      warn.hidden = false;
      warn.textContent = S.t('shell.idleWarning', { s: left });
    }
  }

  // ---------------------------------------------------------------- session

  let clockTimer = null;
  let applyingSession = false; // the session's own language is not a choice to save

  // startSession shows the console for me (me-JSON; null when the server
  // has no login): language, areas, header, event stream, then the view
  // the URL names.
  S.startSession = async function (me) {
    // A server without operator accounts answers every request as an
    // anonymous user with no CSRF token (or, older, has no /api/me).
    S.noAuth = !me || !me.csrf;
    if (S.noAuth) {
      me = me || {};
      let prefs = {};
      try {
        prefs = JSON.parse(localStorage.getItem('skywatch.prefs') || '{}') || {};
      } catch (_) { /* unreadable: start afresh */ }
      me = Object.assign({ username: '', name: '', role: '', area: '', area_path: [], language: '', time_zone: '', permissions: { act: true, close: true, audit: false }, map: { tile_url: '' } },
        me, { csrf: '', prefs, idle_timeout_s: 0 });
    }
    S.me = me;
    sessionGone = false;
    formatters.clear();
    const lang = S.normLang(S.prefs.get('language')) || S.normLang(me.language) || S.lang();
    applyingSession = true;
    try {
      S.setLang(lang);
    } finally {
      applyingSession = false;
    }
    await S.loadAreas();
    if (S.me !== me) return; // logged out meanwhile
    document.getElementById('login').hidden = true;
    document.getElementById('boot').hidden = true;
    document.getElementById('app').hidden = false;
    document.getElementById('lang-slot').append(langSelect());
    touch();
    clearInterval(clockTimer);
    clockTimer = setInterval(() => {
      tickClock();
      checkIdle();
    }, 1000);
    renderShell();
    // Views and stores start afresh for this user before anything loads.
    emit('session', me);
    openStream();
    route();
  };

  // endSession takes the console down: views unmounted, players and the
  // stream stopped, and 'logout' told so that views and stores drop what
  // they kept of this user.
  function endSession() {
    unmountView();
    for (const p of [...players]) p.stop();
    closeStream();
    clearInterval(clockTimer);
    clearTimeout(prefsState.timer);
    prefsState.dirty = false;
    S.me = null;
    document.getElementById('app').hidden = true;
    document.getElementById('idle-warning').hidden = true;
    document.getElementById('views').replaceChildren();
    clearToasts();
    badges.clear();
    emit('logout', null);
  }

  // sessionLost: the server said 401; show the login form with why.
  function sessionLost(why) {
    if (!S.me || S.noAuth) return;
    sessionGone = true;
    endSession();
    S.showLogin(why);
  }

  // loggingOut is the logout on its way to the server: a login waits for
  // it, so that the old session's POST /api/logout never goes out after
  // (or beside) the next login's.
  let loggingOut = null;
  async function logout(why) {
    if (!S.me || S.noAuth) return;
    savePrefs(true);
    const headers = csrfHeaders({});
    endSession();
    S.showLogin(why || 'login.loggedOut');
    const done = (async () => {
      // The video sessions end first, by their own DELETE (the server
      // ends what is left at logout anyway).
      await Promise.race([Promise.allSettled([...deleting]), new Promise((r) => setTimeout(r, 2000))]);
      try {
        await fetch('/api/logout', { method: 'POST', headers, credentials: 'same-origin' });
      } catch (_) { /* the session ends on the server by itself */ }
    })();
    loggingOut = done;
    await done;
    if (loggingOut === done) loggingOut = null;
  }
  S.logout = () => logout('login.loggedOut');

  // showLogin shows the login form; why is a string key said above it.
  S.showLogin = function (why) {
    const form = document.getElementById('login-form');
    document.getElementById('boot').hidden = true;
    document.getElementById('app').hidden = true;
    document.getElementById('login').hidden = false;
    document.getElementById('login-lang').append(langSelect());
    renderLangSelect();
    document.title = S.t('login.title') + ' · ' + S.t('app.name');
    setLoginMessage(why || '', why === 'login.loggedOut' ? 'info' : 'warn');
    form.password.value = '';
    setBusy(false);
    (form.username.value ? form.password : form.username).focus();
  };

  let loginMsg = { key: '', vars: null, kind: '' };
  function setLoginMessage(key, kind, vars) {
    loginMsg = { key, vars: vars || null, kind: kind || 'error' };
    renderLoginMessage();
  }
  function renderLoginMessage() {
    const el = document.getElementById('login-error');
    el.textContent = loginMsg.key ? S.t(loginMsg.key, loginMsg.vars) : '';
    el.hidden = !loginMsg.key;
    el.className = 'login-message login-' + loginMsg.kind;
  }
  S.onLang(() => {
    if (!document.getElementById('login').hidden) renderLoginMessage();
  });
  function setBusy(busy) {
    const btn = document.getElementById('login-submit');
    btn.disabled = busy;
    btn.textContent = S.t(busy ? 'login.submitting' : 'login.submit');
    btn.dataset.i18n = busy ? 'login.submitting' : 'login.submit';
  }

  async function submitLogin(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    const username = form.username.value.trim();
    const password = form.password.value;
    if (!username || !password) {
      setLoginMessage('login.required', 'error');
      return;
    }
    setBusy(true);
    if (loggingOut) await loggingOut;
    let me;
    try {
      me = await S.api('POST', '/api/login', { username, password });
    } catch (err) {
      setBusy(false);
      form.password.value = '';
      form.password.focus();
      if (err.status === 401) {
        setLoginMessage('login.wrong', 'error');
      } else if (err.status === 429) {
        const s = Math.max(1, Number(err.body && err.body.retry_after_s) || 60);
        if (s < 60) setLoginMessage('login.lockedSeconds', 'error', { s });
        else setLoginMessage('login.locked', 'error', { min: Math.ceil(s / 60) });
      } else if (err.status === 0) {
        setLoginMessage('login.network', 'error');
      } else if (err.body && err.body.error) {
        setLoginMessage('login.failed', 'error', { message: err.body.error });
      } else {
        setLoginMessage('login.failedStatus', 'error', { status: err.status });
      }
      return;
    }
    setBusy(false);
    setLoginMessage('', '');
    form.password.value = '';
    await S.startSession(me);
  }

  // wireShell connects the static page's controls; main.js calls it once.
  S.wireShell = function () {
    document.getElementById('login-form').addEventListener('submit', submitLogin);
    langSelect().addEventListener('change', (ev) => S.setLang(ev.target.value));
    document.getElementById('logout').addEventListener('click', () => S.logout());
    window.addEventListener('hashchange', route);
    for (const type of ['pointerdown', 'keydown', 'wheel', 'pointermove']) {
      window.addEventListener(type, touch, { passive: true, capture: true });
    }
    // End video sessions and save preferences when the page goes away.
    window.addEventListener('pagehide', () => {
      savePrefs(true);
      for (const p of [...players]) p.stop();
    });
    window.addEventListener('pageshow', (ev) => {
      if (ev.persisted) location.reload();
    });
    renderLangSelect();
  };
})();
