// API tokens (admins only): make a token for a video-wall decoder or a
// WHEP player (shown once, with the URL to give it), list every token with
// its last use, revoke one made here. Tokens of the config file are listed
// read-only.
'use strict';

(function () {
  const S = window.Skywatch;
  const O = S.ops;
  const { el, clear } = O;

  S.addStrings({
    'zh-CN': {
      'tab.tokens': 'API 令牌',
      'tokens.heading': 'API 令牌',
      'tokens.intro': '视频墙解码器、WHEP 播放器等程序用令牌（Authorization: Bearer）观看视频、读取接口，不能做任何修改。',
      'tokens.new': '新建令牌',
      'tokens.name': '名称',
      'tokens.role': '角色',
      'tokens.area': '区域',
      'tokens.everywhere': '全部区域',
      'tokens.cameras': '摄像机',
      'tokens.allCameras': '区域内全部摄像机',
      'tokens.expires': '有效期至',
      'tokens.never': '长期有效',
      'tokens.description': '说明',
      'tokens.create': '生成令牌',
      'tokens.created': '令牌 {name} 已生成',
      'tokens.once': '令牌只显示这一次：请现在复制，交给播放器。关闭后无法再查看。',
      'tokens.token': '令牌',
      'tokens.copy': '复制',
      'tokens.copied': '已复制',
      'tokens.copyFailed': '无法自动复制：请选中后手动复制',
      'tokens.url': 'WHEP 地址',
      'tokens.header': '请求头',
      'tokens.done': '我已复制，关闭',
      'tokens.list': '全部令牌',
      'tokens.empty': '还没有令牌',
      'tokens.refresh': '刷新',
      'tokens.col.name': '名称',
      'tokens.col.role': '角色',
      'tokens.col.area': '区域',
      'tokens.col.cameras': '摄像机',
      'tokens.col.expires': '有效期至',
      'tokens.col.source': '来源',
      'tokens.col.created': '创建',
      'tokens.col.lastUsed': '最近使用',
      'tokens.col.uses': '使用次数',
      'tokens.col.video': '视频会话',
      'tokens.source.config': '配置文件',
      'tokens.source.console': '控制台',
      'tokens.expired': '已过期',
      'tokens.neverUsed': '未使用',
      'tokens.revoke': '吊销',
      'tokens.confirmRevoke': '吊销令牌 {name}？使用它的播放器会立即断开。',
      'tokens.revoked': '令牌 {name} 已吊销，结束 {n} 个视频会话',
      'tokens.configHint': '配置文件中的令牌：从文件中删除并重新加载配置即可吊销',
      'tokens.noStore': '本服务器不能保存令牌，请在配置文件中配置（tokens:）',
      'tokens.denied': '只有管理员可以管理 API 令牌',
    },
    en: {
      'tab.tokens': 'API tokens',
      'tokens.heading': 'API tokens',
      'tokens.intro': 'Video-wall decoders, WHEP players and other programs use a token (Authorization: Bearer) to watch video and read the API; a token can change nothing.',
      'tokens.new': 'New token',
      'tokens.name': 'Name',
      'tokens.role': 'Role',
      'tokens.area': 'Area',
      'tokens.everywhere': 'Every area',
      'tokens.cameras': 'Cameras',
      'tokens.allCameras': 'Every camera of the area',
      'tokens.expires': 'Expires',
      'tokens.never': 'Never',
      'tokens.description': 'Description',
      'tokens.create': 'Make token',
      'tokens.created': 'Token {name} made',
      'tokens.once': 'The token is shown this once: copy it now and give it to the player. It cannot be shown again.',
      'tokens.token': 'Token',
      'tokens.copy': 'Copy',
      'tokens.copied': 'Copied',
      'tokens.copyFailed': 'Could not copy: select it and copy by hand',
      'tokens.url': 'WHEP URL',
      'tokens.header': 'Header',
      'tokens.done': 'I have copied it, close',
      'tokens.list': 'All tokens',
      'tokens.empty': 'No token yet',
      'tokens.refresh': 'Refresh',
      'tokens.col.name': 'Name',
      'tokens.col.role': 'Role',
      'tokens.col.area': 'Area',
      'tokens.col.cameras': 'Cameras',
      'tokens.col.expires': 'Expires',
      'tokens.col.source': 'Source',
      'tokens.col.created': 'Made',
      'tokens.col.lastUsed': 'Last used',
      'tokens.col.uses': 'Uses',
      'tokens.col.video': 'Video sessions',
      'tokens.source.config': 'config file',
      'tokens.source.console': 'console',
      'tokens.expired': 'expired',
      'tokens.neverUsed': 'never',
      'tokens.revoke': 'Revoke',
      'tokens.confirmRevoke': 'Revoke token {name}? Players using it are cut off at once.',
      'tokens.revoked': 'Token {name} revoked, {n} video sessions ended',
      'tokens.configHint': 'In the config file: remove it there and reload the configuration to revoke it',
      'tokens.noStore': 'This server cannot keep tokens: configure them in the file (tokens:)',
      'tokens.denied': 'Only administrators manage API tokens',
    },
  });

  const ROLES = ['viewer', 'operator', 'supervisor', 'admin'];

  const v = {
    root: null,
    list: null, // the list's box
    shown: null, // the box that shows a new token once
    made: null, // {token, name, cameras} of the token just made, until closed
    cameras: [],
    seq: 0,
  };

  // copyText copies text: the Clipboard API where the page may use it
  // (HTTPS or localhost), else the selected input's copy command.
  async function copyText(input) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(input.value);
        return true;
      }
    } catch (_) { /* fall back */ }
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch (_) {
      return false;
    }
  }

  function copyRow(labelKey, value, testid) {
    const input = el('input', { type: 'text', class: 'mono', readOnly: true, value, size: '70', 'data-testid': testid });
    const btn = el('button', { type: 'button', class: 'btn', 'data-testid': testid + '-copy',
      onclick: async () => {
        const ok = await copyText(input);
        S.toast({ key: ok ? 'tokens.copied' : 'tokens.copyFailed' }, ok ? 'ok' : 'warn');
      } }, S.t('tokens.copy'));
    return el('div', { class: 'toolbar' }, el('label', { class: 'ops-field' }, S.t(labelKey), ' ', input), btn);
  }

  // renderShown shows the token just made, with the URL and header to give
  // a player, until the admin closes it; it is never fetched again.
  function renderShown() {
    const box = v.shown;
    if (!box) return;
    clear(box);
    box.hidden = !v.made;
    if (!v.made) return;
    const cam = v.made.cameras && v.made.cameras.length ? v.made.cameras[0] : '{camera}';
    box.append(
      el('p', { class: 'error-box', role: 'alert' }, S.t('tokens.once')),
      copyRow('tokens.token', v.made.token, 'token-value'),
      copyRow('tokens.url', location.origin + '/whep/' + (cam === '{camera}' ? cam : encodeURIComponent(cam)), 'token-url'),
      copyRow('tokens.header', 'Authorization: Bearer ' + v.made.token, 'token-header'),
      el('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'token-done',
        onclick: () => { v.made = null; renderShown(); } }, S.t('tokens.done')));
  }

  function render() {
    if (!v.root) return;
    clear(v.root);
    if (!S.can('audit')) {
      v.root.append(el('p', { class: 'error-box ops-error ops-pad', 'data-testid': 'tokens-denied' }, S.t('tokens.denied')));
      return;
    }
    const f = { name: '', role: 'viewer', area: '', cameras: [], expires: '', description: '' };
    const areaSel = el('select', { 'data-testid': 'token-area', onchange: (ev) => { f.area = ev.target.value; } },
      el('option', { value: '' }, S.t('tokens.everywhere')),
      S.areas.map((a) => el('option', { value: a.id }, S.areaPath(a.id).join(' / '))));
    const camSel = el('select', { multiple: true, size: '4', 'data-testid': 'token-cameras',
      onchange: (ev) => { f.cameras = Array.from(ev.target.selectedOptions).map((o) => o.value); } },
    v.cameras.map((c) => el('option', { value: c.id }, (c.name || c.id) + ' (' + c.id + ')')));
    const form = el('form', { class: 'toolbar', 'data-testid': 'token-form',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { name: f.name.trim(), role: f.role, area: f.area, cameras: f.cameras, description: f.description.trim() };
        if (f.expires) body.expires = new Date(f.expires + 'T23:59:59').toISOString();
        try {
          const made = await S.api('POST', '/api/admin/tokens', body);
          v.made = { token: made.token, name: made.name, cameras: made.cameras };
          S.toast({ key: 'tokens.created', vars: { name: made.name } }, 'ok');
          ev.target.reset();
          Object.assign(f, { name: '', role: 'viewer', area: '', cameras: [], expires: '', description: '' });
        } catch (err) {
          S.toast(O.errorText(err), 'error');
        }
        renderShown();
        loadList();
      } },
    el('h2', {}, S.t('tokens.new')),
    el('label', { class: 'ops-field' }, S.t('tokens.name'), ' ',
      el('input', { type: 'text', size: '16', maxlength: '64', required: true, 'data-testid': 'token-name', oninput: (ev) => { f.name = ev.target.value; } })),
    el('label', { class: 'ops-field' }, S.t('tokens.role'), ' ',
      el('select', { 'data-testid': 'token-role', onchange: (ev) => { f.role = ev.target.value; } },
        ROLES.map((r) => el('option', { value: r, selected: r === 'viewer' }, S.tv('role.', r))))),
    el('label', { class: 'ops-field' }, S.t('tokens.area'), ' ', areaSel),
    el('label', { class: 'ops-field' }, S.t('tokens.cameras'), ' ', camSel),
    el('label', { class: 'ops-field' }, S.t('tokens.expires'), ' ',
      el('input', { type: 'date', 'data-testid': 'token-expires', oninput: (ev) => { f.expires = ev.target.value; } })),
    el('label', { class: 'ops-field' }, S.t('tokens.description'), ' ',
      el('input', { type: 'text', size: '24', maxlength: '200', 'data-testid': 'token-description', oninput: (ev) => { f.description = ev.target.value; } })),
    el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'token-create' }, S.t('tokens.create')));
    v.shown = el('div', { class: 'ops-pad', 'data-testid': 'token-shown', hidden: true });
    v.list = el('div', { class: 'table-wrap' });
    v.root.append(
      el('div', { class: 'toolbar' }, el('h2', {}, S.t('tokens.heading')), el('span', { class: 'muted' }, S.t('tokens.intro'))),
      form, v.shown, v.list);
    renderShown();
    loadList();
  }

  async function loadList() {
    const box = v.list;
    if (!box) return;
    const seq = ++v.seq;
    let page = null, error = '';
    try {
      page = await S.api('GET', '/api/admin/tokens');
    } catch (err) {
      error = O.errorText(err);
    }
    if (seq !== v.seq || box !== v.list) return;
    clear(box);
    box.append(el('div', { class: 'toolbar' }, el('h3', {}, S.t('tokens.list')), el('span', { class: 'spacer' }),
      el('button', { type: 'button', class: 'btn', 'data-testid': 'tokens-refresh', onclick: loadList }, S.t('tokens.refresh'))));
    if (error) box.append(el('p', { class: 'error-box ops-error', role: 'alert' }, error));
    if (page && !page.store) box.append(el('p', { class: 'muted ops-pad' }, S.t('tokens.noStore')));
    const tokens = (page && page.tokens) || [];
    if (!tokens.length) {
      box.append(el('p', { class: 'empty' }, S.t('tokens.empty')));
      return;
    }
    const cols = ['name', 'role', 'area', 'cameras', 'expires', 'source', 'created', 'lastUsed', 'uses', 'video'];
    box.append(el('table', { class: 'table', 'data-testid': 'tokens-table' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', {}, S.t('tokens.col.' + c))), el('th', {}, ''))),
      el('tbody', {}, tokens.map((x) => el('tr', { 'data-testid': 'token-row', 'data-name': x.name },
        el('td', { title: x.description || '' }, x.name, x.description ? el('div', { class: 'muted ops-small' }, x.description) : null),
        el('td', {}, S.tv('role.', x.role)),
        el('td', {}, x.area ? S.areaName(x.area) : S.t('tokens.everywhere')),
        el('td', { class: 'mono ops-small' }, x.cameras && x.cameras.length ? x.cameras.join(', ') : S.t('tokens.allCameras')),
        el('td', { class: 'ops-num' }, x.expires ? S.fmtDateTime(x.expires) : S.t('tokens.never'),
          x.expired ? el('span', { class: 'badge' }, ' ', S.t('tokens.expired')) : null),
        el('td', {}, S.t('tokens.source.' + x.source)),
        el('td', { class: 'ops-num ops-small' }, x.created ? S.fmtDateTime(x.created) + (x.created_by ? ' · ' + x.created_by : '') : ''),
        el('td', { class: 'ops-num' }, x.last_used ? S.fmtDateTime(x.last_used) : S.t('tokens.neverUsed')),
        el('td', { class: 'ops-num' }, String(x.uses || 0)),
        el('td', { class: 'ops-num' }, String(x.video_sessions || 0)),
        el('td', {}, x.source === 'console'
          ? el('button', { type: 'button', class: 'btn', 'data-testid': 'token-revoke',
            onclick: () => revoke(x.name) }, S.t('tokens.revoke'))
          : el('span', { class: 'muted ops-small' }, S.t('tokens.configHint'))))))));
  }

  async function revoke(name) {
    if (!window.confirm(S.t('tokens.confirmRevoke', { name }))) return;
    try {
      const r = await S.api('DELETE', '/api/admin/tokens/' + encodeURIComponent(name));
      S.toast({ key: 'tokens.revoked', vars: { name, n: (r && r.video_sessions) || 0 } }, 'ok');
    } catch (err) {
      S.toast(O.errorText(err), 'error');
    }
    loadList();
  }

  // The token shown once belongs to the admin who made it.
  S.on('logout', () => { v.made = null; v.cameras = []; });

  S.registerView('tokens', {
    need: 'audit',
    async mount(root) {
      v.root = el('div', { class: 'ops-view ops-tokens-view', 'data-testid': 'tokens-view' });
      root.append(v.root);
      render();
      if (!S.can('audit')) return;
      try {
        const cams = await S.api('GET', '/api/cameras');
        v.cameras = Array.isArray(cams) ? cams : [];
      } catch (_) {
        v.cameras = [];
      }
      if (v.root) render();
    },
    unmount() {
      v.seq++;
      v.root = null;
      v.list = null;
      v.shown = null;
    },
    render,
  });
}());
