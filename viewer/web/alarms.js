// Alarm queue: the open incidents of the operator's jurisdiction, most
// urgent first, kept live over the event stream; and the alert that sounds
// and shows in the page title when a new urgent incident comes in, whatever
// view is in front, until the operator acknowledges it.
//
// This file also holds Skywatch.ops, the helpers that the alarm and
// situation views (alarms, incident, map, lists, audit) share: it loads
// first of them.
'use strict';

(function () {
  const S = window.Skywatch;

  S.addStrings({
    'zh-CN': {
      'alarms.heading': '警情队列',
      'alarms.filter': '显示',
      'alarms.filter.open': '未结警情',
      'alarms.filter.recent': '全部近期',
      'alarms.count': '共 {n} 起',
      'alarms.empty.open': '暂无未结警情',
      'alarms.empty.recent': '近期没有警情',
      'alarms.loading': '正在加载…',
      'alarms.col.priority': '级别',
      'alarms.col.class': '类别',
      'alarms.col.place': '地点',
      'alarms.col.device': '设备',
      'alarms.col.count': '次数',
      'alarms.col.state': '状态',
      'alarms.col.age': '时长',
      'alarms.col.unit': '处警单位',
      'alarms.keys': '↑↓ 选择 · Enter 打开 · Esc 返回队列',
      'alarms.offered_to': '{unit}（待接）',
      'alarms.escalated': '需人工处理',
      'alarms.maintenance': '维护',
      'alert.title': '({n}) 新警情 · ',
      'alert.banner': '{n} 起新的紧急警情',
      'alert.ack': '确认并静音',
      'alert.open': '查看',
      'alert.sound_blocked': '浏览器阻止了声音：点击任意处启用',
      'prio.short': 'P{n}',
      'class.alarm': '入侵报警',
      'class.panic': '紧急求助',
      'class.fire': '火警',
      'class.tamper': '防拆',
      'class.trouble': '故障',
      'class.supervision': '掉线',
      'class.arm': '布防',
      'class.disarm': '撤防',
      'class.test': '测试',
      'istate.new': '新警情',
      'istate.acknowledged': '已确认',
      'istate.offered': '派单中',
      'istate.dispatched': '已派警',
      'istate.en_route': '赶赴中',
      'istate.on_scene': '已到场',
      'istate.resolved': '已处置',
      'istate.closed': '已关闭',
      'istate.cancelled': '已撤销',
      'ustatus.available': '空闲',
      'ustatus.offered': '待接单',
      'ustatus.busy': '出警中',
      'ustatus.off_duty': '下班',
      'ustatus.unavailable': '失联',
      'ukind.patrol_car': '巡逻车',
      'ukind.foot_patrol': '步巡',
      'ukind.volunteer_patrol': '义务巡逻',
      'ukind.grid_manager': '网格员',
      'disp.genuine': '真实警情',
      'disp.false_equipment': '误报（设备）',
      'disp.false_user': '误报（用户误操作）',
      'disp.false': '误报',
      'disp.unfounded': '查无实据',
      'disp.duplicate': '重复警情',
      'err.network': '无法连接服务器',
      'err.400': '请求无效：{msg}',
      'err.403': '无权执行此操作',
      'err.404': '未找到（可能已被删除或不在辖区内）',
      'err.409': '操作冲突：警情状态已变化，请查看最新状态',
      'err.409.no_unit': '没有空闲单位可派：已记录并升级，请人工指派或稍后重试',
      'err.409.unit': '该单位当前不可用（出警中、待接单、下班或失联）',
      'err.409.state': '警情状态已变化，此操作不再可行',
      'err.409.race': '警情刚被他人修改，请重试',
      'err.429': '请求过多，请稍后再试',
      'err.503': '服务暂时不可用，请稍后再试',
      'err.other': '出错了（{status}）：{msg}',
      'dist.m': '{n} 米',
      'dist.km': '{n} 公里',
    },
    en: {
      'alarms.heading': 'Alarm queue',
      'alarms.filter': 'Show',
      'alarms.filter.open': 'Open incidents',
      'alarms.filter.recent': 'All recent',
      'alarms.count': '{n} in all',
      'alarms.empty.open': 'No open incidents',
      'alarms.empty.recent': 'No recent incidents',
      'alarms.loading': 'Loading…',
      'alarms.col.priority': 'Pri',
      'alarms.col.class': 'Class',
      'alarms.col.place': 'Place',
      'alarms.col.device': 'Device',
      'alarms.col.count': 'Count',
      'alarms.col.state': 'State',
      'alarms.col.age': 'Age',
      'alarms.col.unit': 'Unit',
      'alarms.keys': '↑↓ select · Enter open · Esc back to the queue',
      'alarms.offered_to': '{unit} (offered)',
      'alarms.escalated': 'Needs an operator',
      'alarms.maintenance': 'Maintenance',
      'alert.title': '({n}) New alarm · ',
      'alert.banner': '{n} new urgent incident(s)',
      'alert.ack': 'Acknowledge and mute',
      'alert.open': 'Open',
      'alert.sound_blocked': 'The browser blocked the sound: click anywhere to enable it',
      'prio.short': 'P{n}',
      'class.alarm': 'Intrusion',
      'class.panic': 'Panic',
      'class.fire': 'Fire',
      'class.tamper': 'Tamper',
      'class.trouble': 'Trouble',
      'class.supervision': 'Supervision',
      'class.arm': 'Arm',
      'class.disarm': 'Disarm',
      'class.test': 'Test',
      'istate.new': 'New',
      'istate.acknowledged': 'Acknowledged',
      'istate.offered': 'Offered',
      'istate.dispatched': 'Dispatched',
      'istate.en_route': 'En route',
      'istate.on_scene': 'On scene',
      'istate.resolved': 'Resolved',
      'istate.closed': 'Closed',
      'istate.cancelled': 'Cancelled',
      'ustatus.available': 'Available',
      'ustatus.offered': 'Offered',
      'ustatus.busy': 'Busy',
      'ustatus.off_duty': 'Off duty',
      'ustatus.unavailable': 'Unavailable',
      'ukind.patrol_car': 'Patrol car',
      'ukind.foot_patrol': 'Foot patrol',
      'ukind.volunteer_patrol': 'Volunteer patrol',
      'ukind.grid_manager': 'Grid manager',
      'disp.genuine': 'Genuine',
      'disp.false_equipment': 'False (equipment)',
      'disp.false_user': 'False (user error)',
      'disp.false': 'False alarm',
      'disp.unfounded': 'Unfounded',
      'disp.duplicate': 'Duplicate',
      'err.network': 'Cannot reach the server',
      'err.400': 'Invalid request: {msg}',
      'err.403': 'You are not allowed to do this',
      'err.404': 'Not found (removed, or outside your jurisdiction)',
      'err.409': 'Conflict: the incident has changed, look at its latest state',
      'err.409.no_unit': 'No free unit to send: noted and escalated; assign one by hand or try again shortly',
      'err.409.unit': 'That unit is not available now (busy, offered, off duty or silent)',
      'err.409.state': 'The incident has moved on: this action is no longer possible',
      'err.409.race': 'Someone else just changed the incident: try again',
      'err.429': 'Too many requests, try again shortly',
      'err.503': 'Service unavailable for now, try again shortly',
      'err.other': 'Error ({status}): {msg}',
      'dist.m': '{n} m',
      'dist.km': '{n} km',
    },
  });

  // ---- shared helpers (Skywatch.ops) ----

  // DASH fills an empty cell.
  const DASH = '—';

  // el builds an element: props sets attributes ("class", "text",
  // "data-*", "aria-*", anything else as an attribute, on* as listeners);
  // children are nodes, strings or null.
  function el(tag, props, ...children) {
    const ns = tag.startsWith('svg:') ? 'http://www.w3.org/2000/svg' : null;
    const node = ns ? document.createElementNS(ns, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // label translates an enumerated value (class, state...), falling back
  // to the value itself for one this page does not know yet.
  function label(prefix, value) {
    if (!value) return DASH;
    const key = prefix + '.' + value;
    return S.hasString(key) ? S.t(key) : String(value).replace(/_/g, ' ');
  }

  const URGENT_CLASSES = ['panic', 'fire', 'alarm'];

  // urgent: what sounds the alert. Priority comes from the routing config
  // (panic and fire 1, alarm 2 by default; 1 is the most urgent).
  function urgent(inc) {
    return inc.kind !== 'maintenance' &&
      ((inc.priority > 0 && inc.priority <= 2) || URGENT_CLASSES.includes(inc.class));
  }

  const OPEN_STATES = ['new', 'acknowledged', 'offered', 'dispatched', 'en_route', 'on_scene'];
  function isOpen(inc) { return OPEN_STATES.includes(inc.state); }

  // The names of units, for incidents that only carry IDs; kept from
  // GET /api/units and the units of incident changes.
  const units = new Map();
  const unitListeners = new Set();
  let generation = 0; // sessions so far: see 'session' below
  function mergeUnits(list) {
    for (const u of list || []) units.set(u.id, Object.assign(units.get(u.id) || {}, u));
    for (const fn of unitListeners) fn();
  }
  async function loadUnits() {
    const gen = generation;
    const list = await S.api('GET', '/api/units');
    if (gen === generation) mergeUnits(list); // else the last session's answer
    return units;
  }
  function unitName(id) {
    if (!id) return '';
    const u = units.get(id);
    return (u && u.name) || id;
  }

  // incidentOf takes the incident out of an 'incident' stream event: the
  // change {seq, incident, entry, units}, or an incident itself.
  function incidentOf(data) {
    if (!data) return null;
    if (data.incident) return data.incident;
    if (data.id && data.state) return data;
    return null;
  }

  function areaPathText(inc) {
    let path = inc.area_path;
    if ((!path || !path.length) && inc.area && S.areaPath) path = S.areaPath(inc.area);
    if (!path || !path.length) return inc.area ? areaName(inc.area) : '';
    // area_path runs from the area up to the root; people read it downwards.
    const names = path.map((a) => (typeof a === 'string' ? areaName(a) : a.name || a.id));
    if (inc.area_path && inc.area_path[0] === inc.area) names.reverse();
    return names.join(' › ');
  }

  function areaName(id) {
    if (!id) return '';
    return (S.areaName && S.areaName(id)) || id;
  }

  // errorText turns an API failure into a sentence for the operator.
  function errorText(err) {
    if (!err || typeof err.status !== 'number' || err.status === 0) return S.t('err.network');
    const msg = err.message || '';
    if (err.status === 409) {
      // The engine's reasons, in the operator's language.
      if (/no free unit/.test(msg)) return S.t('err.409.no_unit');
      if (/unit is (not available|busy|offered|off_duty|unavailable)/.test(msg)) return S.t('err.409.unit');
      if (/illegal transition|not possible in state/.test(msg)) return S.t('err.409.state');
      if (/another writer/.test(msg)) return S.t('err.409.race');
    }
    if ([400, 403, 404, 409, 429, 503].includes(err.status)) return S.t('err.' + err.status, { msg });
    return S.t('err.other', { status: err.status, msg });
  }

  // distanceM is the great-circle distance in metres.
  function distanceM(lat1, lon1, lat2, lon2) {
    const r = Math.PI / 180;
    const a = Math.sin((lat2 - lat1) * r / 2) ** 2 +
      Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin((lon2 - lon1) * r / 2) ** 2;
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(a)));
  }

  function fmtDistance(m) {
    if (typeof m !== 'number' || !isFinite(m)) return DASH;
    if (m < 1000) return S.t('dist.m', { n: Math.round(m) });
    return S.t('dist.km', { n: (m / 1000).toFixed(m < 10000 ? 1 : 0) });
  }

  // age makes an element whose text is the age of iso ("3 min ago"),
  // kept ticking.
  function age(iso) {
    const d = S.toDate ? S.toDate(iso) : (iso ? new Date(iso) : null);
    const node = el('span', { class: 'ops-age', 'data-age': d ? iso : null });
    node.textContent = d ? S.fmtAge(iso) : DASH;
    if (d) node.title = S.fmtDateTime(iso);
    return node;
  }

  // elapsed makes an element whose text is the time since iso ("2 min
  // 5 s"), kept ticking: how long an incident has waited.
  function elapsed(iso) {
    const d = S.toDate ? S.toDate(iso) : (iso ? new Date(iso) : null);
    const node = el('span', { class: 'ops-age', 'data-since': d ? iso : null });
    node.textContent = d ? S.fmtDuration((Date.now() - d.getTime()) / 1000) : DASH;
    if (d) node.title = S.fmtDateTime(iso);
    return node;
  }

  function tickAges() {
    for (const node of document.querySelectorAll('[data-age]')) node.textContent = S.fmtAge(node.getAttribute('data-age'));
    const now = Date.now();
    for (const node of document.querySelectorAll('[data-since]')) {
      node.textContent = S.fmtDuration((now - Date.parse(node.getAttribute('data-since'))) / 1000);
    }
  }

  function badge(kind, value, text) {
    return el('span', { class: 'ops-badge ops-' + kind + '-' + value }, text);
  }
  function classBadge(cls) { return badge('class', cls, label('class', cls)); }
  function stateBadge(st) { return badge('state', st, label('istate', st)); }
  function prioBadge(p) { return badge('prio', p || 0, S.t('prio.short', { n: p || '?' })); }
  function unitStatusBadge(st) { return badge('ustatus', st, label('ustatus', st)); }

  // openDialog shows a modal <dialog> in the shell's modal look, with the
  // body build(dlg) returns, and resolves with what submit(form) returns,
  // or null when dismissed (Esc, Cancel). okText null: no OK button, the
  // body's own buttons close it.
  function openDialog({ title, testid, build, submit, okText, okClass, wide }) {
    return new Promise((resolve) => {
      const error = el('p', { class: 'error-box ops-error', role: 'alert', hidden: true });
      const ok = okText === null ? null
        : el('button', { type: 'submit', class: 'btn btn-primary ' + (okClass || ''), 'data-testid': 'dialog-ok' },
          okText || S.t('common.ok'));
      const cancel = el('button', { type: 'button', class: 'btn', 'data-testid': 'dialog-cancel' }, S.t('common.cancel'));
      const dlg = el('dialog', { class: 'ops-dialog', 'data-testid': testid || 'dialog', 'aria-label': title });
      const form = el('form', { class: 'modal ops-modal' + (wide ? ' ops-modal-wide' : '') },
        el('div', { class: 'modal-head' }, title),
        el('div', { class: 'modal-body ops-dialog-body' }, build(dlg) || [], error),
        el('div', { class: 'modal-foot' }, cancel, ok));
      dlg.append(form);
      let result = null;
      cancel.addEventListener('click', () => dlg.close());
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        if (!submit || !ok) { dlg.close(); return; }
        ok.disabled = true;
        error.hidden = true;
        try {
          result = await submit(form);
          dlg.close();
        } catch (err) {
          error.textContent = err && err.userText ? err.userText : errorText(err);
          error.hidden = false;
        } finally {
          ok.disabled = false;
        }
      });
      dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
      document.body.append(dlg);
      dlg.showModal();
    });
  }

  S.ops = {
    DASH, el, append, clear, label, urgent, isOpen, OPEN_STATES, units, mergeUnits, loadUnits, unitName,
    unitListeners, incidentOf, areaPathText, areaName, errorText, distanceM, fmtDistance, age, elapsed,
    classBadge, stateBadge, prioBadge, unitStatusBadge, openDialog,
  };

  // ---- the open incidents, kept for the queue and the alert ----

  const MAX_PAGES = 10;

  // listIncidents follows the pages of GET /api/incidents.
  async function listIncidents(query) {
    const out = [];
    let cursor = '';
    for (let i = 0; i < MAX_PAGES; i++) {
      const q = query + '&limit=500' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
      const page = await S.api('GET', '/api/incidents?' + q);
      out.push(...(page.incidents || []));
      cursor = page.next;
      if (!cursor) break;
    }
    return out;
  }

  // ---- the alert: sound and title until acknowledged ----

  const alert = {
    pending: new Map(), // incident id -> {inc, escalation}: alerting now
    muted: new Set(), // incident ids the operator silenced in this tab
    known: new Map(), // incident id -> {escalated}, as last seen
    ctx: null,
    timer: null,
    titlePrefix: '',
    banner: null,
  };

  const MUTED_KEY = 'skywatch.alarms.muted';
  try {
    for (const id of JSON.parse(sessionStorage.getItem(MUTED_KEY) || '[]')) alert.muted.add(id);
  } catch (e) { /* a fresh tab */ }

  function saveMuted() {
    try { sessionStorage.setItem(MUTED_KEY, JSON.stringify([...alert.muted].slice(-500))); } catch (e) { /* full */ }
  }

  // Browsers start an AudioContext suspended until the page gets a user
  // gesture: the login click is one. Create and resume on every gesture
  // until it runs.
  function unlockAudio() {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    if (!alert.ctx) alert.ctx = new AC();
    if (alert.ctx.state !== 'running') alert.ctx.resume().then(renderAlert, () => {});
    renderAlert();
  }
  for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, unlockAudio, true);

  // beep plays a two-tone alarm (about one second) with the Web Audio API.
  function beep() {
    const ctx = alert.ctx;
    if (!ctx || ctx.state !== 'running') return;
    const t0 = ctx.currentTime + 0.02;
    for (let i = 0; i < 4; i++) {
      const start = t0 + i * 0.25;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'square';
      osc.frequency.setValueAtTime(i % 2 ? 660 : 990, start);
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.18, start + 0.015);
      gain.gain.setValueAtTime(0.18, start + 0.18);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.24);
    }
  }

  const BEEP_EVERY_MS = 2500;

  // consider decides whether an incident should alert, or stop alerting:
  // an urgent open incident alerts until the operator acknowledges the
  // alert here or anyone acknowledges the incident; one that becomes
  // escalated (an offer declined or timed out, no unit free) alerts again
  // until acknowledged here.
  function consider(inc) {
    const prev = alert.known.get(inc.id);
    alert.known.set(inc.id, { escalated: !!inc.escalated });
    if (!urgent(inc) || !isOpen(inc)) {
      alert.pending.delete(inc.id);
      return;
    }
    const pend = alert.pending.get(inc.id);
    if (inc.escalated && prev && !prev.escalated) {
      alert.muted.delete(inc.id);
      alert.pending.set(inc.id, { inc, escalation: true });
    } else if (pend && pend.escalation) {
      pend.inc = inc;
    } else if (alert.muted.has(inc.id) || inc.acknowledged) {
      alert.pending.delete(inc.id);
    } else {
      alert.pending.set(inc.id, { inc, escalation: false });
    }
  }

  function acknowledgeAlert() {
    for (const id of alert.pending.keys()) alert.muted.add(id);
    alert.pending.clear();
    saveMuted();
    renderAlert();
  }

  function renderAlert() {
    const n = alert.pending.size;
    if (n > 0 && !alert.timer) {
      beep();
      alert.timer = setInterval(beep, BEEP_EVERY_MS);
    } else if (n === 0 && alert.timer) {
      clearInterval(alert.timer);
      alert.timer = null;
    }
    updateTitle();
    updateBadge();
    if (!alert.banner) {
      alert.banner = el('div', { class: 'ops-alert', role: 'alert', 'data-testid': 'alert-banner', hidden: true });
      document.body.append(alert.banner);
    }
    const b = alert.banner;
    clear(b);
    b.hidden = n === 0;
    document.body.classList.toggle('ops-alerting', n > 0);
    if (n === 0) return;
    const top = [...alert.pending.values()].map((p) => p.inc).sort(compareUrgency)[0];
    const blocked = !alert.ctx || alert.ctx.state !== 'running';
    append(b, [
      el('span', { class: 'ops-alert-icon', 'aria-hidden': 'true' }, '!'),
      el('span', { class: 'ops-alert-text' }, S.t('alert.banner', { n }),
        el('span', { class: 'ops-alert-top' }, ' · ', label('class', top.class), ' · ', top.device_name || top.device)),
      blocked ? el('span', { class: 'ops-alert-blocked' }, S.t('alert.sound_blocked')) : null,
      el('button', { type: 'button', class: 'btn ops-alert-open', 'data-testid': 'alert-open',
        onclick: () => S.navigate('alarms', { id: top.id }) }, S.t('alert.open')),
      el('button', { type: 'button', class: 'btn ops-alert-ack', 'data-testid': 'alert-ack', onclick: acknowledgeAlert },
        S.t('alert.ack')),
    ]);
  }

  // updateTitle keeps "(n) New alarm · " in front of whatever title the
  // shell sets.
  function updateTitle() {
    let base = document.title;
    if (alert.titlePrefix && base.startsWith(alert.titlePrefix)) base = base.slice(alert.titlePrefix.length);
    const n = alert.pending.size;
    alert.titlePrefix = n ? S.t('alert.title', { n }) : '';
    const want = alert.titlePrefix + base;
    if (document.title !== want) document.title = want;
  }

  function compareUrgency(a, b) {
    return (a.priority || 9) - (b.priority || 9) || String(a.first).localeCompare(String(b.first));
  }

  // ---- the live store of incidents that the queue shows ----

  const store = {
    open: new Map(), // open incidents, kept always (the alert needs them)
    loaded: false,
    loading: null,
    listeners: new Set(),
  };

  function notify() {
    updateBadge();
    for (const fn of store.listeners) fn();
  }

  // The alarms tab counts the open incidents, loudly while one alerts.
  function updateBadge() {
    if (!S.setBadge) return;
    const n = store.open.size;
    S.setBadge('alarms', n ? String(n) : '', alert.pending.size ? 'alert' : '');
  }

  async function reloadOpen() {
    if (store.loading) return store.loading;
    const gen = generation;
    const loading = (async () => {
      try {
        const list = await listIncidents('open=true');
        if (gen !== generation) return; // the last session's answer
        store.open.clear();
        for (const inc of list) {
          store.open.set(inc.id, inc);
          consider(inc);
        }
        for (const id of [...alert.pending.keys()]) if (!store.open.has(id)) alert.pending.delete(id);
        store.loaded = true;
        renderAlert();
        notify();
      } finally {
        if (store.loading === loading) store.loading = null;
      }
    })();
    store.loading = loading;
    return loading;
  }

  // upsert takes an incident from the stream; it lacks area_path, live
  // camera state and "actions", so what a previous copy had is kept.
  function merge(prev, inc) {
    const out = Object.assign({}, prev || {}, inc);
    if (prev && prev.state !== inc.state && !inc.actions) delete out.actions;
    if (!inc.area_path && prev && prev.area === inc.area) out.area_path = prev.area_path;
    return out;
  }

  S.on('incident', (data) => {
    if (data && data.units) mergeUnits(data.units);
    const inc = incidentOf(data);
    if (!inc) return;
    if (isOpen(inc)) store.open.set(inc.id, merge(store.open.get(inc.id), inc));
    else store.open.delete(inc.id);
    consider(inc);
    renderAlert();
    notify();
  });
  S.on('resync', () => { if (S.me) reloadOpen().catch(() => {}); });
  // The stream opens right after login: load then, not on the next tick.
  S.on('connection', () => {
    if (S.me && !store.loaded) start();
  });

  // start loads the open incidents once someone is logged in: the alert
  // must work whatever view is in front.
  function start() {
    if (!S.me || store.loaded || store.loading) return;
    reloadOpen().catch(() => setTimeout(start, 5000));
    loadUnits().catch(() => {});
  }
  // stop forgets what the store holds: incidents, alerts, units, the
  // queue's recent list.
  function stop() {
    store.open.clear();
    store.loaded = false;
    store.loading = null;
    alert.pending.clear();
    alert.known.clear();
    units.clear();
    queue.recent = null;
    queue.error = null;
    queue.selected = '';
    renderAlert();
    notify();
  }

  // The store belongs to one login. generation counts the sessions, so
  // that an answer to the last one that comes in late is dropped. The
  // alerts the user silenced are theirs: the next user hears them (a
  // reload keeps them, being no logout).
  S.on('logout', () => {
    generation++;
    stop();
    alert.muted.clear();
    saveMuted();
  });
  S.on('session', () => {
    generation++;
    stop();
    start();
  });

  setInterval(() => {
    tickAges();
    if (S.me && !store.loaded) start();
  }, 1000);

  // The banner shows whatever view is in front: a language switch redraws
  // it here, not through the view's render.
  S.onLang(renderAlert);

  // The shell sets the title on every view change: put the prefix back.
  new MutationObserver(updateTitle).observe(document.querySelector('title') || document.head,
    { childList: true, characterData: true, subtree: true });

  // incidentLabel names an incident for people: its class and place when
  // it is open here, else its ID.
  function incidentLabel(id) {
    const inc = store.open.get(id);
    return inc ? label('class', inc.class) + ' · ' + (inc.device_name || inc.device) : id;
  }

  function incidentLink(id) {
    return el('a', { href: '#/alarms/' + encodeURIComponent(id), class: 'ops-inc-link', title: id,
      onclick: (ev) => { ev.preventDefault(); S.navigate('alarms', { id }); } }, incidentLabel(id));
  }
  S.ops.incidentLabel = incidentLabel;
  S.ops.incidentLink = incidentLink;

  S.ops.incidents = {
    store, reloadOpen, listIncidents, merge, consider, acknowledgeAlert,
    alertPending: () => alert.pending.size,
    onIncidentSeen(inc) { consider(inc); renderAlert(); },
  };

  // ---- the queue view ----

  const queue = {
    root: null,
    filter: 'open',
    recent: null, // Map for the "all recent" filter
    error: null, // the last failed load (an ApiError), said in the language of the moment
    selected: '',
    onKey: null,
    onChange: null,
  };

  const RECENT_LIMIT = 200;

  async function loadRecent() {
    const page = await S.api('GET', '/api/incidents?limit=' + RECENT_LIMIT);
    queue.recent = new Map((page.incidents || []).map((inc) => [inc.id, inc]));
  }

  function rows() {
    let list;
    if (queue.filter === 'open') {
      list = [...store.open.values()];
    } else {
      const m = new Map(queue.recent || []);
      for (const [id, inc] of store.open) m.set(id, merge(m.get(id), inc));
      list = [...m.values()];
    }
    return list.sort((a, b) => {
      const oa = isOpen(a) ? 0 : 1;
      const ob = isOpen(b) ? 0 : 1;
      if (oa !== ob) return oa - ob;
      if (oa === 1) return String(b.last || b.created).localeCompare(String(a.last || a.created));
      // The longest-waiting of the same priority first.
      return compareUrgency(a, b);
    });
  }

  function unitCell(inc) {
    if (inc.unit) return el('span', { class: 'ops-unit' }, unitName(inc.unit));
    if (inc.offer && inc.offer.unit) {
      return el('span', { class: 'ops-unit ops-offered' }, S.t('alarms.offered_to', { unit: unitName(inc.offer.unit) }));
    }
    return DASH;
  }

  function row(inc) {
    const open = () => S.navigate('alarms', { id: inc.id });
    const cls = ['clickable', 'ops-row-p' + (inc.priority || 0)];
    if (inc.id === queue.selected) cls.push('selected');
    if (!isOpen(inc)) cls.push('ops-closed');
    if (alert.pending.has(inc.id)) cls.push('ops-alerting');
    if (inc.kind === 'maintenance') cls.push('ops-maint');
    return el('tr', {
      class: cls.join(' '), tabindex: '0', 'data-testid': 'incident-row', 'data-incident': inc.id,
      'data-state': inc.state, onclick: open,
      onkeydown: (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); open(); } },
      onfocus: () => { queue.selected = inc.id; },
    },
    el('td', {}, prioBadge(inc.priority)),
    el('td', {}, classBadge(inc.class), inc.kind === 'maintenance'
      ? el('span', { class: 'muted ops-small' }, ' ', S.t('alarms.maintenance')) : null),
    el('td', { class: 'ops-place' },
      el('div', { class: 'ops-place-name' }, inc.device_name || inc.device,
        inc.address ? el('span', { class: 'muted' }, ' · ', inc.address) : null),
      el('div', { class: 'ops-small muted' }, areaPathText(inc))),
    el('td', { class: 'mono ops-small' }, inc.device),
    el('td', { class: 'ops-num' }, String(inc.count || 1)),
    el('td', {}, stateBadge(inc.state), inc.escalated && isOpen(inc)
      ? el('span', { class: 'ops-escalated', title: S.t('alarms.escalated') }, ' ⚠') : null),
    el('td', { class: 'ops-num' }, isOpen(inc) ? elapsed(inc.first || inc.created) : age(inc.last || inc.first)),
    el('td', {}, unitCell(inc)));
  }

  function renderQueue() {
    const root = queue.root;
    if (!root) return;
    const hadFocus = root.contains(document.activeElement) && document.activeElement.tagName === 'TR';
    clear(root);
    const select = el('select', { 'data-testid': 'alarms-filter', 'aria-label': S.t('alarms.filter'),
      onchange: (ev) => setFilter(ev.target.value) },
    el('option', { value: 'open', selected: queue.filter === 'open' }, S.t('alarms.filter.open')),
    el('option', { value: 'recent', selected: queue.filter === 'recent' }, S.t('alarms.filter.recent')));
    const list = queue.filter === 'recent' && !queue.recent ? null : rows();
    root.append(el('div', { class: 'toolbar' },
      el('h2', {}, S.t('alarms.heading')),
      el('label', { class: 'ops-field' }, S.t('alarms.filter'), ' ', select),
      el('span', { class: 'muted' }, list ? S.t('alarms.count', { n: list.length }) : ''),
      el('span', { class: 'spacer' }),
      el('span', { class: 'muted ops-small' }, S.t('alarms.keys'))));
    if (queue.error) root.append(el('p', { class: 'error-box ops-error', role: 'alert' }, errorText(queue.error)));
    if (!list || (!store.loaded && queue.filter === 'open')) {
      root.append(el('p', { class: 'muted ops-pad' }, S.t('alarms.loading')));
      return;
    }
    const cols = ['priority', 'class', 'place', 'device', 'count', 'state', 'age', 'unit'];
    const table = el('table', { class: 'table ops-queue', 'data-testid': 'incident-queue' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', { class: 'ops-col-' + c }, S.t('alarms.col.' + c))))),
      el('tbody', {}, list.map(row)));
    root.append(el('div', { class: 'table-wrap' }, table));
    if (!list.length) {
      root.append(el('p', { class: 'empty' }, S.t(queue.filter === 'open' ? 'alarms.empty.open' : 'alarms.empty.recent')));
    }
    if (hadFocus && queue.selected) {
      const tr = root.querySelector('tr[data-incident="' + CSS.escape(queue.selected) + '"]');
      if (tr) tr.focus({ preventScroll: true });
    }
  }

  async function setFilter(f) {
    queue.filter = f;
    queue.error = null;
    if (S.prefs) S.prefs.set('alarms_filter', f);
    renderQueue();
    if (f === 'recent') {
      try {
        await loadRecent();
      } catch (err) {
        queue.error = err;
      }
      renderQueue();
    }
  }

  // moveSelection moves the keyboard selection by d rows.
  function moveSelection(d) {
    const trs = [...queue.root.querySelectorAll('tr[data-incident]')];
    if (!trs.length) return;
    let i = trs.findIndex((tr) => tr.getAttribute('data-incident') === queue.selected);
    i = i < 0 ? 0 : Math.max(0, Math.min(trs.length - 1, i + d));
    queue.selected = trs[i].getAttribute('data-incident');
    trs[i].focus();
  }

  function queueKey(ev) {
    if (ev.target.closest('input, select, textarea, dialog') || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key === 'ArrowDown' || ev.key === 'j') { ev.preventDefault(); moveSelection(1); }
    if (ev.key === 'ArrowUp' || ev.key === 'k') { ev.preventDefault(); moveSelection(-1); }
  }

  function mountQueue(el0) {
    queue.root = el('div', { class: 'ops-view ops-queue-view', 'data-testid': 'alarms-view' });
    el0.append(queue.root);
    queue.filter = (S.prefs && S.prefs.get('alarms_filter')) === 'recent' ? 'recent' : 'open';
    queue.onChange = renderQueue;
    store.listeners.add(queue.onChange);
    queue.onKey = queueKey;
    document.addEventListener('keydown', queue.onKey);
    renderQueue();
    if (!store.loaded) {
      reloadOpen().catch((err) => { queue.error = err; renderQueue(); });
    }
    if (queue.filter === 'recent') setFilter('recent');
  }

  function unmountQueue() {
    if (queue.onChange) store.listeners.delete(queue.onChange);
    if (queue.onKey) document.removeEventListener('keydown', queue.onKey);
    queue.root = null;
    queue.onKey = null;
    queue.onChange = null;
  }

  // A stream change to a closed incident updates it in "all recent".
  S.on('incident', (data) => {
    const inc = incidentOf(data);
    if (inc && queue.recent) queue.recent.set(inc.id, merge(queue.recent.get(inc.id), inc));
  });
  S.on('resync', () => {
    if (queue.root && queue.filter === 'recent') setFilter('recent');
  });

  // The alarms view is the queue, or one incident (#/alarms/ID), drawn by
  // incident.js.
  function incidentId(params) {
    if (!params) return '';
    if (typeof params === 'string') return params;
    if (Array.isArray(params)) return params[0] || '';
    return params.id || '';
  }

  let current = null; // 'queue' or 'incident'
  S.registerView('alarms', {
    mount(root, params) {
      const id = incidentId(params);
      if (id && S.ops.incidentView) {
        current = 'incident';
        S.ops.incidentView.mount(root, id);
      } else {
        current = 'queue';
        mountQueue(root);
      }
    },
    unmount() {
      if (current === 'incident') S.ops.incidentView.unmount();
      else if (current === 'queue') unmountQueue();
      current = null;
    },
    render() {
      if (current === 'incident') S.ops.incidentView.render();
      else renderQueue();
    },
  });
}());
