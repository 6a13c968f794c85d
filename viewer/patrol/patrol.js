// Skywatch patrol page: one officer's unit. Plain JS, no dependencies:
// the page must work on closed networks.
'use strict';

const $ = (id) => document.getElementById(id);

const state = {
  csrf: '',
  unit: null,
  current: null,
  clockOffset: 0, // server clock minus this device's, in ms
  stream: null,
  reportTimer: 0,
  countdownTimer: 0,
};

// How often the page reports the unit's position while it is open, so
// that the unit does not count as silent.
const REPORT_EVERY_MS = 60 * 1000;

async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (state.csrf) headers['X-CSRF-Token'] = state.csrf;
  }
  let resp;
  try {
    resp = await fetch('/patrol/api/' + path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    return { status: 0, data: { error: 'no connection to the server' } };
  }
  let data = null;
  if (resp.status !== 204) {
    try { data = await resp.json(); } catch (e) { data = { error: 'unexpected answer (' + resp.status + ')' }; }
  }
  if (resp.status === 401 && path !== 'login') {
    showLogin();
  }
  return { status: resp.status, data };
}

function show(el, on) { el.hidden = !on; }

function message(id, text) {
  const el = $(id);
  el.textContent = text || '';
  show(el, !!text);
}

function showLogin() {
  stop();
  state.csrf = '';
  show($('app'), false);
  show($('who'), false);
  show($('login'), true);
  $('login').elements.username.focus();
}

function stop() {
  if (state.stream) { state.stream.close(); state.stream = null; }
  clearInterval(state.reportTimer);
  clearInterval(state.countdownTimer);
}

function start(me) {
  state.csrf = me.csrf;
  state.unit = me.unit;
  show($('login'), false);
  show($('app'), true);
  show($('who'), true);
  $('unit-name').textContent = me.unit.name || me.unit.id;
  renderUnit();
  loadCurrent();
  openStream();
  state.reportTimer = setInterval(() => report(''), REPORT_EVERY_MS);
  state.countdownTimer = setInterval(tick, 1000);
}

async function loadCurrent() {
  const { status, data } = await api('GET', 'current');
  if (status !== 200) {
    if (status !== 401) message('error', data.error);
    return;
  }
  state.clockOffset = Date.parse(data.now) - Date.now();
  state.unit = data.unit;
  state.current = data.incident;
  renderUnit();
  renderIncident();
}

const STATUS_LABELS = {
  available: 'Available', offered: 'Offer waiting', busy: 'On an incident',
  off_duty: 'Off duty', unavailable: 'Unavailable (no recent position)',
};

function renderUnit() {
  const u = state.unit;
  if (!u) return;
  const el = $('unit-status');
  el.textContent = STATUS_LABELS[u.status] || u.status;
  el.className = u.status;
  $('go-available').setAttribute('aria-pressed', String(u.status === 'available'));
  $('go-off-duty').setAttribute('aria-pressed', String(u.status === 'off_duty'));
  const when = u.reported ? new Date(u.reported).toLocaleTimeString() : 'never';
  $('position-info').textContent = 'Last position report: ' + when;
}

function distanceText(inc) {
  const d = inc.distance_m;
  const text = d < 1000 ? Math.round(d) + ' m' : (d / 1000).toFixed(1) + ' km';
  let out = text + ' ' + inc.direction + ' (' + Math.round(inc.bearing_deg) + '°)';
  if (inc.from_home) out += ' from your home position: report your position';
  return out;
}

