// Situation map: areas, cameras, alarm devices, patrol units and open
// incidents drawn in SVG with a Web Mercator projection, fitted to the
// jurisdiction. It needs no map tiles (command centres run on closed
// networks); when the server names a tile URL template, tiles are drawn
// under the vector layers.
'use strict';

(function () {
  const S = window.Skywatch;
  const O = S.ops;
  const { el, clear, append } = O;

  S.addStrings({
    'zh-CN': {
      'map.loading': '正在加载地图数据…',
      'map.zoom_in': '放大',
      'map.zoom_out': '缩小',
      'map.fit': '全览辖区',
      'map.legend': '图例',
      'map.layer.areas': '辖区边界',
      'map.layer.cameras': '摄像机',
      'map.layer.devices': '报警设备',
      'map.layer.units': '巡逻单位',
      'map.layer.incidents': '未结警情',
      'map.camera.online': '在线',
      'map.camera.offline': '待机/故障',
      'map.device.ok': '正常',
      'map.device.trouble': '离线/低电/掉线',
      'map.keys': '滚轮缩放 · 拖动平移 · +/− 缩放 · 方向键平移 · 0 全览',
      'map.popup.play': '全屏播放',
      'map.popup.incident': '打开警情',
      'map.popup.device': '设备详情',
      'map.popup.status': '状态',
      'map.popup.area': '辖区',
      'map.popup.address': '地址',
      'map.popup.online': '在线',
      'map.popup.battery_low': '电量低',
      'map.popup.supervision_lost': '监控丢失',
      'map.popup.last_event': '最近事件',
      'map.popup.reported': '位置上报',
      'map.popup.incident_of_unit': '当前警情',
      'map.popup.kind': '类型',
      'map.popup.age': '时长',
      'map.popup.count': '次数',
      'map.no_position': '{n} 个对象没有坐标，未显示',
      'map.player.close': '关闭（Esc）',
      'map.error': '加载失败：{msg}',
    },
    en: {
      'map.loading': 'Loading map data…',
      'map.zoom_in': 'Zoom in',
      'map.zoom_out': 'Zoom out',
      'map.fit': 'Fit the jurisdiction',
      'map.legend': 'Legend',
      'map.layer.areas': 'Area boundaries',
      'map.layer.cameras': 'Cameras',
      'map.layer.devices': 'Alarm devices',
      'map.layer.units': 'Patrol units',
      'map.layer.incidents': 'Open incidents',
      'map.camera.online': 'online',
      'map.camera.offline': 'standby / fault',
      'map.device.ok': 'normal',
      'map.device.trouble': 'offline / battery / supervision',
      'map.keys': 'Wheel zooms · drag pans · +/− zoom · arrows pan · 0 fits',
      'map.popup.play': 'Play full screen',
      'map.popup.incident': 'Open the incident',
      'map.popup.device': 'Device details',
      'map.popup.status': 'Status',
      'map.popup.area': 'Area',
      'map.popup.address': 'Address',
      'map.popup.online': 'Online',
      'map.popup.battery_low': 'Battery low',
      'map.popup.supervision_lost': 'Supervision lost',
      'map.popup.last_event': 'Last event',
      'map.popup.reported': 'Position',
      'map.popup.incident_of_unit': 'Incident',
      'map.popup.kind': 'Kind',
      'map.popup.age': 'Age',
      'map.popup.count': 'Count',
      'map.no_position': '{n} object(s) without a position are not shown',
      'map.player.close': 'Close (Esc)',
      'map.error': 'Loading failed: {msg}',
    },
  });

  const TILE = 256; // world size at zoom 0, in pixels
  const MIN_Z = 2;
  const MAX_Z = 20;
  const UNIT_POLL_MS = 5000;
  const CAMERA_POLL_MS = 15000;
  const DEVICE_POLL_MS = 30000;
  const LAYERS = ['areas', 'incidents', 'units', 'cameras', 'devices'];
  const UNIT_STATES = ['available', 'offered', 'busy', 'off_duty', 'unavailable'];

  // What survives leaving the view, until the user logs out: where the
  // operator was looking and which layers were on.
  const ALL_LAYERS = { areas: true, cameras: true, devices: true, units: true, incidents: true };
  const keep = { view: null, visible: Object.assign({}, ALL_LAYERS) };

  const m = {
    root: null,
    svg: null,
    world: null, // <g> moved while dragging
    layer: {}, // name -> <g>
    marks: {}, // layer name -> Map(id -> <g>)
    data: { areas: [], cameras: [], devices: [], units: [] },
    size: { w: 0, h: 0 },
    view: null, // {z, cx, cy}: zoom and centre in zoom-0 world pixels
    drag: null,
    popup: null,
    overlay: null,
    legend: null,
    controls: null,
    status: null,
    loaded: false,
    error: '',
    timers: [],
    frame: 0,
    resize: null,
    onUnits: null,
    onIncidents: null,
  };

  // project gives zoom-0 world pixels of a position (Web Mercator).
  function project(lat, lon) {
    const la = Math.max(-85.05, Math.min(85.05, lat)) * Math.PI / 180;
    return {
      x: (lon + 180) / 360 * TILE,
      y: (0.5 - Math.log((1 + Math.sin(la)) / (1 - Math.sin(la))) / (4 * Math.PI)) * TILE,
    };
  }

  function toScreen(p) {
    const k = 2 ** m.view.z;
    return { x: (p.x - m.view.cx) * k + m.size.w / 2, y: (p.y - m.view.cy) * k + m.size.h / 2 };
  }

  function hasPos(o) {
    return o && typeof o.lat === 'number' && typeof o.lon === 'number' && !(o.lat === 0 && o.lon === 0);
  }

  // ring is an area's boundary as [lat, lon] points: its polygon, or its
  // circle as a polygon of 72 points.
  function ring(area) {
    const b = area.boundary || {};
    if (b.polygon && b.polygon.length >= 3) return b.polygon;
    if (b.centre && b.radius_m > 0) {
      const [lat, lon] = b.centre;
      const d = b.radius_m / 6371008.8 * 180 / Math.PI;
      const pts = [];
      for (let i = 0; i < 72; i++) {
        const a = i / 72 * 2 * Math.PI;
        pts.push([lat + d * Math.cos(a), lon + d * Math.sin(a) / Math.cos(lat * Math.PI / 180)]);
      }
      return pts;
    }
    return null;
  }

  // ---- mounting and data ----

  function mount(root) {
    m.root = el('div', { class: 'ops-view ops-map', 'data-testid': 'map-view', tabindex: '0', onkeydown: onKey });
    m.svg = el('svg:svg', { class: 'ops-map-svg', 'data-testid': 'map-svg' });
    m.world = el('svg:g', {});
    m.layer = {};
    m.marks = {};
    // Bottom to top: what needs attention is drawn last.
    for (const name of ['tiles', 'areas', 'devices', 'cameras', 'units', 'incidents', 'labels']) {
      m.layer[name] = el('svg:g', { class: 'ops-layer-' + name });
      m.marks[name] = new Map();
      m.world.append(m.layer[name]);
    }
    m.svg.append(m.world);
    m.legend = el('div', { class: 'ops-map-legend', 'data-testid': 'map-legend' });
    m.status = el('div', { class: 'ops-map-status', 'aria-live': 'polite' });
    const controls = m.controls = el('div', { class: 'ops-map-controls' },
      el('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'map-zoom-in', title: S.t('map.zoom_in'), onclick: () => zoomBy(1) }, '+'),
      el('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'map-zoom-out', title: S.t('map.zoom_out'), onclick: () => zoomBy(-1) }, '−'),
      el('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'map-fit', title: S.t('map.fit'), onclick: fit }, '⤢'));
    m.root.append(m.svg, controls, m.legend, m.status);
    root.append(m.root);

    m.svg.addEventListener('wheel', onWheel, { passive: false });
    m.svg.addEventListener('pointerdown', onPointerDown);
    m.svg.addEventListener('pointermove', onPointerMove);
    m.svg.addEventListener('pointerup', onPointerUp);
    m.svg.addEventListener('pointercancel', onPointerUp);
    m.resize = new ResizeObserver(() => {
      const r = m.svg.getBoundingClientRect();
      if (r.width === m.size.w && r.height === m.size.h) return;
      m.size = { w: r.width, h: r.height };
      if (!m.view && m.loaded) fit();
      else schedule();
    });
    m.resize.observe(m.svg);

    m.onUnits = () => { m.data.units = [...O.units.values()]; schedule(); };
    O.unitListeners.add(m.onUnits);
    m.onIncidents = schedule;
    O.incidents.store.listeners.add(m.onIncidents);

    m.view = keep.view;
    m.loaded = false;
    renderLegend();
    load();
    m.timers.push(setInterval(() => loadOne('units'), UNIT_POLL_MS));
    m.timers.push(setInterval(() => loadOne('cameras'), CAMERA_POLL_MS));
    m.timers.push(setInterval(() => loadOne('devices'), DEVICE_POLL_MS));
    m.timers.push(setInterval(refreshPopup, 1000));
  }

  function unmount() {
    keep.view = m.view;
    for (const t of m.timers) clearInterval(t);
    m.timers = [];
    cancelAnimationFrame(m.frame);
    m.frame = 0;
    if (m.resize) m.resize.disconnect();
    O.unitListeners.delete(m.onUnits);
    O.incidents.store.listeners.delete(m.onIncidents);
    closePlayer();
    m.root = null;
    m.svg = null;
    m.popup = null;
    m.view = null;
    m.size = { w: 0, h: 0 };
  }

  const SOURCES = {
    areas: async () => (S.areas && S.areas.length ? S.areas : S.api('GET', '/api/areas')),
    cameras: () => S.api('GET', '/api/cameras'),
    devices: () => S.api('GET', '/api/devices'),
    units: async () => [...(await O.loadUnits()).values()],
  };

  async function loadOne(name) {
    const root = m.root;
    try {
      const list = await SOURCES[name]();
      if (!root || m.root !== root) return; // left, or another session's
      m.data[name] = Array.isArray(list) ? list : [];
      m.error = '';
    } catch (err) {
      if (!root || m.root !== root) return;
      m.error = S.t('map.error', { msg: O.errorText(err) });
    }
    schedule();
  }

  async function load() {
    m.status.textContent = S.t('map.loading');
    await Promise.all(Object.keys(SOURCES).map(loadOne));
    if (!m.root) return;
    m.loaded = true;
    if (!O.incidents.store.loaded) O.incidents.reloadOpen().catch(() => {});
    if (!m.view && m.size.w) fit();
    else schedule();
  }

  // ---- the view: fit, zoom, pan ----

  function bounds() {
    let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity;
    const add = (lat, lon) => {
      const p = project(lat, lon);
      x0 = Math.min(x0, p.x); y0 = Math.min(y0, p.y); x1 = Math.max(x1, p.x); y1 = Math.max(y1, p.y);
    };
    for (const a of m.data.areas) for (const [lat, lon] of ring(a) || []) add(lat, lon);
    if (x0 === Infinity) {
      for (const name of ['cameras', 'devices', 'units']) for (const o of m.data[name]) if (hasPos(o)) add(o.lat, o.lon);
      for (const inc of O.incidents.store.open.values()) if (hasPos(inc)) add(inc.lat, inc.lon);
    }
    return x0 === Infinity ? null : { x0, y0, x1, y1 };
  }

  function fit() {
    if (!m.root || !m.size.w) return;
    const b = bounds();
    if (!b) {
      m.view = { z: 3, cx: TILE / 2, cy: TILE / 2 };
    } else {
      const pad = 40;
      const dx = Math.max(b.x1 - b.x0, 1e-9);
      const dy = Math.max(b.y1 - b.y0, 1e-9);
      const z = Math.log2(Math.min((m.size.w - 2 * pad) / dx, (m.size.h - 2 * pad) / dy));
      m.view = { z: clampZ(z), cx: (b.x0 + b.x1) / 2, cy: (b.y0 + b.y1) / 2 };
    }
    schedule();
  }

  function clampZ(z) { return Math.max(MIN_Z, Math.min(MAX_Z, isFinite(z) ? z : MAX_Z)); }

  // zoomAt changes the zoom keeping the world point under (sx, sy) still.
  function zoomAt(z, sx, sy) {
    if (!m.view) return;
    const k0 = 2 ** m.view.z;
    const wx = m.view.cx + (sx - m.size.w / 2) / k0;
    const wy = m.view.cy + (sy - m.size.h / 2) / k0;
    const nz = clampZ(z);
    const k1 = 2 ** nz;
    m.view = { z: nz, cx: wx - (sx - m.size.w / 2) / k1, cy: wy - (sy - m.size.h / 2) / k1 };
    closePopup();
    schedule();
  }

  function zoomBy(d) { if (m.view) zoomAt(m.view.z + d, m.size.w / 2, m.size.h / 2); }

  function panBy(dx, dy) {
    if (!m.view) return;
    const k = 2 ** m.view.z;
    m.view = { z: m.view.z, cx: m.view.cx - dx / k, cy: m.view.cy - dy / k };
    schedule();
  }

  function onWheel(ev) {
    ev.preventDefault();
    const r = m.svg.getBoundingClientRect();
    const d = ev.deltaMode === 1 ? ev.deltaY * 20 : ev.deltaY;
    zoomAt(m.view.z - d * 0.002, ev.clientX - r.left, ev.clientY - r.top);
  }

  const DRAG_SLOP = 4;

  function onPointerDown(ev) {
    if (ev.button !== 0 || !m.view) return;
    m.drag = { id: ev.pointerId, x: ev.clientX, y: ev.clientY, moved: false, target: ev.target };
  }

  function onPointerMove(ev) {
    const d = m.drag;
    if (!d || d.id !== ev.pointerId) return;
    const dx = ev.clientX - d.x;
    const dy = ev.clientY - d.y;
    if (!d.moved && Math.hypot(dx, dy) < DRAG_SLOP) return;
    if (!d.moved) {
      d.moved = true;
      m.svg.setPointerCapture(ev.pointerId);
      m.svg.classList.add('ops-dragging');
      closePopup();
    }
    // Move the drawn world only; the layers are laid out again on release.
    m.world.setAttribute('transform', 'translate(' + dx + ',' + dy + ')');
  }

  function onPointerUp(ev) {
    const d = m.drag;
    if (!d || d.id !== ev.pointerId) return;
    m.drag = null;
    m.svg.classList.remove('ops-dragging');
    if (d.moved) {
      m.world.removeAttribute('transform');
      panBy(ev.clientX - d.x, ev.clientY - d.y);
      return;
    }
    const mark = d.target.closest && d.target.closest('[data-kind]');
    if (mark) openPopup(mark.getAttribute('data-kind'), mark.getAttribute('data-id'), ev);
    else closePopup();
  }

  function onKey(ev) {
    if (ev.target.closest('input, select, textarea, button, a') || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const step = 80;
    const keys = {
      '+': () => zoomBy(1), '=': () => zoomBy(1), '-': () => zoomBy(-1), '0': fit, Home: fit,
      ArrowLeft: () => panBy(step, 0), ArrowRight: () => panBy(-step, 0),
      ArrowUp: () => panBy(0, step), ArrowDown: () => panBy(0, -step), Escape: closePopup,
    };
    if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
  }

  // ---- drawing ----

  function schedule() {
    if (!m.root || m.frame) return;
    m.frame = requestAnimationFrame(() => { m.frame = 0; draw(); });
  }

  function draw() {
    if (!m.root) return;
    if (!m.view) return;
    for (const name of LAYERS) m.layer[name].setAttribute('display', keep.visible[name] ? 'inline' : 'none');
    m.layer.labels.setAttribute('display', keep.visible.areas ? 'inline' : 'none');
    drawTiles();
    drawAreas();
    let missing = 0;
    missing += drawMarks('cameras', m.data.cameras, cameraMark);
    missing += drawMarks('devices', m.data.devices, deviceMark);
    missing += drawMarks('units', m.data.units, unitMark);
    drawMarks('incidents', [...O.incidents.store.open.values()], incidentMark);
    const msgs = [];
    if (m.error) msgs.push(m.error);
    if (missing) msgs.push(S.t('map.no_position', { n: missing }));
    m.status.textContent = msgs.join(' · ');
    m.status.classList.toggle('ops-error', !!m.error);
    renderLegend();
  }

  function drawTiles() {
    const g = m.layer.tiles;
    const url = S.me && S.me.map && S.me.map.tile_url;
    if (!url) {
      if (g.firstChild) clear(g);
      return;
    }
    const tz = Math.max(0, Math.min(19, Math.round(m.view.z)));
    const n = 2 ** tz;
    const size = TILE * 2 ** (m.view.z - tz); // a tile on screen
    const k = 2 ** m.view.z;
    const left = m.view.cx - m.size.w / 2 / k;
    const top = m.view.cy - m.size.h / 2 / k;
    const tx0 = Math.max(0, Math.floor(left / TILE * n));
    const ty0 = Math.max(0, Math.floor(top / TILE * n));
    const tx1 = Math.min(n - 1, Math.floor((left + m.size.w / k) / TILE * n));
    const ty1 = Math.min(n - 1, Math.floor((top + m.size.h / k) / TILE * n));
    const want = new Map();
    for (let x = tx0; x <= tx1; x++) {
      for (let y = ty0; y <= ty1; y++) want.set(tz + '/' + x + '/' + y, { x, y });
    }
    const have = m.marks.tiles;
    for (const [key, img] of have) if (!want.has(key)) { img.remove(); have.delete(key); }
    for (const [key, t] of want) {
      let img = have.get(key);
      if (!img) {
        const href = url.replace('{z}', tz).replace('{x}', t.x).replace('{y}', t.y);
        img = el('svg:image', { href, preserveAspectRatio: 'none' });
        have.set(key, img);
        g.append(img);
      }
      const p = toScreen({ x: t.x * TILE / n, y: t.y * TILE / n });
      img.setAttribute('x', p.x.toFixed(1));
      img.setAttribute('y', p.y.toFixed(1));
      img.setAttribute('width', (size + 0.5).toFixed(1));
      img.setAttribute('height', (size + 0.5).toFixed(1));
    }
  }

  function drawAreas() {
    const g = clear(m.layer.areas);
    const labels = clear(m.layer.labels);
    const areas = m.data.areas.slice().sort((a, b) => (a.depth || 0) - (b.depth || 0));
    for (const a of areas) {
      const pts = ring(a);
      if (!pts) continue;
      const scr = pts.map(([lat, lon]) => toScreen(project(lat, lon)));
      const d = 'M' + scr.map((p) => p.x.toFixed(1) + ',' + p.y.toFixed(1)).join('L') + 'Z';
      g.append(el('svg:path', { d, class: 'ops-area ops-area-d' + Math.min(a.depth || 0, 3) + ' ops-area-' + (a.kind || ''),
        'data-area': a.id }));
      let cx = 0; let cy = 0; let top = Infinity;
      for (const p of scr) { cx += p.x; cy += p.y; top = Math.min(top, p.y); }
      cx /= scr.length; cy /= scr.length;
      // Townships and above are named at their top edge, smaller areas
      // in their middle, so that nested names do not overlap.
      const y = (a.depth || 0) <= 1 ? top + 14 : cy;
      const span = Math.max(...scr.map((p) => p.x)) - Math.min(...scr.map((p) => p.x));
      if (span > 60) {
        labels.append(el('svg:text', { x: cx.toFixed(1), y: y.toFixed(1), class: 'ops-area-label ops-area-label-d' + Math.min(a.depth || 0, 3) },
          a.name || a.id));
      }
    }
  }

  // drawMarks lays out one layer's markers, reusing their elements; it
  // returns how many objects have no position.
  function drawMarks(name, list, make) {
    const have = m.marks[name];
    const seen = new Set();
    let missing = 0;
    const hidden = !keep.visible[name];
    for (const o of list) {
      if (!hasPos(o)) { missing++; continue; }
      seen.add(o.id);
      if (hidden) continue;
      const spec = make(o);
      let g = have.get(o.id);
      if (!g || g.getAttribute('data-shape') !== spec.shape) {
        if (g) g.remove();
        g = el('svg:g', { 'data-kind': name, 'data-id': o.id, 'data-shape': spec.shape, class: 'ops-mark' },
          spec.nodes());
        g.append(el('svg:title', {}));
        have.set(o.id, g);
        m.layer[name].append(g);
      }
      g.setAttribute('class', 'ops-mark ' + spec.cls);
      g.lastChild.textContent = spec.title;
      const p = toScreen(project(o.lat, o.lon));
      g.setAttribute('transform', 'translate(' + p.x.toFixed(1) + ',' + p.y.toFixed(1) + ')');
    }
    for (const [id, g] of have) if (!seen.has(id) || hidden) { g.remove(); have.delete(id); }
    return missing;
  }

  // cameraOnline: either stream plays (the wall plays the sub stream while
  // the main one may be idle).
  function cameraOnline(c) {
    return c.status === 'online' || c.sub_status === 'online';
  }

  // cameraStatus is a camera's status in words: online, or why not
  // (standby, connecting, fault).
  function cameraStatus(c) {
    return cameraOnline(c) ? S.t('map.camera.online') : S.tv('camera.status.', c.status || 'unknown');
  }

  function cameraMark(c) {
    const online = cameraOnline(c);
    return {
      shape: 'camera',
      cls: 'ops-m-camera ' + (online ? 'ops-m-on' : 'ops-m-off'),
      title: (c.name || c.id) + ' · ' + cameraStatus(c),
      nodes: () => [el('svg:rect', { x: -6, y: -5, width: 12, height: 10, rx: 2 }),
        el('svg:circle', { r: 2.2, class: 'ops-m-lens' })],
    };
  }

  function deviceTrouble(d) {
    const st = d.state || {};
    return !st.online || st.battery_low || st.supervision_lost;
  }

  function deviceMark(d) {
    return {
      shape: 'device',
      cls: 'ops-m-device ' + (deviceTrouble(d) ? 'ops-m-trouble' : 'ops-m-ok'),
      title: (d.name || d.id) + ' · ' + d.id,
      nodes: () => [el('svg:circle', { r: 3.5 })],
    };
  }

  function unitMark(u) {
    const label = m.view.z >= 13;
    return {
      shape: label ? 'unit-label' : 'unit',
      cls: 'ops-m-unit ops-u-' + (u.status || 'unavailable'),
      title: (u.name || u.id) + ' · ' + O.label('ustatus', u.status),
      nodes: () => [el('svg:rect', { x: -6, y: -6, width: 12, height: 12, transform: 'rotate(45)' }),
        label ? el('svg:text', { x: 10, y: 4, class: 'ops-m-text' }, u.name || u.id) : null],
    };
  }

  function incidentMark(inc) {
    const p = inc.priority || 9;
    return {
      shape: 'incident',
      cls: 'ops-m-incident ops-m-p' + Math.min(p, 3) + ' ops-m-' + inc.state,
      title: O.label('class', inc.class) + ' · ' + (inc.device_name || inc.device) + ' · ' + O.label('istate', inc.state),
      nodes: () => [el('svg:circle', { r: 8, class: 'ops-m-pulse' }), el('svg:circle', { r: 7, class: 'ops-m-core' }),
        el('svg:text', { y: 4, class: 'ops-m-bang' }, '!')],
    };
  }

  // ---- legend ----

  function renderLegend() {
    if (!m.legend) return;
    const counts = {
      areas: m.data.areas.filter(ring).length,
      cameras: m.data.cameras.length,
      devices: m.data.devices.length,
      units: m.data.units.length,
      incidents: O.incidents.store.open.size,
    };
    const key = S.lang() + JSON.stringify(counts) + JSON.stringify(keep.visible);
    if (m.legend.getAttribute('data-key') === key) return;
    m.legend.setAttribute('data-key', key);
    const sym = (cls, shape) => {
      const svg = el('svg:svg', { width: 16, height: 16, viewBox: '-8 -8 16 16', class: 'ops-legend-sym' });
      const g = el('svg:g', { class: 'ops-mark ' + cls });
      append(g, shape());
      svg.append(g);
      return svg;
    };
    const layerRow = (name, symbols) => el('div', { class: 'ops-legend-row' },
      el('label', {}, el('input', { type: 'checkbox', checked: keep.visible[name], 'data-testid': 'map-layer-' + name,
        onchange: (ev) => { keep.visible[name] = ev.target.checked; schedule(); } }),
      ' ', S.t('map.layer.' + name), el('span', { class: 'muted' }, ' ', String(counts[name]))),
      symbols ? el('div', { class: 'ops-legend-syms' }, symbols) : null);
    const item = (s, text) => el('span', { class: 'ops-legend-item' }, s, ' ', text);
    const cam = cameraMark({});
    const dev = deviceMark({ state: { online: true } });
    clear(m.legend).append(
      el('div', { class: 'ops-legend-title' }, S.t('map.legend')),
      layerRow('incidents', [item(sym('ops-m-incident ops-m-p1', () => [el('svg:circle', { r: 6, class: 'ops-m-core' })]), 'P1'),
        item(sym('ops-m-incident ops-m-p2', () => [el('svg:circle', { r: 6, class: 'ops-m-core' })]), 'P2'),
        item(sym('ops-m-incident ops-m-p3', () => [el('svg:circle', { r: 6, class: 'ops-m-core' })]), 'P3+')]),
      layerRow('units', UNIT_STATES.map((st) => item(
        sym('ops-m-unit ops-u-' + st, () => [el('svg:rect', { x: -4, y: -4, width: 8, height: 8, transform: 'rotate(45)' })]),
        O.label('ustatus', st)))),
      layerRow('cameras', [item(sym('ops-m-camera ops-m-on', cam.nodes), S.t('map.camera.online')),
        item(sym('ops-m-camera ops-m-off', cam.nodes), S.t('map.camera.offline'))]),
      layerRow('devices', [item(sym('ops-m-device ops-m-ok', dev.nodes), S.t('map.device.ok')),
        item(sym('ops-m-device ops-m-trouble', dev.nodes), S.t('map.device.trouble'))]),
      layerRow('areas', null),
      el('div', { class: 'ops-legend-keys muted' }, S.t('map.keys')));
  }

  // ---- popups ----

  function find(kind, id) {
    if (kind === 'incidents') return O.incidents.store.open.get(id);
    return (m.data[kind] || []).find((o) => o.id === id);
  }

  function openPopup(kind, id, ev) {
    closePopup();
    const o = find(kind, id);
    if (!o) return;
    const r = m.root.getBoundingClientRect();
    m.popup = { kind, id, x: ev.clientX - r.left, y: ev.clientY - r.top, node: null };
    refreshPopup();
  }

  function closePopup() {
    if (m.popup && m.popup.node) m.popup.node.remove();
    m.popup = null;
  }

  function row(key, value) {
    return el('tr', {}, el('th', {}, S.t(key)), el('td', {}, value));
  }

  function yesNo(v) { return S.t(v ? 'common.yes' : 'common.no'); }

  function link(text, testid, fn) {
    return el('button', { type: 'button', class: 'btn btn-primary btn-small', 'data-testid': testid, onclick: fn }, text);
  }

  function popupBody(kind, o) {
    switch (kind) {
      case 'cameras':
        return [el('h4', {}, o.name || o.id),
          el('table', {}, row('map.popup.status', cameraStatus(o)),
            o.area ? row('map.popup.area', O.areaName(o.area)) : null),
          link(S.t('map.popup.play'), 'map-play', () => openPlayer(o))];
      case 'devices': {
        const st = o.state || {};
        return [el('h4', {}, o.name || o.id, el('span', { class: 'muted ops-small' }, ' ', o.id)),
          el('table', {}, row('map.popup.area', O.areaName(o.area)),
            row('map.popup.online', yesNo(st.online)),
            row('map.popup.battery_low', yesNo(st.battery_low)),
            row('map.popup.supervision_lost', yesNo(st.supervision_lost)),
            row('map.popup.last_event', O.age(st.last_event))),
          link(S.t('map.popup.device'), 'map-device', () => S.navigate('devices', { id: o.id }))];
      }
      case 'units':
        return [el('h4', {}, o.name || o.id),
          el('table', {}, row('map.popup.kind', O.label('ukind', o.kind)),
            row('map.popup.status', O.unitStatusBadge(o.status)),
            row('map.popup.area', O.areaName(o.area)),
            row('map.popup.reported', O.age(o.reported)),
            o.incident ? row('map.popup.incident_of_unit', O.incidentLabel(o.incident)) : null),
          o.incident ? link(S.t('map.popup.incident'), 'map-incident', () => S.navigate('alarms', { id: o.incident })) : null];
      case 'incidents':
        return [el('h4', {}, O.prioBadge(o.priority), ' ', O.classBadge(o.class), ' ', o.device_name || o.device),
          el('table', {}, o.address ? row('map.popup.address', o.address) : null,
            row('map.popup.status', O.stateBadge(o.state)),
            row('map.popup.count', String(o.count || 1)),
            row('map.popup.age', O.age(o.first))),
          link(S.t('map.popup.incident'), 'map-incident', () => S.navigate('alarms', { id: o.id }))];
    }
    return [];
  }

  // refreshPopup redraws the open popup with the latest data (a unit's
  // state changes while it is open).
  function refreshPopup() {
    const p = m.popup;
    if (!p || !m.root) return;
    const o = find(p.kind, p.id);
    if (!o) { closePopup(); return; }
    const node = el('div', { class: 'ops-map-popup', 'data-testid': 'map-popup', 'data-kind': p.kind, 'data-id': p.id },
      el('button', { type: 'button', class: 'btn btn-ghost btn-small btn-icon ops-popup-close', 'aria-label': S.t('common.close'), onclick: closePopup }, '×'),
      popupBody(p.kind, o));
    if (p.node) p.node.replaceWith(node);
    else m.root.append(node);
    p.node = node;
    // Keep it inside the map (CSSOM, not a style attribute: the CSP
    // forbids inline styles).
    const w = node.offsetWidth;
    const h = node.offsetHeight;
    node.style.left = Math.max(4, Math.min(p.x + 12, m.size.w - w - 4)) + 'px';
    node.style.top = Math.max(4, Math.min(p.y + 12, m.size.h - h - 4)) + 'px';
  }

  // ---- full-screen camera ----

  function openPlayer(cam) {
    closePlayer();
    const video = el('video', { muted: true, autoplay: true, playsinline: true });
    video.muted = true;
    const state = el('span', { class: 'ops-cam-state' }, S.tv('player.state.', 'connecting'));
    const close = el('button', { type: 'button', class: 'btn ops-player-close', 'data-testid': 'map-player-close',
      onclick: closePlayer }, S.t('map.player.close'));
    const overlay = el('div', { class: 'ops-player', 'data-testid': 'map-player', 'data-camera': cam.id, 'data-state': 'connecting' },
      video, el('div', { class: 'ops-cam-overlay' }, el('span', { class: 'ops-cam-name' }, cam.name || cam.id), state), close);
    const onKey = (ev) => { if (ev.key === 'Escape') closePlayer(); };
    document.addEventListener('keydown', onKey);
    document.body.append(overlay);
    let player = null;
    try {
      player = new S.Player(video, cam.id, {
        stream: 'main',
        onState(st) {
          overlay.setAttribute('data-state', st);
          state.className = 'ops-cam-state ops-cam-' + st;
          renderPlayerState();
        },
      });
      player.start();
    } catch (e) {
      state.textContent = S.tv('player.state.', 'offline');
    }
    m.overlay = { overlay, player, onKey, state, close };
    if (overlay.requestFullscreen) overlay.requestFullscreen().catch(() => {});
    overlay.addEventListener('fullscreenchange', () => { if (!document.fullscreenElement) closePlayer(); });
    close.focus();
  }

  // renderPlayerState says the full-screen player's state (and why) in the
  // language shown now.
  function renderPlayerState() {
    const o = m.overlay;
    if (!o || !o.player) return;
    const p = o.player;
    o.state.textContent = S.tv('player.state.', p.state || 'connecting') + (p.detail ? ' · ' + p.detail : '');
    o.close.textContent = S.t('map.player.close');
  }

  function closePlayer() {
    const o = m.overlay;
    if (!o) return;
    m.overlay = null;
    document.removeEventListener('keydown', o.onKey);
    if (o.player) { try { o.player.stop(); } catch (e) { /* stopped */ } }
    if (document.fullscreenElement === o.overlay) document.exitFullscreen().catch(() => {});
    o.overlay.remove();
  }

  // The next user has another jurisdiction: nothing of this one's map is
  // kept.
  S.on('logout', () => {
    keep.view = null;
    keep.visible = Object.assign({}, ALL_LAYERS);
    m.data = { areas: [], cameras: [], devices: [], units: [] };
    m.error = '';
  });

  S.registerView('map', {
    mount,
    unmount,
    render() {
      if (!m.root) return;
      m.legend.removeAttribute('data-key');
      const titles = ['map.zoom_in', 'map.zoom_out', 'map.fit'];
      [...m.controls.children].forEach((b, i) => { b.title = S.t(titles[i]); });
      for (const name of LAYERS) { for (const g of m.marks[name].values()) g.remove(); m.marks[name].clear(); }
      schedule();
      refreshPopup();
      renderPlayerState();
    },
  });
}());
