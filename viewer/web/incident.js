// One incident (#/alarms/ID): what happened where, its cameras playing at
// once, the patrol units nearby, its timeline, and the actions the
// operator may take now. Kept live over the event stream.
'use strict';

(function () {
  const S = window.Skywatch;
  const O = S.ops;
  const { el, clear, append } = O;

  S.addStrings({
    'zh-CN': {
      'incident.back': '← 警情队列',
      'incident.loading': '正在加载警情…',
      'incident.outsideArea': '该警情不在您的辖区',
      'incident.device': '设备',
      'incident.count': '触发次数',
      'incident.restores': '恢复 {n} 次',
      'incident.zones': '防区',
      'incident.first': '首次报警',
      'incident.last': '最近报警',
      'incident.unit': '处警单位',
      'incident.offer': '已派单给 {unit}，{deadline} 前应答',
      'incident.escalated': '需人工处理',
      'incident.escalated_at': '{time} 升级',
      'incident.acknowledged': '已确认',
      'incident.disposition': '处置结果',
      'incident.note': '备注',
      'incident.cameras': '关联摄像机',
      'incident.no_cameras': '附近没有摄像机',
      'incident.camera_linked': '关联',
      'incident.camera_fullscreen': '全屏',
      'incident.units': '附近单位',
      'incident.no_units': '附近没有单位',
      'incident.timeline': '处置记录',
      'incident.no_actions': '当前没有可执行的操作',
      'incident.updated': '已更新',
      'incident.unit_col.name': '单位',
      'incident.unit_col.kind': '类型',
      'incident.unit_col.status': '状态',
      'incident.unit_col.distance': '距离',
      'incident.unit_col.reported': '位置上报',
      'incident.unit_col.incident': '当前警情',
      'incident.unit_this': '本警情',
      'incident.tl.time': '时间',
      'incident.tl.action': '事件',
      'incident.tl.state': '状态变化',
      'incident.tl.actor': '操作者',
      'incident.tl.detail': '说明',
      'incident.system': '系统',
      'action.acknowledge': '确认',
      'action.offer': '派单',
      'action.assign': '指派单位',
      'action.reoffer': '改派',
      'action.resolve': '处置完毕',
      'action.cancel': '撤销警情',
      'action.close': '关闭',
      'action.done.acknowledge': '已确认',
      'action.done.offer': '已派单',
      'action.done.assign': '已指派',
      'action.done.reoffer': '已改派',
      'action.done.resolve': '已处置',
      'action.done.cancel': '已撤销',
      'action.done.close': '已关闭',
      'picker.title.offer': '派单：选择单位',
      'picker.title.assign': '指派单位',
      'picker.auto': '自动派给最佳候选单位',
      'picker.empty': '没有可用单位',
      'picker.busy_on': '正在处理 {incident}',
      'resolve.title': '处置完毕',
      'resolve.disposition': '处置结果',
      'resolve.note': '备注（可选）',
      'resolve.ok': '确认处置',
      'resolve.need': '请选择处置结果',
      'cancel.title': '撤销警情',
      'cancel.note': '撤销原因',
      'cancel.ok': '确认撤销',
      'cancel.need': '请填写撤销原因',
      'close.title': '关闭警情',
      'close.note': '备注（可选）',
      'close.ok': '确认关闭',
      'tl.opened': '报警',
      'tl.joined': '再次触发',
      'tl.restore': '恢复',
      'tl.acknowledge': '确认',
      'tl.offer': '派单',
      'tl.assign': '指派',
      'tl.reoffer': '改派',
      'tl.accept': '接单',
      'tl.decline': '拒单',
      'tl.timeout': '应答超时',
      'tl.escalated': '升级',
      'tl.en_route': '出发',
      'tl.arrived': '到场',
      'tl.cleared': '处置完毕',
      'tl.false_alarm': '误报',
      'tl.resolve': '处置',
      'tl.cancel': '撤销',
      'tl.close': '关闭',
      'tl.no_unit': '无可用单位',
      'tl.unit_removed': '单位已从配置中移除',
      'tl.new_round': '重新轮派',
      'tl.awaiting_operator': '待人工派单',
      'tl.event': '事件',
      'tl.evidence': '证据录像',
      'clip.title': '报警录像',
      'clip.before': '自报警前 {s} 秒起',
      'clip.status.recording': '录制中',
      'clip.status.complete': '已完成',
      'clip.status.failed': '失败',
      'clip.download': '下载录像',
      'clip.sha256': 'SHA-256：{sha}',
      'clip.downloaded': '已下载 {name}',
      'clip.failed': '下载失败：{message}',
    },
    en: {
      'incident.back': '← Alarm queue',
      'incident.loading': 'Loading the incident…',
      'incident.outsideArea': 'This incident is outside your area',
      'incident.device': 'Device',
      'incident.count': 'Events',
      'incident.restores': '{n} restore(s)',
      'incident.zones': 'Zones',
      'incident.first': 'First alarm',
      'incident.last': 'Latest alarm',
      'incident.unit': 'Unit',
      'incident.offer': 'Offered to {unit}, answer by {deadline}',
      'incident.escalated': 'Needs an operator',
      'incident.escalated_at': 'escalated {time}',
      'incident.acknowledged': 'Acknowledged',
      'incident.disposition': 'Disposition',
      'incident.note': 'Note',
      'incident.cameras': 'Linked cameras',
      'incident.no_cameras': 'No camera nearby',
      'incident.camera_linked': 'linked',
      'incident.camera_fullscreen': 'Full screen',
      'incident.units': 'Units nearby',
      'incident.no_units': 'No unit nearby',
      'incident.timeline': 'Timeline',
      'incident.no_actions': 'No action possible now',
      'incident.updated': 'Updated',
      'incident.unit_col.name': 'Unit',
      'incident.unit_col.kind': 'Kind',
      'incident.unit_col.status': 'Status',
      'incident.unit_col.distance': 'Distance',
      'incident.unit_col.reported': 'Position',
      'incident.unit_col.incident': 'Incident',
      'incident.unit_this': 'this one',
      'incident.tl.time': 'Time',
      'incident.tl.action': 'What',
      'incident.tl.state': 'State',
      'incident.tl.actor': 'Who',
      'incident.tl.detail': 'Detail',
      'incident.system': 'system',
      'action.acknowledge': 'Acknowledge',
      'action.offer': 'Offer',
      'action.assign': 'Assign unit',
      'action.reoffer': 'Re-offer',
      'action.resolve': 'Resolve',
      'action.cancel': 'Cancel incident',
      'action.close': 'Close',
      'action.done.acknowledge': 'Acknowledged',
      'action.done.offer': 'Offered',
      'action.done.assign': 'Assigned',
      'action.done.reoffer': 'Re-offered',
      'action.done.resolve': 'Resolved',
      'action.done.cancel': 'Cancelled',
      'action.done.close': 'Closed',
      'picker.title.offer': 'Offer: choose a unit',
      'picker.title.assign': 'Assign a unit',
      'picker.auto': 'Offer to the best candidate automatically',
      'picker.empty': 'No unit available',
      'picker.busy_on': 'busy with {incident}',
      'resolve.title': 'Resolve the incident',
      'resolve.disposition': 'Disposition',
      'resolve.note': 'Note (optional)',
      'resolve.ok': 'Resolve',
      'resolve.need': 'Choose a disposition',
      'cancel.title': 'Cancel the incident',
      'cancel.note': 'Reason',
      'cancel.ok': 'Cancel the incident',
      'cancel.need': 'Give a reason',
      'close.title': 'Close the incident',
      'close.note': 'Note (optional)',
      'close.ok': 'Close',
      'tl.opened': 'Alarm',
      'tl.joined': 'Fired again',
      'tl.restore': 'Restore',
      'tl.acknowledge': 'Acknowledged',
      'tl.offer': 'Offer',
      'tl.assign': 'Assigned',
      'tl.reoffer': 'Re-offered',
      'tl.accept': 'Accepted',
      'tl.decline': 'Declined',
      'tl.timeout': 'Offer timed out',
      'tl.escalated': 'Escalated',
      'tl.en_route': 'En route',
      'tl.arrived': 'Arrived',
      'tl.cleared': 'Cleared',
      'tl.false_alarm': 'False alarm',
      'tl.resolve': 'Resolved',
      'tl.cancel': 'Cancelled',
      'tl.close': 'Closed',
      'tl.no_unit': 'No unit free',
      'tl.unit_removed': 'Unit removed from the configuration',
      'tl.new_round': 'New round',
      'tl.awaiting_operator': 'Awaiting operator',
      'tl.event': 'Event',
      'tl.evidence': 'Evidence clip',
      'clip.title': 'Alarm clip',
      'clip.before': 'from {s} s before the alarm',
      'clip.status.recording': 'recording',
      'clip.status.complete': 'complete',
      'clip.status.failed': 'failed',
      'clip.download': 'Download the clip',
      'clip.sha256': 'SHA-256: {sha}',
      'clip.downloaded': 'Downloaded {name}',
      'clip.failed': 'Download failed: {message}',
    },
  });

  // Keys that trigger an action while the incident is in front.
  const SHORTCUTS = { a: 'acknowledge', o: 'offer', s: 'assign', e: 'reoffer', r: 'resolve', x: 'cancel' };
  const DISPOSITIONS = ['genuine', 'false_equipment', 'false_user', 'unfounded', 'duplicate'];
  const MAX_PLAYING = 6;
  const REFETCH_MS = 250;

  const view = {
    root: null,
    id: '',
    inc: null,
    loadError: null, // why the incident could not be loaded (an ApiError)
    actionError: null, // why the last action failed (an ApiError)
    busy: false,
    parts: null, // {head, actions, message, cameras, units, timeline}
    players: [], // {id, player, tile}
    clip: null, // the alarm clip's panel: {url, video, state, sha, dl, clip}
    cameraKey: '',
    refetchTimer: null,
    loadSeq: 0,
  };

  function mount(root, id) {
    view.id = id;
    view.inc = null;
    view.loadError = null;
    view.actionError = null;
    view.cameraKey = '';
    const head = el('div', { class: 'ops-inc-head' });
    const actions = el('div', { class: 'ops-inc-actions', 'data-testid': 'incident-actions' });
    const message = el('div', { class: 'ops-inc-message', 'aria-live': 'polite' });
    const cameras = el('section', { class: 'ops-inc-cameras' });
    const units = el('section', { class: 'ops-inc-units' });
    const timeline = el('section', { class: 'ops-inc-timeline' });
    view.parts = { head, actions, message, cameras, units, timeline };
    view.root = el('div', { class: 'ops-view ops-incident', 'data-testid': 'incident-view', 'data-incident': id },
      head, actions, message,
      el('div', { class: 'ops-inc-body' }, cameras, el('div', { class: 'ops-inc-side' }, units, timeline)));
    root.append(view.root);
    document.addEventListener('keydown', onKey);
    render();
    load();
  }

  function unmount() {
    document.removeEventListener('keydown', onKey);
    stopPlayers();
    clearTimeout(view.refetchTimer);
    view.root = null;
    view.parts = null;
    view.id = '';
    view.inc = null;
  }

  async function load() {
    const seq = ++view.loadSeq;
    const id = view.id;
    try {
      const inc = await S.api('GET', '/api/incidents/' + encodeURIComponent(id));
      if (seq !== view.loadSeq || id !== view.id) return;
      view.inc = inc;
      view.loadError = null;
      O.incidents.onIncidentSeen(inc);
      if (!inc.units_nearby && !O.units.size) await O.loadUnits().catch(() => {});
    } catch (err) {
      if (seq !== view.loadSeq || id !== view.id) return;
      view.loadError = err;
    }
    render();
  }

  // A change from the stream shows at once; the detail (actions, units
  // nearby, cameras' state) follows from a fetch.
  S.on('incident', (data) => {
    const inc = O.incidentOf(data);
    if (!view.root || !inc || inc.id !== view.id) return;
    const prev = view.inc;
    view.inc = O.incidents.merge(prev, inc);
    if (prev && !inc.units_nearby) view.inc.units_nearby = prev.units_nearby;
    if (prev && !inc.cameras) view.inc.cameras = prev.cameras;
    if (prev && !inc.clips) view.inc.clips = prev.clips;
    else if (prev && inc.cameras) view.inc.cameras = mergeCameras(prev.cameras, inc.cameras);
    render();
    clearTimeout(view.refetchTimer);
    view.refetchTimer = setTimeout(load, REFETCH_MS);
  });
  S.on('resync', () => { if (view.root) load(); });

  // mergeCameras keeps the names and live state the detail had: stream
  // changes carry only camera IDs and distances.
  function mergeCameras(prev, next) {
    const byId = new Map((prev || []).map((c) => [c.id, c]));
    return next.map((c) => Object.assign({}, byId.get(c.id) || {}, c));
  }

  function render() {
    if (!view.root) return;
    const p = view.parts;
    const inc = view.inc;
    view.root.setAttribute('data-state', inc ? inc.state : '');
    renderMessage();
    if (!inc) {
      const error = loadErrorText(view.loadError);
      clear(p.head).append(backLink(),
        el('p', { class: error ? 'error-box ops-error' : 'muted ops-pad', 'data-testid': error ? 'incident-error' : null },
          error || S.t('incident.loading')));
      clear(p.actions);
      return;
    }
    renderHead(inc);
    renderActions(inc);
    renderCameras(inc);
    renderUnits(inc);
    renderTimeline(inc);
  }

  // loadErrorText says why the incident cannot be shown; "" for no error.
  // Refused is outside the user's area: the view reads, it does not act.
  function loadErrorText(err) {
    if (!err) return '';
    return err.status === 403 ? S.t('incident.outsideArea') : O.errorText(err);
  }

  function backLink() {
    return el('a', { href: '#/alarms', class: 'ops-back', 'data-testid': 'incident-back',
      onclick: (ev) => { ev.preventDefault(); S.navigate('alarms'); } }, S.t('incident.back'));
  }

  function fact(key, value, props) {
    return el('div', Object.assign({ class: 'ops-fact' }, props || {}),
      el('span', { class: 'ops-fact-k' }, S.t(key)), el('span', { class: 'ops-fact-v' }, value));
  }

  function renderHead(inc) {
    const open = O.isOpen(inc);
    const unit = inc.unit
      ? O.unitName(inc.unit)
      : inc.offer && inc.offer.unit
        ? S.t('incident.offer', { unit: O.unitName(inc.offer.unit), deadline: S.fmtTime(inc.offer.deadline) })
        : O.DASH;
    clear(view.parts.head).append(
      el('div', { class: 'ops-inc-title' },
        backLink(),
        O.prioBadge(inc.priority), O.classBadge(inc.class),
        el('span', { 'data-testid': 'incident-state', 'data-state': inc.state }, O.stateBadge(inc.state)),
        inc.escalated && open ? el('span', { class: 'ops-badge ops-escalated-badge', 'data-testid': 'incident-escalated',
          title: inc.escalated_at ? S.t('incident.escalated_at', { time: S.fmtDateTime(inc.escalated_at) }) : null },
        '⚠ ', S.t('incident.escalated')) : null,
        inc.acknowledged && open ? el('span', { class: 'muted ops-small' }, '✓ ', S.t('incident.acknowledged')) : null,
        el('h2', { class: 'ops-inc-place' }, inc.device_name || inc.device,
          inc.address ? el('span', { class: 'ops-inc-address' }, inc.address) : null)),
      el('div', { class: 'ops-facts' },
        el('div', { class: 'ops-fact ops-fact-wide' }, el('span', { class: 'ops-fact-v' }, O.areaPathText(inc))),
        fact('incident.device', el('span', { class: 'mono' }, inc.device)),
        fact('incident.count', [String(inc.count || 1),
          inc.restores ? el('span', { class: 'muted' }, ' · ', S.t('incident.restores', { n: inc.restores })) : null]),
        inc.zones && inc.zones.length ? fact('incident.zones', inc.zones.join(', ')) : null,
        fact('incident.first', [S.fmtDateTime(inc.first), ' (', O.age(inc.first), ')']),
        fact('incident.last', S.fmtDateTime(inc.last)),
        fact('incident.unit', unit, { 'data-testid': 'incident-unit' }),
        inc.disposition ? fact('incident.disposition', O.label('disp', inc.disposition)) : null,
        inc.note ? fact('incident.note', inc.note) : null));
  }

  function renderActions(inc) {
    const box = clear(view.parts.actions);
    const actions = Array.isArray(inc.actions) ? inc.actions : [];
    if (!actions.length) {
      box.append(el('span', { class: 'muted' }, S.t('incident.no_actions')));
      return;
    }
    const keyOf = {};
    for (const [k, a] of Object.entries(SHORTCUTS)) keyOf[a] = k;
    for (const kind of actions) {
      const danger = kind === 'cancel';
      const primary = kind === 'acknowledge' || (kind === 'offer' && !actions.includes('acknowledge'));
      box.append(el('button', {
        type: 'button', class: 'btn ops-action' + (danger ? ' btn-danger' : '') + (primary ? ' btn-primary' : ''),
        'data-testid': 'action-' + kind, 'data-action': kind, disabled: view.busy,
        title: keyOf[kind] ? keyOf[kind].toUpperCase() : null, onclick: () => act(kind),
      }, O.label('action', kind), keyOf[kind] ? el('kbd', {}, keyOf[kind].toUpperCase()) : null));
    }
  }

  function renderMessage() {
    const box = clear(view.parts.message);
    // Errors are kept as they came and put in words here, so that a
    // language switch says them again.
    const error = view.actionError ? O.errorText(view.actionError) : view.inc ? loadErrorText(view.loadError) : '';
    if (error) box.append(el('p', { class: 'error-box ops-error', role: 'alert', 'data-testid': 'incident-error' }, error));
  }

  // ---- actions ----

  async function act(kind) {
    const inc = view.inc;
    if (!inc || view.busy || !(inc.actions || []).includes(kind)) return;
    let body = {};
    if (kind === 'offer' || kind === 'assign') {
      const choice = await pickUnit(kind, inc);
      if (choice === null) return;
      body = choice ? { unit: choice } : {};
    } else if (kind === 'resolve') {
      body = await askResolve();
      if (!body) return;
    } else if (kind === 'cancel') {
      const note = await askNote('cancel', true);
      if (note === null) return;
      // The engine keeps an operator's reason in the timeline; note is the
      // contract's name for it.
      body = { note, reason: note };
    } else if (kind === 'close') {
      const note = await askNote('close', false);
      if (note === null) return;
      body = note ? { note, reason: note } : {};
    }
    await post(kind, body);
  }

  async function post(kind, body) {
    const id = view.id;
    view.busy = true;
    view.actionError = null;
    render();
    try {
      const inc = await S.api('POST', '/api/incidents/' + encodeURIComponent(id) + '/' + kind, body);
      if (id !== view.id) return;
      if (inc && inc.id === id) view.inc = inc;
      if (S.toast) S.toast({ key: 'action.done.' + kind }, 'ok');
      O.incidents.onIncidentSeen(view.inc);
    } catch (err) {
      if (id !== view.id) return;
      view.actionError = err;
      load();
    } finally {
      view.busy = false;
      render();
    }
  }

  // candidates lists the units to choose from, available ones first, then
  // by distance: the incident's units_nearby, or every unit in scope with
  // the distance worked out here when the server does not send them.
  function candidates(inc) {
    let list = inc.units_nearby;
    if (!Array.isArray(list)) {
      list = [...O.units.values()].map((u) => Object.assign({}, u, {
        distance_m: typeof u.lat === 'number' && (u.lat || u.lon) ? O.distanceM(inc.lat, inc.lon, u.lat, u.lon) : Infinity,
      }));
    }
    return list.slice().sort((a, b) => {
      const aa = a.status === 'available' ? 0 : 1;
      const ba = b.status === 'available' ? 0 : 1;
      return aa - ba || (a.distance_m ?? Infinity) - (b.distance_m ?? Infinity);
    });
  }

  // pickUnit resolves with a unit ID, "" for automatic (offer only), or
  // null when the operator backs out.
  async function pickUnit(kind, inc) {
    if (!Array.isArray(inc.units_nearby) && !O.units.size) await O.loadUnits().catch(() => {});
    let chosen = null;
    const res = await O.openDialog({
      title: S.t('picker.title.' + kind),
      testid: 'unit-picker',
      wide: true,
      okText: null,
      build(dlg) {
        const choose = (id) => { chosen = id; dlg.close(); };
        const list = candidates(inc);
        const out = [];
        if (kind === 'offer') {
          out.push(el('button', { type: 'button', class: 'btn btn-primary btn-block ops-unit-auto', 'data-testid': 'unit-auto',
            onclick: () => choose('') }, S.t('picker.auto')));
        }
        if (!list.length) out.push(el('p', { class: 'muted' }, S.t('picker.empty')));
        out.push(el('div', { class: 'ops-unit-options', role: 'listbox' }, list.map((u) => {
          const available = u.status === 'available';
          return el('button', {
            type: 'button', class: 'btn ops-unit-option' + (available ? '' : ' ops-unavailable'),
            'data-testid': 'unit-option', 'data-unit': u.id, 'data-status': u.status || '', disabled: !available,
            onclick: () => choose(u.id),
          },
          el('span', { class: 'ops-unit-name' }, u.name || u.id),
          el('span', { class: 'muted' }, O.label('ukind', u.kind)),
          O.unitStatusBadge(u.status),
          el('span', { class: 'ops-num' }, O.fmtDistance(u.distance_m)),
          el('span', { class: 'muted ops-small' }, u.incident && u.incident !== inc.id
            ? S.t('picker.busy_on', { incident: O.incidentLabel(u.incident) }) : O.areaName(u.area)));
        })));
        setTimeout(() => {
          const first = dlg.querySelector('button:not([disabled])');
          if (first) first.focus();
        });
        return out;
      },
    });
    void res;
    return chosen;
  }

  function askResolve() {
    return O.openDialog({
      title: S.t('resolve.title'),
      testid: 'resolve-dialog',
      okText: S.t('resolve.ok'),
      build() {
        return [
          el('fieldset', { class: 'ops-choices' }, el('legend', {}, S.t('resolve.disposition')),
            DISPOSITIONS.map((d) => el('label', { class: 'ops-choice' },
              el('input', { type: 'radio', name: 'disposition', value: d, 'data-testid': 'disposition-' + d }),
              ' ', O.label('disp', d)))),
          el('label', { class: 'ops-field-block' }, S.t('resolve.note'),
            el('textarea', { class: 'textarea', name: 'note', rows: '3', maxlength: '4000', 'data-testid': 'action-note' })),
        ];
      },
      submit(form) {
        const d = form.querySelector('input[name="disposition"]:checked');
        if (!d) throw Object.assign(new Error('disposition'), { userText: S.t('resolve.need') });
        return { disposition: d.value, note: form.querySelector('textarea').value.trim() };
      },
    });
  }

  // askNote resolves with the note ("" allowed unless required) or null.
  function askNote(kind, required) {
    return O.openDialog({
      title: S.t(kind + '.title'),
      testid: kind + '-dialog',
      okText: S.t(kind + '.ok'),
      okClass: kind === 'cancel' ? 'btn-danger' : '',
      build() {
        return [el('label', { class: 'ops-field-block' }, S.t(kind + '.note'),
          el('textarea', { class: 'textarea', name: 'note', rows: '3', maxlength: '4000', 'data-testid': 'action-note' }))];
      },
      submit(form) {
        const note = form.querySelector('textarea').value.trim();
        if (required && !note) throw Object.assign(new Error('note'), { userText: S.t(kind + '.need') });
        return note;
      },
    });
  }

  function onKey(ev) {
    if (!view.root || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (document.querySelector('dialog[open]') || ev.target.closest('input, select, textarea')) return;
    if (ev.key === 'Escape') {
      if (document.fullscreenElement) return;
      ev.preventDefault();
      S.navigate('alarms');
      return;
    }
    const kind = SHORTCUTS[ev.key.toLowerCase()];
    if (kind && view.inc && (view.inc.actions || []).includes(kind)) {
      ev.preventDefault();
      act(kind);
    }
  }

  // ---- cameras: all playing at once ----

  function stopPlayers() {
    for (const p of view.players) {
      try { p.player.stop(); } catch (e) { /* already stopped */ }
    }
    view.players = [];
    if (view.clip) {
      view.clip.video.pause();
      view.clip.video.removeAttribute('src');
      view.clip.video.load();
      view.clip = null;
    }
  }

  // alarmClip is the clip the view opens with: the first camera's, else
  // the first one; a failed clip only when there is no other.
  function alarmClip(inc, cams) {
    const clips = (inc.clips || []).filter((c) => c && c.url);
    const usable = clips.filter((c) => c.status !== 'failed');
    const pool = usable.length ? usable : clips;
    const first = cams.length ? pool.find((c) => c.camera === cams[0].id) : null;
    return first || pool[0] || null;
  }

  function renderCameras(inc) {
    const box = view.parts.cameras;
    const cams = (inc.cameras || []).slice(0, MAX_PLAYING);
    const clip = alarmClip(inc, cams);
    const key = cams.map((c) => c.id).join(',') + '|' + (clip ? clip.url : '');
    if (view.clip && clip && view.clip.url === clip.url) {
      view.clip.clip = clip;
      renderClip();
    }
    if ((cams.length || clip) && key === view.cameraKey && box.firstChild) {
      // The same cameras: keep them playing, refresh the words only.
      box.firstChild.textContent = S.t('incident.cameras');
      for (const p of view.players) {
        const c = cams.find((x) => x.id === p.id);
        if (c) p.dist.textContent = cameraMeta(c);
        p.state.textContent = S.tv('player.state.', p.player.state || 'connecting');
        p.state.title = p.player.detail;
        p.fs.title = S.t('incident.camera_fullscreen');
        p.fs.setAttribute('aria-label', p.fs.title);
        p.tile.title = p.fs.title;
      }
      return;
    }
    view.cameraKey = key;
    stopPlayers();
    clear(box).append(el('h3', {}, S.t('incident.cameras')));
    if (!cams.length && !clip) {
      box.append(el('p', { class: 'muted' }, S.t('incident.no_cameras')));
      return;
    }
    const grid = el('div', { class: 'ops-cams ops-cams-' + Math.min(cams.length, 4) + (clip ? ' ops-cams-clip' : '') });
    box.append(grid);
    if (clip && !cams.length) grid.append(clipTile(clip));
    cams.forEach((c, i) => {
      const video = el('video', { muted: true, autoplay: true, playsinline: true });
      video.muted = true;
      // The words sit in a bar above the picture, one line cut short with
      // an ellipsis: over the video they hid its own text and each other.
      const state = el('span', { class: 'ops-cam-state' }, S.tv('player.state.', 'connecting'));
      const dist = el('span', { class: 'ops-cam-meta' }, cameraMeta(c));
      const fs = el('button', { type: 'button', class: 'btn btn-ghost btn-small btn-icon ops-cam-fs',
        title: S.t('incident.camera_fullscreen'), 'aria-label': S.t('incident.camera_fullscreen'),
        onclick: () => fullscreen(tile) }, S.icon('expand'));
      const tile = el('div', { class: 'ops-cam' + (i === 0 ? ' ops-cam-main' : ''), 'data-testid': 'incident-camera',
        'data-camera': c.id, 'data-state': 'connecting', tabindex: '0', title: S.t('incident.camera_fullscreen'),
        ondblclick: () => fullscreen(tile),
        onkeydown: (ev) => { if (ev.key === 'f' || ev.key === 'Enter') fullscreen(tile); } },
      el('div', { class: 'ops-cam-bar' },
        el('span', { class: 'ops-cam-name', title: (c.name || c.id) + (c.name ? ' (' + c.id + ')' : '') }, c.name || c.id),
        dist, state, fs),
      el('div', { class: 'ops-cam-screen' }, video));
      grid.append(tile);
      // The alarm clip, from before the alarm, beside the live picture.
      if (i === 0 && clip) grid.append(clipTile(clip));
      let player = null;
      try {
        player = new S.Player(video, c.id, {
          stream: i === 0 ? 'main' : 'sub',
          onState(st, detail) {
            tile.setAttribute('data-state', st);
            state.textContent = S.tv('player.state.', st);
            state.title = detail || '';
            state.className = 'ops-cam-state ops-cam-' + st;
          },
        });
        player.start();
      } catch (e) {
        state.textContent = S.tv('player.state.', 'offline');
      }
      if (player) view.players.push({ id: c.id, player, tile, dist, state, fs });
    });
  }

  function clipTile(clip) {
    const video = el('video', { muted: true, autoplay: true, playsinline: true, controls: true, 'data-testid': 'incident-clip-video' });
    video.muted = true;
    video.src = clip.url;
    const name = el('span', { class: 'ops-cam-name' });
    const meta = el('span', { class: 'ops-cam-meta' });
    const state = el('span', { class: 'ops-cam-state' });
    const dl = el('button', { type: 'button', class: 'btn btn-ghost btn-small btn-icon ops-cam-fs', 'data-testid': 'incident-clip-download',
      onclick: () => downloadClip() }, S.icon('download') || '↓');
    const sha = el('div', { class: 'ops-clip-sha mono', 'data-testid': 'incident-clip-sha256' });
    const tile = el('div', { class: 'ops-cam ops-clip', 'data-testid': 'incident-clip', tabindex: '0' },
      el('div', { class: 'ops-cam-bar' }, name, meta, state, dl),
      el('div', { class: 'ops-cam-screen' }, video), sha);
    view.clip = { url: clip.url, clip, video, name, meta, state, dl, sha, tile, downloaded: null, error: '' };
    renderClip();
    return tile;
  }

  function renderClip() {
    const p = view.clip;
    if (!p) return;
    const c = p.clip;
    const cam = (view.inc && view.inc.cameras || []).find((x) => x.id === c.camera);
    p.tile.setAttribute('data-camera', c.camera);
    p.tile.setAttribute('data-start', c.start);
    p.tile.setAttribute('data-alarm', c.alarm || '');
    p.tile.setAttribute('data-status', c.status);
    p.tile.setAttribute('data-url', c.url);
    p.name.textContent = S.t('clip.title') + ' · ' + (cam && cam.name ? cam.name : c.camera);
    const before = c.alarm ? Math.round((Date.parse(c.alarm) - Date.parse(c.start)) / 1000) : 0;
    p.meta.textContent = before > 0 ? S.t('clip.before', { s: before }) : '';
    p.state.textContent = S.tv('clip.status.', c.status);
    p.state.className = 'ops-cam-state ops-clip-' + c.status;
    p.dl.title = S.t('clip.download');
    p.dl.setAttribute('aria-label', p.dl.title);
    p.dl.hidden = !S.noAuth && !S.can('act');
    const sha = p.downloaded ? p.downloaded.sha : c.sha256 || '';
    p.sha.setAttribute('data-sha256', sha);
    p.sha.textContent = p.error ? S.t('clip.failed', { message: p.error })
      : (p.downloaded ? S.t('clip.downloaded', { name: p.downloaded.name }) + '  ' : '') + (sha ? S.t('clip.sha256', { sha }) : '');
  }

  // downloadClip downloads the clip's MP4 and shows the SHA-256 the server
  // sends before it (the recorded one, for a complete clip).
  async function downloadClip() {
    const p = view.clip;
    if (!p) return;
    const url = p.url;
    try {
      const { sha, name } = await S.downloadMP4(url + '?download=1', 'clip.mp4');
      if (view.clip && view.clip.url === url) {
        view.clip.downloaded = { sha, name };
        view.clip.error = '';
      }
    } catch (err) {
      if (view.clip && view.clip.url === url) view.clip.error = err.message || String(err);
    }
    renderClip();
  }

  function cameraMeta(c) {
    return O.fmtDistance(c.distance_m) + (c.linked ? ' · ' + S.t('incident.camera_linked') : '');
  }

  function fullscreen(node) {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else if (node.requestFullscreen) node.requestFullscreen().catch(() => {});
  }

  // ---- units nearby and timeline ----

  function renderUnits(inc) {
    const box = clear(view.parts.units);
    box.append(el('h3', {}, S.t('incident.units')));
    const list = candidates(inc).slice(0, 10);
    if (!list.length) {
      box.append(el('p', { class: 'muted' }, S.t('incident.no_units')));
      return;
    }
    const cols = ['name', 'kind', 'status', 'distance', 'reported', 'incident'];
    box.append(el('table', { class: 'table table-dense', 'data-testid': 'units-nearby' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', {}, S.t('incident.unit_col.' + c))))),
      el('tbody', {}, list.map((u) => el('tr', { 'data-unit': u.id, 'data-status': u.status || '' },
        el('td', { class: 'nowrap' }, u.name || u.id),
        el('td', { class: 'muted nowrap' }, O.label('ukind', u.kind)),
        el('td', {}, O.unitStatusBadge(u.status)),
        el('td', { class: 'ops-num' }, O.fmtDistance(u.distance_m)),
        el('td', { class: 'ops-num' }, O.age(u.reported)),
        el('td', {}, !u.incident ? O.DASH : u.incident === inc.id ? S.t('incident.unit_this')
          : O.incidentLink(u.incident)))))));
  }

  function actorName(a) {
    if (!a) return O.DASH;
    if (a === 'system') return S.t('incident.system');
    return O.units.has(a) ? O.unitName(a) : a;
  }

  function renderTimeline(inc) {
    const box = clear(view.parts.timeline);
    box.append(el('h3', {}, S.t('incident.timeline')));
    const entries = (inc.timeline || []).slice().reverse();
    const cols = ['time', 'action', 'state', 'actor', 'detail'];
    box.append(el('table', { class: 'table table-dense', 'data-testid': 'incident-timeline' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', {}, S.t('incident.tl.' + c))))),
      el('tbody', {}, entries.map((e) => {
        const reason = O.reasonText(e, inc);
        return el('tr', { 'data-action': e.action },
          el('td', { class: 'ops-num', title: S.fmtDateTime(e.at) }, S.fmtTime(e.at)),
          el('td', { class: 'nowrap' }, O.label('tl', e.action)),
          el('td', { class: 'nowrap' }, e.to ? [O.label('istate', e.from), ' → ', el('strong', {}, O.label('istate', e.to))] : ''),
          el('td', { class: 'nowrap' }, actorName(e.actor)),
          // The engine's own words stay at hand in the tooltip.
          el('td', { class: 'ops-small', 'data-testid': 'timeline-reason', title: reason !== e.reason ? e.reason : null },
            e.unit ? O.unitName(e.unit) + (reason ? ' · ' : '') : '', reason));
      }))));
  }

  O.incidentView = { mount, unmount, render };
}());
