// Cluster (admins only): the nodes, which one runs the incident engine, the
// leases, the cameras each node pulls and each node's figures, refreshed
// every few seconds (GET /api/cluster). On a server without cluster: this
// node's figures. Its toolbar reloads the config file of the node that
// answers (POST /api/admin/reload) and shows what changed, what needs a
// restart, or why the file was refused.
'use strict';

(function () {
  const S = window.Skywatch;
  const O = S.ops;
  const { el, clear } = O;

  // REFRESH is how often the view asks again: the nodes publish their
  // figures every cluster.failover/4 (2.5 s by default).
  const REFRESH = 5000;

  S.addStrings({
    'zh-CN': {
      'tab.cluster': '集群',
      'cluster.heading': '集群节点',
      'cluster.single': '本服务器以单节点运行（未配置 cluster:）。',
      'cluster.answering': '当前应答节点：{node}',
      'cluster.engine': '警情引擎节点：{node}',
      'cluster.noEngine': '警情引擎：无节点持有租约（正在接管）',
      'cluster.refresh': '刷新',
      'cluster.engineBadge': '引擎',
      'cluster.leases': '租约',
      'cluster.noLeases': '没有被持有的租约',
      'cluster.alive': '在线',
      'cluster.dead': '离线',
      'cluster.yes': '是',
      'cluster.no': '否',
      'cluster.col.id': '节点',
      'cluster.col.state': '状态',
      'cluster.col.http': 'HTTP 地址',
      'cluster.col.webrtc': 'WebRTC 地址',
      'cluster.col.started': '启动时间',
      'cluster.col.seen': '最后心跳',
      'cluster.col.cameras': '拉流摄像机',
      'cluster.col.viewers': '观看会话',
      'cluster.col.events': '事件/秒',
      'cluster.col.intake': '报警接入',
      'cluster.col.errors': '存储错误',
      'cluster.col.lease': '租约',
      'cluster.col.holder': '持有节点',
      'cluster.col.token': '令牌',
      'cluster.col.expires': '到期',
      'reload.button': '重新加载配置',
      'reload.confirm': '重新读取本节点的配置文件并应用其变更？',
      'reload.applied': '配置已应用：{summary}',
      'reload.invalid': '配置文件无效，仍使用原配置：',
      'reload.failed': '配置应用中途失败（部分已应用），修正后请再次加载：',
      'reload.restart': '以下配置项需重启后生效：{keys}',
      'reload.node': '节点 {node}',
      'reload.noFile': '本服务器没有可重新加载的配置文件（演示模式）',
    },
    en: {
      'tab.cluster': 'Cluster',
      'cluster.heading': 'Cluster nodes',
      'cluster.single': 'This server runs as one node (no cluster: section).',
      'cluster.answering': 'Answered by node {node}',
      'cluster.engine': 'Incident engine on node {node}',
      'cluster.noEngine': 'Incident engine: no node holds its lease (a takeover is under way)',
      'cluster.refresh': 'Refresh',
      'cluster.engineBadge': 'engine',
      'cluster.leases': 'Leases',
      'cluster.noLeases': 'No lease is held',
      'cluster.alive': 'alive',
      'cluster.dead': 'gone',
      'cluster.yes': 'yes',
      'cluster.no': 'no',
      'cluster.col.id': 'Node',
      'cluster.col.state': 'State',
      'cluster.col.http': 'HTTP address',
      'cluster.col.webrtc': 'WebRTC addresses',
      'cluster.col.started': 'Started',
      'cluster.col.seen': 'Last heartbeat',
      'cluster.col.cameras': 'Cameras pulled',
      'cluster.col.viewers': 'Viewers',
      'cluster.col.events': 'Events/s',
      'cluster.col.intake': 'Alarm intake',
      'cluster.col.errors': 'Store errors',
      'cluster.col.lease': 'Lease',
      'cluster.col.holder': 'Holder',
      'cluster.col.token': 'Token',
      'cluster.col.expires': 'Expires',
      'reload.button': 'Reload configuration',
      'reload.confirm': "Read this node's config file again and apply what changed?",
      'reload.applied': 'Configuration applied: {summary}',
      'reload.invalid': 'The config file is not valid; the running configuration is kept:',
      'reload.failed': 'Applying the configuration failed part way (some parts applied); fix it and reload again:',
      'reload.restart': 'These keys need a restart to take effect: {keys}',
      'reload.node': 'node {node}',
      'reload.noFile': 'This server has no config file to reload (the demo)',
    },
  });

  const v = { root: null, body: null, timer: 0, seq: 0, reload: null };

  // reloadConfig asks the answering node to reload its config file and
  // shows the answer: 200 applied, 422 invalid, 500 failed part way.
  async function reloadConfig() {
    if (!window.confirm(S.t('reload.confirm'))) return;
    const box = v.reload;
    if (!box) return;
    let r = null, error = '', status = 0;
    try {
      r = await S.api('POST', '/api/admin/reload');
    } catch (err) {
      if (err && err.body && err.body.result) r = err.body;
      else {
        status = (err && err.status) || 0;
        error = status === 503 ? S.t('reload.noFile') : O.errorText(err);
      }
    }
    if (box !== v.reload) return;
    clear(box);
    if (!r) {
      box.append(el('p', { class: 'error-box ops-error', role: 'alert', 'data-testid': 'reload-error', 'data-status': String(status) }, error));
      return;
    }
    const node = r.node ? ' (' + S.t('reload.node', { node: r.node }) + ')' : '';
    if (r.result === 'applied') {
      box.append(el('p', { class: 'ops-pad', role: 'status', 'data-testid': 'reload-applied' },
        S.t('reload.applied', { summary: r.summary || '' }) + node));
    } else {
      box.append(el('div', { class: 'error-box ops-error', role: 'alert', 'data-testid': 'reload-' + r.result },
        el('p', {}, S.t(r.result === 'invalid' ? 'reload.invalid' : 'reload.failed') + node),
        el('ul', {}, (r.errors || []).map((e) => el('li', { class: 'mono ops-small' }, e)))));
    }
    if (r.needs_restart && r.needs_restart.length) {
      box.append(el('p', { class: 'muted ops-pad', 'data-testid': 'reload-restart' },
        S.t('reload.restart', { keys: r.needs_restart.join(', ') })));
    }
  }

  function th(cols) {
    return el('thead', {}, el('tr', {}, cols.map((c) => el('th', {}, S.t('cluster.col.' + c)))));
  }

  function statsCells(st) {
    if (!st) return [el('td', {}, '–'), el('td', {}, '–'), el('td', {}, '–'), el('td', {}, '–')];
    return [
      el('td', { class: 'ops-num' }, String(st.viewers)),
      el('td', { class: 'ops-num' }, (st.events_stored_per_s || 0).toFixed(1)),
      el('td', {}, S.t(st.intake_connected ? 'cluster.yes' : 'cluster.no')),
      el('td', { class: 'ops-num' }, String(st.store_errors)),
    ];
  }

  function renderCluster(c) {
    const box = v.body;
    clear(box);
    if (!c.cluster) {
      const st = c.node && c.node.stats;
      box.append(el('p', { class: 'muted ops-pad', 'data-testid': 'cluster-single' }, S.t('cluster.single')),
        el('table', { class: 'table', 'data-testid': 'cluster-nodes' },
          th(['started', 'cameras', 'viewers', 'events', 'intake', 'errors']),
          el('tbody', {}, el('tr', { 'data-testid': 'cluster-node' },
            el('td', { class: 'ops-num' }, c.node && c.node.started ? S.fmtDateTime(c.node.started) : ''),
            el('td', { class: 'ops-num' }, st ? String(st.cameras_pulled) : '–'),
            statsCells(st)))));
      return;
    }
    box.append(el('p', { class: 'ops-pad' },
      el('span', { 'data-testid': 'cluster-engine' }, c.engine ? S.t('cluster.engine', { node: c.engine }) : S.t('cluster.noEngine')),
      ' · ', el('span', { class: 'muted' }, S.t('cluster.answering', { node: c.node }))));
    box.append(el('table', { class: 'table', 'data-testid': 'cluster-nodes' },
      th(['id', 'state', 'http', 'webrtc', 'started', 'seen', 'cameras', 'viewers', 'events', 'intake', 'errors']),
      el('tbody', {}, c.nodes.map((n) => el('tr', { 'data-testid': 'cluster-node', 'data-node': n.id, class: n.alive ? '' : 'muted' },
        el('td', {}, el('strong', {}, n.id), n.id === c.engine ? [' ', el('span', { class: 'badge' }, S.t('cluster.engineBadge'))] : null),
        el('td', {}, S.t(n.alive ? 'cluster.alive' : 'cluster.dead')),
        el('td', { class: 'mono ops-small' }, n.http_url),
        el('td', { class: 'mono ops-small' }, (n.webrtc_ips || []).join(', ')),
        el('td', { class: 'ops-num ops-small' }, n.started ? S.fmtDateTime(n.started) : ''),
        el('td', { class: 'ops-num ops-small' }, n.last_seen ? S.fmtDateTime(n.last_seen) : ''),
        el('td', { class: 'ops-num', title: (n.cameras || []).join(', ') }, String((n.cameras || []).length)),
        statsCells(n.stats))))));
    box.append(el('h3', { class: 'ops-pad' }, S.t('cluster.leases')));
    if (!c.leases.length) {
      box.append(el('p', { class: 'empty' }, S.t('cluster.noLeases')));
      return;
    }
    box.append(el('table', { class: 'table', 'data-testid': 'cluster-leases' },
      th(['lease', 'holder', 'token', 'expires']),
      el('tbody', {}, c.leases.map((l) => el('tr', { 'data-testid': 'cluster-lease' },
        el('td', {}, l.name), el('td', {}, l.holder), el('td', { class: 'ops-num' }, String(l.token)),
        el('td', { class: 'ops-num ops-small' }, l.expires ? S.fmtDateTime(l.expires) : ''))))));
  }

  async function load() {
    const box = v.body;
    if (!box) return;
    const seq = ++v.seq;
    let c = null, error = '';
    try {
      c = await S.api('GET', '/api/cluster');
    } catch (err) {
      error = O.errorText(err);
    }
    if (seq !== v.seq || box !== v.body) return;
    if (error) {
      clear(box);
      box.append(el('p', { class: 'error-box ops-error', role: 'alert' }, error));
      return;
    }
    renderCluster(c);
  }

  function render() {
    if (!v.root) return;
    clear(v.root);
    v.body = el('div', { class: 'table-wrap', 'data-testid': 'cluster-body' });
    v.reload = el('div', { 'data-testid': 'reload-result' });
    v.root.append(el('div', { class: 'toolbar' }, el('h2', {}, S.t('cluster.heading')), el('span', { class: 'spacer' }),
      el('button', { type: 'button', class: 'btn', 'data-testid': 'reload-config', onclick: reloadConfig }, S.t('reload.button')),
      el('button', { type: 'button', class: 'btn', 'data-testid': 'cluster-refresh', onclick: load }, S.t('cluster.refresh'))),
    v.reload, v.body);
    load();
  }

  S.registerView('cluster', {
    need: 'audit',
    mount(root) {
      v.root = el('div', { class: 'ops-view ops-cluster-view', 'data-testid': 'cluster-view' });
      root.append(v.root);
      render();
      v.timer = window.setInterval(load, REFRESH);
    },
    unmount() {
      window.clearInterval(v.timer);
      v.timer = 0;
      v.seq++;
      v.root = null;
      v.body = null;
      v.reload = null;
    },
    render,
  });
}());
