// Devices and units: searchable tables of the alarm devices (with a
// device's recent events and rejected messages) and of the patrol units,
// kept fresh while in front.
'use strict';

(function () {
  const S = window.Skywatch;
  const O = S.ops;
  const { el, clear } = O;

  S.addStrings({
    'zh-CN': {
      'devices.heading': '报警设备',
      'devices.search': '搜索名称、编号、辖区…',
      'devices.filter.all': '全部',
      'devices.filter.offline': '离线',
      'devices.filter.battery': '电量低',
      'devices.filter.supervision': '监控丢失',
      'devices.filter.problem': '有异常',
      'devices.shown': '显示 {n} / 共 {total}',
      'devices.more': '仅显示前 {n} 条，请缩小搜索范围',
      'devices.empty': '没有符合条件的设备',
      'devices.col.name': '名称',
      'devices.col.id': '编号',
      'devices.col.area': '辖区',
      'devices.col.online': '在线',
      'devices.col.battery': '电量低',
      'devices.col.rssi': '信号',
      'devices.col.heartbeat': '最近心跳',
      'devices.col.event': '最近事件',
      'devices.col.supervision': '监控丢失',
      'devices.back': '← 设备列表',
      'devices.model': '型号',
      'devices.position': '位置',
      'devices.last_seen': '最近通信',
      'devices.supervision_since': '丢失时间',
      'devices.events': '最近事件',
      'devices.no_events': '没有事件',
      'devices.rejected': '被拒消息',
      'devices.no_rejected': '没有被拒消息',
      'devices.ev.time': '时间',
      'devices.ev.class': '类别',
      'devices.ev.qualifier': '类型',
      'devices.ev.code': '代码',
      'devices.ev.zone': '防区',
      'devices.ev.text': '说明',
      'devices.ev.source': '来源',
      'devices.rej.time': '时间',
      'devices.rej.topic': '主题',
      'devices.rej.reason': '原因',
      'devices.rej.payload': '内容',
      'qualifier.new': '触发',
      'qualifier.restore': '恢复',
      'units.heading': '巡逻单位',
      'units.search': '搜索名称、编号、辖区…',
      'units.filter.all': '全部状态',
      'units.shown': '显示 {n} / 共 {total}',
      'units.empty': '没有符合条件的单位',
      'units.col.name': '名称',
      'units.col.kind': '类型',
      'units.col.area': '辖区',
      'units.col.status': '状态',
      'units.col.reported': '位置上报',
      'units.col.incident': '当前警情',
      'lists.loading': '正在加载…',
      'lists.updated': '更新于 {time}',
    },
    en: {
      'devices.heading': 'Alarm devices',
      'devices.search': 'Search name, ID, area…',
      'devices.filter.all': 'All',
      'devices.filter.offline': 'Offline',
      'devices.filter.battery': 'Battery low',
      'devices.filter.supervision': 'Supervision lost',
      'devices.filter.problem': 'Any problem',
      'devices.shown': '{n} of {total} shown',
      'devices.more': 'Only the first {n} are shown: narrow the search',
      'devices.empty': 'No device matches',
      'devices.col.name': 'Name',
      'devices.col.id': 'ID',
      'devices.col.area': 'Area',
      'devices.col.online': 'Online',
      'devices.col.battery': 'Battery low',
      'devices.col.rssi': 'RSSI',
      'devices.col.heartbeat': 'Last heartbeat',
      'devices.col.event': 'Last event',
      'devices.col.supervision': 'Supervision lost',
      'devices.back': '← Devices',
      'devices.model': 'Model',
      'devices.position': 'Position',
      'devices.last_seen': 'Last heard',
      'devices.supervision_since': 'Lost since',
      'devices.events': 'Recent events',
      'devices.no_events': 'No events',
      'devices.rejected': 'Rejected messages',
      'devices.no_rejected': 'No rejected messages',
      'devices.ev.time': 'Time',
      'devices.ev.class': 'Class',
      'devices.ev.qualifier': 'Type',
      'devices.ev.code': 'Code',
      'devices.ev.zone': 'Zone',
      'devices.ev.text': 'Text',
      'devices.ev.source': 'Source',
      'devices.rej.time': 'Time',
      'devices.rej.topic': 'Topic',
      'devices.rej.reason': 'Reason',
      'devices.rej.payload': 'Payload',
      'qualifier.new': 'new',
      'qualifier.restore': 'restore',
      'units.heading': 'Patrol units',
      'units.search': 'Search name, ID, area…',
      'units.filter.all': 'Any status',
      'units.shown': '{n} of {total} shown',
      'units.empty': 'No unit matches',
      'units.col.name': 'Name',
      'units.col.kind': 'Kind',
      'units.col.area': 'Area',
      'units.col.status': 'Status',
      'units.col.reported': 'Position',
      'units.col.incident': 'Incident',
      'lists.loading': 'Loading…',
      'lists.updated': 'Updated {time}',
    },
  });

  const DEVICE_POLL_MS = 10000;
  const UNIT_POLL_MS = 5000;
  const MAX_ROWS = 500;
  const UNIT_STATES = ['available', 'offered', 'busy', 'off_duty', 'unavailable'];

  function param(params) {
    if (!params) return '';
    if (typeof params === 'string') return params;
    if (Array.isArray(params)) return params[0] || '';
    return params.id || '';
  }

  function matches(text, fields) {
    if (!text) return true;
    const q = text.toLowerCase();
    return fields.some((f) => f && String(f).toLowerCase().includes(q));
  }

  function mark(on, cls) {
    return on ? el('span', { class: 'ops-flag ' + cls }, S.t('common.yes')) : el('span', { class: 'muted' }, S.t('common.no'));
  }

  // table builds a table whose headers sort it (state.sort = {key, dir}).
  function sortableHead(cols, state, prefix, onSort) {
    return el('thead', {}, el('tr', {}, cols.map((c) => {
      const sorted = state.sort.key === c;
      return el('th', { class: 'ops-sortable', 'aria-sort': sorted ? (state.sort.dir > 0 ? 'ascending' : 'descending') : null,
        tabindex: '0', onclick: () => onSort(c),
        onkeydown: (ev) => { if (ev.key === 'Enter') onSort(c); } },
      S.t(prefix + c), sorted ? (state.sort.dir > 0 ? ' ▲' : ' ▼') : '');
    })));
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === undefined || a === null || a === '') return 1;
    if (b === undefined || b === null || b === '') return -1;
    return typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
  }

  function toolbar(state, heading, searchKey, filterOptions, onInput) {
    const search = el('input', { type: 'search', class: 'ops-search', placeholder: S.t(searchKey),
      'aria-label': S.t(searchKey), value: state.search, 'data-testid': 'list-search',
      oninput: (ev) => { state.search = ev.target.value; onInput(); } });
    const filter = el('select', { 'data-testid': 'list-filter', 'aria-label': S.t(searchKey),
      onchange: (ev) => { state.filter = ev.target.value; onInput(); } },
    filterOptions.map(([v, text]) => el('option', { value: v, selected: state.filter === v }, text)));
    state.count = el('span', { class: 'muted' });
    state.updated = el('span', { class: 'muted ops-small' });
    return el('div', { class: 'toolbar' }, el('h2', {}, S.t(heading)), search, filter, state.count,
      el('span', { class: 'spacer' }), state.updated);
  }

  // Pressing "/" goes to the search box of the list in front.
  function slashKey(state) {
    return (ev) => {
      if (ev.key !== '/' || ev.target.closest('input, textarea, select, dialog')) return;
      const box = state.root && state.root.querySelector('.ops-search');
      if (box) { ev.preventDefault(); box.focus(); }
    };
  }

  // ---- devices ----

  const dev = {
    root: null, id: '', list: null, detail: null, rejected: null, error: '', search: '', filter: 'all',
    sort: { key: 'name', dir: 1 }, timer: null, onKey: null, body: null, count: null, updated: null, loadedAt: '',
  };

  const DEVICE_COLS = ['name', 'id', 'area', 'online', 'battery', 'rssi', 'heartbeat', 'event', 'supervision'];

  function deviceValue(d, key) {
    const st = d.state || {};
    switch (key) {
      case 'name': return d.name || d.id;
      case 'id': return d.id;
      case 'area': return O.areaName(d.area);
      case 'online': return st.online ? 1 : 0;
      case 'battery': return st.battery_low ? 0 : 1;
      case 'rssi': return typeof st.rssi === 'number' ? st.rssi : null;
      case 'heartbeat': return st.last_heartbeat || '';
      case 'event': return st.last_event || '';
      case 'supervision': return st.supervision_lost ? 0 : 1;
    }
    return '';
  }

  function deviceFiltered() {
    return (dev.list || []).filter((d) => {
      const st = d.state || {};
      switch (dev.filter) {
        case 'offline': if (st.online) return false; break;
        case 'battery': if (!st.battery_low) return false; break;
        case 'supervision': if (!st.supervision_lost) return false; break;
        case 'problem': if (st.online && !st.battery_low && !st.supervision_lost) return false; break;
      }
      return matches(dev.search, [d.name, d.id, d.area, O.areaName(d.area), d.model]);
    });
  }

  function renderDevices() {
    if (!dev.root) return;
    if (dev.id) { renderDevice(); return; }
    clear(dev.root);
    dev.root.append(toolbar(dev, 'devices.heading', 'devices.search',
      ['all', 'offline', 'battery', 'supervision', 'problem'].map((f) => [f, S.t('devices.filter.' + f)]), renderDeviceRows));
    dev.body = el('div', { class: 'table-wrap' });
    dev.root.append(dev.body);
    renderDeviceRows();
  }

  function renderDeviceRows() {
    if (!dev.body) return;
    const focused = document.activeElement && dev.body.contains(document.activeElement)
      ? document.activeElement.getAttribute('data-device') : null;
    clear(dev.body);
    if (dev.error) dev.body.append(el('p', { class: 'error-box ops-error', role: 'alert' }, dev.error));
    if (!dev.list) { dev.body.append(el('p', { class: 'muted ops-pad' }, S.t('lists.loading'))); return; }
    const list = deviceFiltered();
    const { key, dir } = dev.sort;
    list.sort((a, b) => dir * compare(deviceValue(a, key), deviceValue(b, key)) || compare(a.id, b.id));
    dev.count.textContent = S.t('devices.shown', { n: Math.min(list.length, MAX_ROWS), total: dev.list.length });
    dev.updated.textContent = dev.loadedAt ? S.t('lists.updated', { time: S.fmtTime(dev.loadedAt) }) : '';
    const onSort = (c) => {
      dev.sort = { key: c, dir: dev.sort.key === c ? -dev.sort.dir : 1 };
      renderDeviceRows();
    };
    dev.body.append(el('table', { class: 'table ops-devices', 'data-testid': 'devices-table' },
      sortableHead(DEVICE_COLS, dev, 'devices.col.', onSort),
      el('tbody', {}, list.slice(0, MAX_ROWS).map((d) => {
        const st = d.state || {};
        const open = () => S.navigate('devices', { id: d.id });
        return el('tr', { class: 'clickable' + (st.online ? '' : ' ops-offline'), tabindex: '0', 'data-testid': 'device-row',
          'data-device': d.id, onclick: open, onkeydown: (ev) => { if (ev.key === 'Enter') open(); } },
        el('td', {}, d.name || d.id),
        el('td', { class: 'mono ops-small' }, d.id),
        el('td', {}, O.areaName(d.area)),
        el('td', {}, el('span', { class: 'dot ' + (st.online ? 'dot-ok' : 'dot-muted') }), ' ',
          S.t(st.online ? 'common.yes' : 'common.no')),
        el('td', {}, mark(st.battery_low, 'ops-flag-warn')),
        el('td', { class: 'ops-num' }, typeof st.rssi === 'number' ? st.rssi + ' dBm' : O.DASH),
        el('td', { class: 'ops-num' }, O.age(st.last_heartbeat)),
        el('td', { class: 'ops-num' }, O.age(st.last_event)),
        el('td', {}, mark(st.supervision_lost, 'ops-flag-bad')));
      }))));
    if (focused) {
      const tr = dev.body.querySelector('tr[data-device="' + CSS.escape(focused) + '"]');
      if (tr) tr.focus({ preventScroll: true });
    }
    if (list.length > MAX_ROWS) dev.body.append(el('p', { class: 'muted ops-pad' }, S.t('devices.more', { n: MAX_ROWS })));
    if (!list.length) dev.body.append(el('p', { class: 'empty' }, S.t('devices.empty')));
  }

  async function loadDevices() {
    const root = dev.root;
    try {
      const list = await S.api('GET', '/api/devices') || [];
      if (dev.root !== root) return; // left, or another session's
      dev.list = list;
      dev.loadedAt = new Date().toISOString();
      dev.error = '';
    } catch (err) {
      if (dev.root !== root) return;
      dev.error = O.errorText(err);
    }
    if (dev.root && !dev.id) renderDeviceRows();
  }

  async function loadDevice() {
    const id = dev.id;
    const root = dev.root;
    try {
      const [d, rej] = await Promise.all([
        S.api('GET', '/api/devices/' + encodeURIComponent(id)),
        S.api('GET', '/api/rejected?limit=50&device=' + encodeURIComponent(id)).catch(() => []),
      ]);
      if (id !== dev.id || root !== dev.root) return;
      dev.detail = d;
      dev.rejected = Array.isArray(rej) ? rej : [];
      dev.error = '';
    } catch (err) {
      if (id !== dev.id || root !== dev.root) return;
      dev.error = O.errorText(err);
    }
    renderDevice();
  }

  function fact(key, value) {
    return el('div', { class: 'ops-fact' }, el('span', { class: 'ops-fact-k' }, S.t(key)), el('span', { class: 'ops-fact-v' }, value));
  }

  function renderDevice() {
    if (!dev.root) return;
    clear(dev.root);
    const back = el('a', { href: '#/devices', class: 'ops-back', 'data-testid': 'device-back',
      onclick: (ev) => { ev.preventDefault(); S.navigate('devices'); } }, S.t('devices.back'));
    const d = dev.detail;
    if (!d || d.id !== dev.id) {
      dev.root.append(el('div', { class: 'toolbar' }, back),
        el('p', { class: dev.error ? 'ops-error' : 'ops-muted ops-pad' }, dev.error || S.t('lists.loading')));
      return;
    }
    const st = d.state || {};
    dev.root.append(el('div', { class: 'ops-device', 'data-testid': 'device-detail', 'data-device': d.id },
      el('div', { class: 'toolbar' }, back, el('h2', {}, d.name || d.id), el('span', { class: 'mono muted' }, d.id)),
      dev.error ? el('p', { class: 'error-box ops-error', role: 'alert' }, dev.error) : null,
      el('div', { class: 'ops-facts' },
        fact('devices.col.area', O.areaName(d.area)),
        fact('devices.model', d.model || O.DASH),
        fact('devices.position', typeof d.lat === 'number' ? d.lat.toFixed(5) + ', ' + d.lon.toFixed(5) : O.DASH),
        fact('devices.col.online', [el('span', { class: 'dot ' + (st.online ? 'dot-ok' : 'dot-muted') }), ' ',
          S.t(st.online ? 'common.yes' : 'common.no')]),
        fact('devices.last_seen', O.age(st.last_seen)),
        fact('devices.col.heartbeat', O.age(st.last_heartbeat)),
        fact('devices.col.event', O.age(st.last_event)),
        fact('devices.col.battery', mark(st.battery_low, 'ops-flag-warn')),
        fact('devices.col.rssi', typeof st.rssi === 'number' ? st.rssi + ' dBm' : O.DASH),
        fact('devices.col.supervision', [mark(st.supervision_lost, 'ops-flag-bad'),
          st.supervision_lost && st.supervision_since ? [' · ', O.age(st.supervision_since)] : null])),
      el('h3', {}, S.t('devices.events')),
      eventsTable(d.last_events || []),
      el('h3', {}, S.t('devices.rejected')),
      rejectedTable(dev.rejected || [])));
  }

  function eventsTable(events) {
    if (!events.length) return el('p', { class: 'muted' }, S.t('devices.no_events'));
    const cols = ['time', 'class', 'qualifier', 'code', 'zone', 'text', 'source'];
    return el('table', { class: 'table table-dense', 'data-testid': 'device-events' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', {}, S.t('devices.ev.' + c))))),
      el('tbody', {}, events.map((e) => el('tr', { class: e.qualifier === 'restore' ? 'ops-muted' : '' },
        el('td', { class: 'ops-num', title: S.fmtDateTime(e.received_at) }, S.fmtDateTime(e.received_at)),
        el('td', {}, O.classBadge(e.class)),
        el('td', {}, O.label('qualifier', e.qualifier)),
        el('td', { class: 'mono' }, e.code || ''),
        el('td', {}, [e.zone, e.partition].filter(Boolean).join(' / ')),
        el('td', { class: 'ops-small' }, e.text || '', e.battery_low ? el('span', { class: 'ops-flag ops-flag-warn' }, ' ',
          S.t('devices.col.battery')) : null),
        el('td', { class: 'muted ops-small' }, e.source || '')))));
  }

  function rejectedTable(list) {
    if (!list.length) return el('p', { class: 'muted' }, S.t('devices.no_rejected'));
    const cols = ['time', 'topic', 'reason', 'payload'];
    return el('table', { class: 'table table-dense', 'data-testid': 'device-rejected' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', {}, S.t('devices.rej.' + c))))),
      el('tbody', {}, list.map((r) => el('tr', {},
        el('td', { class: 'ops-num' }, S.fmtDateTime(r.received_at)),
        el('td', { class: 'mono ops-small' }, r.topic),
        el('td', {}, r.reason),
        el('td', { class: 'mono ops-small ops-payload', title: r.payload_encoding || '' },
          (r.payload || '').slice(0, 300) + ((r.payload || '').length > 300 || r.truncated ? '…' : ''))))));
  }

  // A stored event updates the device's "last event" at once and, for the
  // device in front, its recent events.
  S.on('alarm', (e) => {
    if (!e || !e.device) return;
    if (dev.list) {
      const d = dev.list.find((x) => x.id === e.device);
      if (d) {
        d.state = Object.assign({}, d.state, { last_event: e.received_at, last_seen: e.received_at });
        if (dev.root && !dev.id) renderDeviceRows();
      }
    }
    if (dev.root && dev.id === e.device && dev.detail) {
      const evs = dev.detail.last_events || [];
      if (!evs.some((x) => x.id === e.id)) {
        dev.detail.last_events = [e, ...evs].slice(0, 50);
        dev.detail.state = Object.assign({}, dev.detail.state, { last_event: e.received_at });
        renderDevice();
      }
    }
  });

  S.registerView('devices', {
    mount(root, params) {
      dev.root = el('div', { class: 'ops-view ops-list-view', 'data-testid': 'devices-view' });
      root.append(dev.root);
      dev.id = param(params);
      dev.detail = null;
      dev.rejected = null;
      dev.onKey = slashKey(dev);
      document.addEventListener('keydown', dev.onKey);
      renderDevices();
      if (dev.id) {
        loadDevice();
        dev.timer = setInterval(loadDevice, DEVICE_POLL_MS);
      } else {
        loadDevices();
        dev.timer = setInterval(loadDevices, DEVICE_POLL_MS);
      }
    },
    unmount() {
      clearInterval(dev.timer);
      document.removeEventListener('keydown', dev.onKey);
      dev.root = null;
      dev.body = null;
    },
    render: renderDevices,
  });

  // ---- units ----

  const uv = {
    root: null, list: null, error: '', search: '', filter: 'all', sort: { key: 'status', dir: 1 },
    timer: null, onUnits: null, onKey: null, body: null, count: null, updated: null, loadedAt: '',
  };

  const UNIT_COLS = ['name', 'kind', 'area', 'status', 'reported', 'incident'];

  function unitValue(u, key) {
    switch (key) {
      case 'name': return u.name || u.id;
      case 'kind': return O.label('ukind', u.kind);
      case 'area': return O.areaName(u.area);
      case 'status': return UNIT_STATES.indexOf(u.status);
      case 'reported': return u.reported ? -Date.parse(u.reported) : null;
      case 'incident': return u.incident || '';
    }
    return '';
  }

  function renderUnits() {
    if (!uv.root) return;
    clear(uv.root);
    uv.root.append(toolbar(uv, 'units.heading', 'units.search',
      [['all', S.t('units.filter.all')], ...UNIT_STATES.map((st) => [st, O.label('ustatus', st)])], renderUnitRows));
    uv.body = el('div', { class: 'table-wrap' });
    uv.root.append(uv.body);
    renderUnitRows();
  }

  function renderUnitRows() {
    if (!uv.body) return;
    clear(uv.body);
    if (uv.error) uv.body.append(el('p', { class: 'error-box ops-error', role: 'alert' }, uv.error));
    if (!uv.list) { uv.body.append(el('p', { class: 'muted ops-pad' }, S.t('lists.loading'))); return; }
    const list = uv.list.filter((u) => (uv.filter === 'all' || u.status === uv.filter) &&
      matches(uv.search, [u.name, u.id, u.area, O.areaName(u.area), O.label('ukind', u.kind), u.incident]));
    const { key, dir } = uv.sort;
    list.sort((a, b) => dir * compare(unitValue(a, key), unitValue(b, key)) || compare(a.name || a.id, b.name || b.id));
    uv.count.textContent = S.t('units.shown', { n: list.length, total: uv.list.length });
    uv.updated.textContent = uv.loadedAt ? S.t('lists.updated', { time: S.fmtTime(uv.loadedAt) }) : '';
    const onSort = (c) => {
      uv.sort = { key: c, dir: uv.sort.key === c ? -uv.sort.dir : 1 };
      renderUnitRows();
    };
    uv.body.append(el('table', { class: 'table ops-units', 'data-testid': 'units-table' },
      sortableHead(UNIT_COLS, uv, 'units.col.', onSort),
      el('tbody', {}, list.map((u) => el('tr', { 'data-testid': 'unit-row', 'data-unit': u.id, 'data-status': u.status || '' },
        el('td', {}, u.name || u.id, u.name && u.name !== u.id ? el('span', { class: 'muted ops-small mono' }, ' ', u.id) : null),
        el('td', {}, O.label('ukind', u.kind)),
        el('td', {}, O.areaName(u.area)),
        el('td', {}, O.unitStatusBadge(u.status)),
        el('td', { class: 'ops-num' }, O.age(u.reported)),
        el('td', {}, u.incident ? O.incidentLink(u.incident) : O.DASH))))));
    if (!list.length) uv.body.append(el('p', { class: 'empty' }, S.t('units.empty')));
  }

  async function loadUnitList() {
    const root = uv.root;
    try {
      await O.loadUnits(); // calls onUnits through the listeners
      if (uv.root !== root) return;
      uv.loadedAt = new Date().toISOString();
      uv.error = '';
    } catch (err) {
      if (uv.root !== root) return;
      uv.error = O.errorText(err);
      renderUnitRows();
    }
  }

  // Nothing of one user's lists is shown to the next: the lists, their
  // search and filter go with the logout.
  S.on('logout', () => {
    Object.assign(dev, { list: null, detail: null, rejected: null, error: '', search: '', filter: 'all',
      sort: { key: 'name', dir: 1 }, loadedAt: '' });
    Object.assign(uv, { list: null, error: '', search: '', filter: 'all', sort: { key: 'status', dir: 1 }, loadedAt: '' });
  });

  S.registerView('units', {
    mount(root) {
      uv.root = el('div', { class: 'ops-view ops-list-view', 'data-testid': 'units-view' });
      root.append(uv.root);
      uv.list = O.units.size ? [...O.units.values()] : null;
      uv.onUnits = () => { uv.list = [...O.units.values()]; renderUnitRows(); };
      O.unitListeners.add(uv.onUnits);
      uv.onKey = slashKey(uv);
      document.addEventListener('keydown', uv.onKey);
      renderUnits();
      loadUnitList();
      uv.timer = setInterval(loadUnitList, UNIT_POLL_MS);
    },
    unmount() {
      clearInterval(uv.timer);
      O.unitListeners.delete(uv.onUnits);
      document.removeEventListener('keydown', uv.onKey);
      uv.root = null;
      uv.body = null;
    },
    render: renderUnits,
  });
}());