function label(s) {
  return (s || '').replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

function renderIncident() {
  const inc = state.current;
  show($('none'), !inc);
  show($('incident'), !!inc);
  if (!inc) return;
  $('inc-class').textContent = label(inc.class) + ' · priority ' + inc.priority;
  $('inc-state').textContent = label(inc.state);
  const place = [inc.address, inc.device_name].filter(Boolean).join(' · ');
  $('inc-address').textContent = place || inc.lat.toFixed(5) + ', ' + inc.lon.toFixed(5);
  $('inc-area').textContent = (inc.area_names || []).join(' › ') || '—';
  $('inc-distance').textContent = distanceText(inc);
  $('inc-zones').textContent = (inc.zones || []).join(', ') || '—';
  const last = Date.parse(inc.last);
  $('inc-count').textContent = inc.count + (last > 0 ? ', last at ' + new Date(last).toLocaleTimeString() : '');
  $('inc-cameras').textContent = (inc.cameras || []).join(', ') || '—';
  const working = inc.state === 'dispatched' || inc.state === 'en_route';
  show($('offer-banner'), inc.offered);
  show($('offer-actions'), inc.offered);
  show($('work-actions'), !inc.offered && working);
  show($('clear'), !inc.offered && inc.state === 'on_scene');
  tick();
}

function tick() {
  const inc = state.current;
  if (!inc || !inc.offered || !inc.deadline) return;
  const left = Math.max(0, Math.round((Date.parse(inc.deadline) - (Date.now() + state.clockOffset)) / 1000));
  $('countdown').textContent = left + ' s';
  $('offer-banner').classList.toggle('late', left <= 10);
}

async function reply(action, extra) {
  const inc = state.current;
  if (!inc) return;
  message('error', '');
  const { status, data } = await api('POST', 'reply', Object.assign({ incident: inc.id, action }, extra || {}));
  if (status === 200) {
    message('notice', label(action) + ': done. Incident is ' + label(data.state) + '.');
  } else if (status !== 401) {
    message('error', data.error);
  }
  loadCurrent();
}

// position returns the browser's position, or null where there is none
// (no geolocation, refused, or a page not served over HTTPS).
function position() {
  return new Promise((resolve) => {
    if (!navigator.geolocation || !window.isSecureContext) { resolve(null); return; }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude }),
      () => resolve(null),
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 });
  });
}

async function report(status, explicit) {
  const body = { status };
  const p = await position();
  if (p) { body.lat = p.lat; body.lon = p.lon; }
  const { status: code, data } = await api('POST', 'position', body);
  if (code === 200) {
    state.unit = data;
    renderUnit();
    if (explicit) {
      message('notice', p ? 'Position reported.' : 'Status reported; your position is not available on this device, the last known one was kept.');
    }
    loadCurrent();
  } else if (code !== 401 && explicit) {
    message('error', data.error);
  }
}

function openStream() {
  const es = new EventSource('/patrol/api/stream');
  state.stream = es;
  es.onopen = () => { $('live-info').textContent = 'Live updates: connected'; loadCurrent(); };
  es.onerror = () => {
    $('live-info').textContent = 'Live updates: reconnecting…';
    if (es.readyState === EventSource.CLOSED) {
      // Refused (logged out?): check, then try again.
      setTimeout(async () => {
        if (state.stream !== es) return;
        const { status } = await api('GET', 'me');
        if (status === 200 && state.stream === es) openStream();
      }, 5000);
    }
  };
  es.addEventListener('dispatch', (e) => {
    const m = JSON.parse(e.data);
    const texts = {
      offer: 'New offer: ' + label(m.class) + (m.address ? ' at ' + m.address : ''),
      withdrawn: 'The offer was withdrawn' + (m.reason ? ': ' + m.reason : ''),
      cancelled: 'The incident was cancelled' + (m.reason ? ': ' + m.reason : ''),
      resolved: 'The incident was resolved' + (m.reason ? ': ' + m.reason : ''),
      update: 'The incident changed',
    };
    if (m.type === 'error') message('error', m.reason);
    else message('notice', texts[m.type] || m.type);
    if (m.type === 'offer' && navigator.vibrate) navigator.vibrate([300, 100, 300]);
    loadCurrent();
  });
  es.addEventListener('unit', loadCurrent);
  es.addEventListener('incident', loadCurrent);
  es.addEventListener('logout', () => showLogin());
}

$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target;
  message('login-error', '');
  const { status, data } = await api('POST', 'login', { username: f.username.value.trim(), password: f.password.value });
  f.password.value = '';
  if (status === 200) start(data);
  else message('login-error', data.error);
});

$('logout').addEventListener('click', async () => {
  await api('POST', 'logout', {});
  showLogin();
});

$('go-available').addEventListener('click', () => report('available', true));
$('go-off-duty').addEventListener('click', () => report('off_duty', true));
$('report-position').addEventListener('click', () => report('', true));

document.querySelectorAll('[data-reply]').forEach((b) => {
  b.addEventListener('click', () => reply(b.dataset.reply));
});

$('clear').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = e.target;
  reply('cleared', { disposition: f.disposition.value, note: f.note.value });
  f.reset();
});

(async function boot() {
  const { status, data } = await api('GET', 'me');
  if (status === 200) start(data);
  else if (status !== 401) { showLogin(); message('login-error', data.error); }
})();
