// Audit log (admins only): who logged in, watched which camera from when
// to when, acted on which incident, and what was refused; filtered, paged,
// and exported as CSV with the same filters.
'use strict';

(function () {
  const S = window.Skywatch;
  const O = S.ops;
  const { el, clear } = O;

  S.addStrings({
    'zh-CN': {
      'audit.heading': '审计日志',
      'audit.user': '用户',
      'audit.action': '操作',
      'audit.any_action': '全部操作',
      'audit.from': '开始日期',
      'audit.to': '结束日期',
      'audit.apply': '查询',
      'audit.reset': '清除条件',
      'audit.export': '导出 CSV',
      'audit.first': '第一页',
      'audit.next': '下一页',
      'audit.page': '第 {n} 页',
      'audit.empty': '没有符合条件的记录',
      'audit.loading': '正在加载…',
      'audit.denied': '只有管理员可以查看审计日志',
      'audit.bad_range': '结束日期不能早于开始日期',
      'audit.col.time': '时间',
      'audit.col.user': '用户',
      'audit.col.role': '角色',
      'audit.col.addr': '地址',
      'audit.col.action': '操作',
      'audit.col.target': '对象',
      'audit.col.outcome': '结果',
      'audit.col.span': '起止',
      'audit.col.detail': '详情',
      'audit.a.login': '登录',
      'audit.a.login_failed': '登录失败',
      'audit.a.login_locked': '登录锁定',
      'audit.a.logout': '退出',
      'audit.a.session_expired': '会话过期',
      'audit.a.watch_start': '开始观看',
      'audit.a.watch': '观看视频',
      'audit.a.incident_action': '警情操作',
      'audit.a.denied': '越权访问',
      'audit.a.csrf_refused': 'CSRF 拒绝',
      'audit.a.audit_export': '导出审计',
      'audit.a.session_revoked': '会话被终止',
      'audit.a.sessions_ended': '终止用户会话',
      'audit.a.login_unlocked': '解除登录锁定',
      'audit.a.login_refusals': '登录拒绝汇总',
      'audit.a.token_created': '生成 API 令牌',
      'audit.a.token_revoked': '吊销 API 令牌',
      'audit.a.token_expired': 'API 令牌过期',
      'audit.a.config_reload': '重新加载配置',
      'audit.a.token_used': 'API 令牌读取',
      'audit.a.token_refused': 'API 令牌被拒',
      'logins.heading': '登录管理',
      'logins.refresh': '刷新',
      'logins.lockouts': '登录锁定',
      'logins.noLockouts': '当前没有锁定',
      'logins.sessions': '在线会话',
      'logins.noSessions': '当前没有会话',
      'logins.col.user': '用户',
      'logins.col.addr': '地址',
      'logins.col.retry': '剩余时间',
      'logins.col.role': '角色',
      'logins.col.since': '登录时间',
      'logins.col.lastSeen': '最近使用',
      'logins.col.video': '视频会话',
      'logins.anyUser': '所有账号',
      'logins.newAddrs': '新地址',
      'logins.unlock': '解除锁定',
      'logins.unlocked': '已解除 {n} 项锁定',
      'logins.end': '结束该用户全部会话',
      'logins.confirmEnd': '结束用户 {user} 的全部会话（包括视频）？',
      'logins.ended': '已结束 {n} 个会话',
      'audit.o.ok': '成功',
      'audit.o.success': '成功',
      'audit.o.denied': '拒绝',
      'audit.o.failed': '失败',
      'audit.o.partial': '部分完成',
      'audit.o.error': '错误',
    },
    en: {
      'audit.heading': 'Audit log',
      'audit.user': 'User',
      'audit.action': 'Action',
      'audit.any_action': 'Any action',
      'audit.from': 'From',
      'audit.to': 'To',
      'audit.apply': 'Search',
      'audit.reset': 'Clear',
      'audit.export': 'Export CSV',
      'audit.first': 'First page',
      'audit.next': 'Next page',
      'audit.page': 'Page {n}',
      'audit.empty': 'No matching record',
      'audit.loading': 'Loading…',
      'audit.denied': 'Only administrators can see the audit log',
      'audit.bad_range': 'The end date is before the start date',
      'audit.col.time': 'Time',
      'audit.col.user': 'User',
      'audit.col.role': 'Role',
      'audit.col.addr': 'Address',
      'audit.col.action': 'Action',
      'audit.col.target': 'Target',
      'audit.col.outcome': 'Outcome',
      'audit.col.span': 'From – to',
      'audit.col.detail': 'Detail',
      'audit.a.login': 'Login',
      'audit.a.login_failed': 'Login failed',
      'audit.a.login_locked': 'Login locked out',
      'audit.a.logout': 'Logout',
      'audit.a.session_expired': 'Session expired',
      'audit.a.watch_start': 'Watch started',
      'audit.a.watch': 'Watched video',
      'audit.a.incident_action': 'Incident action',
      'audit.a.denied': 'Denied',
      'audit.a.csrf_refused': 'CSRF refused',
      'audit.a.audit_export': 'Audit export',
      'audit.a.session_revoked': 'Session ended',
      'audit.a.sessions_ended': 'User sessions ended',
      'audit.a.login_unlocked': 'Login unlocked',
      'audit.a.login_refusals': 'Login refusals (summary)',
      'audit.a.token_created': 'API token made',
      'audit.a.token_revoked': 'API token revoked',
      'audit.a.token_expired': 'API token expired',
      'audit.a.config_reload': 'Configuration reloaded',
      'audit.a.token_used': 'API token reads',
      'audit.a.token_refused': 'API token refused',
      'logins.heading': 'Logins',
      'logins.refresh': 'Refresh',
      'logins.lockouts': 'Lockouts',
      'logins.noLockouts': 'No lockout now',
      'logins.sessions': 'Sessions',
      'logins.noSessions': 'No session now',
      'logins.col.user': 'User',
      'logins.col.addr': 'Address',
      'logins.col.retry': 'Time left',
      'logins.col.role': 'Role',
      'logins.col.since': 'Logged in',
      'logins.col.lastSeen': 'Last used',
      'logins.col.video': 'Video sessions',
      'logins.anyUser': 'every account',
      'logins.newAddrs': 'new addresses',
      'logins.unlock': 'Unlock',
      'logins.unlocked': '{n} lockouts lifted',
      'logins.end': "End all of this user's sessions",
      'logins.confirmEnd': 'End every session of {user}, with its video?',
      'logins.ended': '{n} sessions ended',
      'audit.o.ok': 'ok',
      'audit.o.success': 'ok',
      'audit.o.denied': 'denied',
      'audit.o.failed': 'failed',
      'audit.o.partial': 'partial',
      'audit.o.error': 'error',
    },
  });

  const ACTIONS = ['login', 'login_failed', 'login_locked', 'logout', 'session_expired', 'watch_start', 'watch',
    'incident_action', 'denied', 'csrf_refused', 'audit_export', 'session_revoked', 'sessions_ended', 'login_unlocked',
    'login_refusals', 'token_created', 'token_revoked', 'token_expired', 'token_used', 'token_refused'];
  const PAGE = 100;

  const a = {
    root: null,
    filters: { user: '', action: '', from: '', to: '' },
    cursors: [''], // cursor of each page shown so far; the last is the current one
    page: null,
    error: '',
    loading: false,
    seq: 0,
    table: null,
    pager: null,
    csv: null,
    logins: null, // the lockouts and sessions panel
    loginSeq: 0,
  };

  // zoneOffsetMin is the offset of the user's time zone from UTC at t, in
  // minutes (positive east), from Intl: the operator's dates are in the
  // zone the console shows times in.
  function zoneOffsetMin(t) {
    const tz = (S.me && S.me.time_zone) || undefined;
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(t);
    const v = {};
    for (const p of parts) v[p.type] = Number(p.value);
    const asUTC = Date.UTC(v.year, v.month - 1, v.day, v.hour % 24, v.minute, v.second);
    return Math.round((asUTC - t.getTime()) / 60000);
  }

  // dayStart is midnight of the date "YYYY-MM-DD" (plus addDays) in the
  // user's time zone, as RFC 3339 UTC.
  function dayStart(date, addDays) {
    const [y, mo, d] = date.split('-').map(Number);
    const guess = new Date(Date.UTC(y, mo - 1, d + (addDays || 0)));
    const t = new Date(guess.getTime() - zoneOffsetMin(guess) * 60000);
    // Once more, in case the offset differs on either side of midnight.
    return new Date(guess.getTime() - zoneOffsetMin(t) * 60000).toISOString();
  }

  function query(cursor) {
    const f = a.filters;
    const q = new URLSearchParams();
    if (f.from) q.set('from', dayStart(f.from, 0));
    if (f.to) q.set('to', dayStart(f.to, 1)); // the whole "to" day
    if (f.user.trim()) q.set('user', f.user.trim());
    if (f.action) q.set('action', f.action);
    if (cursor) q.set('cursor', cursor);
    return q;
  }

  async function load() {
    const seq = ++a.seq;
    if (a.filters.from && a.filters.to && a.filters.to < a.filters.from) {
      a.error = S.t('audit.bad_range');
      a.page = { records: [], next: '' };
      renderTable();
      return;
    }
    a.loading = true;
    a.error = '';
    renderTable();
    const q = query(a.cursors[a.cursors.length - 1]);
    q.set('limit', String(PAGE));
    try {
      const page = await S.api('GET', '/api/audit?' + q.toString());
      if (seq !== a.seq) return;
      a.page = { records: (page && page.records) || [], next: (page && page.next) || '' };
    } catch (err) {
      if (seq !== a.seq) return;
      a.error = O.errorText(err);
      a.page = { records: [], next: '' };
    }
    a.loading = false;
    renderTable();
  }

  function search() {
    a.cursors = [''];
    load();
  }

  function render() {
    if (!a.root) return;
    clear(a.root);
    if (!S.can('audit')) {
      a.root.append(el('p', { class: 'error-box ops-error ops-pad', 'data-testid': 'audit-denied' }, S.t('audit.denied')));
      return;
    }
    const f = a.filters;
    const input = (key, props) => el('input', Object.assign({ value: f[key], 'data-testid': 'audit-' + key,
      oninput: (ev) => { f[key] = ev.target.value; updateCsv(); } }, props));
    const form = el('form', { class: 'toolbar ops-audit-filters', 'data-testid': 'audit-filters',
      onsubmit: (ev) => { ev.preventDefault(); search(); } },
    el('h2', {}, S.t('audit.heading')),
    el('label', { class: 'ops-field' }, S.t('audit.user'), ' ', input('user', { type: 'search', size: '12' })),
    el('label', { class: 'ops-field' }, S.t('audit.action'), ' ',
      el('select', { 'data-testid': 'audit-action', onchange: (ev) => { f.action = ev.target.value; updateCsv(); search(); } },
        el('option', { value: '' }, S.t('audit.any_action')),
        ACTIONS.map((x) => el('option', { value: x, selected: f.action === x }, O.label('audit.a', x))))),
    el('label', { class: 'ops-field' }, S.t('audit.from'), ' ', input('from', { type: 'date' })),
    el('label', { class: 'ops-field' }, S.t('audit.to'), ' ', input('to', { type: 'date' })),
    el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'audit-apply' }, S.t('audit.apply')),
    el('button', { type: 'button', class: 'btn', 'data-testid': 'audit-reset',
      onclick: () => { a.filters = { user: '', action: '', from: '', to: '' }; render(); search(); } }, S.t('audit.reset')),
    el('span', { class: 'spacer' }),
    a.csv = el('a', { class: 'btn', 'data-testid': 'audit-export', download: 'audit.csv' }, S.t('audit.export')));
    updateCsv();
    a.table = el('div', { class: 'table-wrap' });
    a.pager = el('div', { class: 'ops-pager' });
    a.logins = el('details', { class: 'ops-logins ops-pad', 'data-testid': 'audit-logins' });
    a.root.append(a.logins, form, a.table, a.pager);
    renderTable();
    loadLogins();
  }

  // loadLogins shows the lockouts and the live sessions, for an admin to
  // unlock an account or address and to end a user's sessions.
  async function loadLogins() {
    const box = a.logins;
    if (!box) return;
    const seq = ++a.loginSeq;
    let lockouts = [], sessions = [], error = '';
    try {
      const [l, s] = await Promise.all([S.api('GET', '/api/admin/lockouts'), S.api('GET', '/api/admin/sessions')]);
      lockouts = (l && l.lockouts) || [];
      sessions = (s && s.sessions) || [];
    } catch (err) {
      error = O.errorText(err);
    }
    if (seq !== a.loginSeq || box !== a.logins) return;
    const open = box.open;
    clear(box);
    box.open = open;
    const act = async (method, path, body, doneKey, field) => {
      try {
        const r = await S.api(method, path, body);
        S.toast({ key: doneKey, vars: { n: (r && r[field]) || 0 } }, 'ok');
      } catch (err) {
        S.toast(O.errorText(err), 'error');
      }
      loadLogins();
      load();
    };
    const th = (keys) => el('thead', {}, el('tr', {}, keys.map((k) => el('th', {}, k ? S.t('logins.col.' + k) : ''))));
    box.append(el('summary', {}, S.t('logins.heading'), ' (', String(lockouts.length), ' / ', String(sessions.length), ')'),
      el('div', { class: 'toolbar' }, el('span', { class: 'spacer' }),
        el('button', { type: 'button', class: 'btn', 'data-testid': 'logins-refresh', onclick: loadLogins }, S.t('logins.refresh'))));
    if (error) box.append(el('p', { class: 'error-box ops-error', role: 'alert' }, error));
    box.append(el('h3', {}, S.t('logins.lockouts')));
    if (!lockouts.length) box.append(el('p', { class: 'muted' }, S.t('logins.noLockouts')));
    else {
      box.append(el('table', { class: 'table', 'data-testid': 'lockouts-table' }, th(['user', 'addr', 'retry', '']),
        el('tbody', {}, lockouts.map((x) => el('tr', { 'data-testid': 'lockout-row' },
          el('td', {}, x.user || S.t('logins.anyUser')),
          el('td', { class: 'mono ops-small' }, x.addr || S.t('logins.newAddrs')),
          el('td', { class: 'ops-num' }, S.fmtDuration(x.retry_after_s)),
          el('td', {}, el('button', { type: 'button', class: 'btn', 'data-testid': 'lockout-unlock',
            onclick: () => act('POST', '/api/admin/unlock', { user: x.user, addr: x.addr }, 'logins.unlocked', 'lifted') },
          S.t('logins.unlock'))))))));
    }
    box.append(el('h3', {}, S.t('logins.sessions')));
    if (!sessions.length) box.append(el('p', { class: 'muted' }, S.t('logins.noSessions')));
    else {
      box.append(el('table', { class: 'table', 'data-testid': 'sessions-table' }, th(['user', 'role', 'addr', 'since', 'lastSeen', 'video', '']),
        el('tbody', {}, sessions.map((x) => el('tr', { 'data-testid': 'session-row' },
          el('td', {}, x.user),
          el('td', {}, S.tv('role.', x.role)),
          el('td', { class: 'mono ops-small' }, x.addr || ''),
          el('td', { class: 'ops-num' }, S.fmtDateTime(x.created)),
          el('td', { class: 'ops-num' }, S.fmtDateTime(x.last_seen)),
          el('td', { class: 'ops-num' }, String(x.video_sessions || 0)),
          el('td', {}, el('button', { type: 'button', class: 'btn', 'data-testid': 'session-end',
            onclick: () => {
              if (window.confirm(S.t('logins.confirmEnd', { user: x.user }))) {
                act('POST', '/api/admin/users/' + encodeURIComponent(x.user) + '/end-sessions', null, 'logins.ended', 'ended');
              }
            } }, S.t('logins.end'))))))));
    }
  }

  function updateCsv() {
    if (a.csv) a.csv.setAttribute('href', '/api/audit.csv?' + query('').toString());
  }

  function span(r) {
    if (!r.start && !r.end) return '';
    const from = r.start ? S.fmtDateTime(r.start) : '…';
    const to = r.end ? S.fmtTime(r.end) : '…';
    return from + ' – ' + to;
  }

  function renderTable() {
    if (!a.table) return;
    clear(a.table);
    clear(a.pager);
    if (a.error) a.table.append(el('p', { class: 'error-box ops-error', role: 'alert' }, a.error));
    if (!a.page) {
      a.table.append(el('p', { class: 'muted ops-pad' }, S.t('audit.loading')));
      return;
    }
    const cols = ['time', 'user', 'role', 'addr', 'action', 'target', 'outcome', 'span', 'detail'];
    a.table.append(el('table', { class: 'table ops-audit', 'data-testid': 'audit-table' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', {}, S.t('audit.col.' + c))))),
      el('tbody', {}, a.page.records.map((r) => el('tr', {
        'data-testid': 'audit-row', 'data-action': r.action || '',
        class: ['denied', 'failed'].includes(r.outcome) || ['denied', 'login_failed', 'login_locked', 'csrf_refused', 'token_refused'].includes(r.action) ? 'ops-audit-bad' : '',
      },
      el('td', { class: 'ops-num' }, S.fmtDateTime(r.time)),
      el('td', {}, r.user || O.DASH),
      el('td', {}, S.tv('role.', r.role)),
      el('td', { class: 'mono ops-small' }, r.addr || ''),
      el('td', {}, O.label('audit.a', r.action)),
      el('td', { class: 'mono ops-small' }, r.target || ''),
      el('td', {}, r.outcome ? O.label('audit.o', r.outcome) : ''),
      el('td', { class: 'ops-num ops-small' }, span(r)),
      el('td', { class: 'ops-small' }, r.detail || ''))))));
    if (!a.page.records.length && !a.loading) a.table.append(el('p', { class: 'empty' }, S.t('audit.empty')));
    a.pager.append(
      el('button', { type: 'button', class: 'btn', 'data-testid': 'audit-first', disabled: a.cursors.length <= 1 || a.loading,
        onclick: () => { a.cursors = ['']; load(); } }, S.t('audit.first')),
      el('span', { class: 'muted' }, S.t('audit.page', { n: a.cursors.length })),
      el('button', { type: 'button', class: 'btn', 'data-testid': 'audit-next', disabled: !a.page.next || a.loading,
        onclick: () => { a.cursors.push(a.page.next); load(); } }, S.t('audit.next')));
  }

  // The filters and the page shown are the user's.
  S.on('logout', () => {
    a.filters = { user: '', action: '', from: '', to: '' };
    a.cursors = [''];
    a.page = null;
    a.error = '';
  });

  S.registerView('audit', {
    permission: 'audit',
    mount(root) {
      a.root = el('div', { class: 'ops-view ops-audit-view', 'data-testid': 'audit-view' });
      root.append(a.root);
      a.cursors = [''];
      a.page = null;
      render();
      if (S.can('audit')) load();
    },
    unmount() {
      a.seq++;
      a.root = null;
      a.table = null;
      a.pager = null;
      a.csv = null;
      a.logins = null;
    },
    render,
  });
}());
