// Skywatch console: translations. This file creates window.Skywatch with
// the translation functions and the strings of the shell (header, login,
// common words, video states); each view file adds its own strings with
// Skywatch.addStrings. Chinese (zh-CN) is the default, English the other.
'use strict';

(function () {
  const S = (window.Skywatch = window.Skywatch || {});
  const tables = { 'zh-CN': {}, en: {} };
  const hooks = [];
  let current = 'zh-CN';

  // The languages the console offers, in the order of the switch.
  S.languages = [
    { code: 'zh-CN', label: '中文' },
    { code: 'en', label: 'English' },
  ];

  // normLang maps anything a server, a preference or a browser says to one
  // of our languages ("en-US" → "en"); unknown → "".
  S.normLang = function (l) {
    if (typeof l !== 'string' || !l) return '';
    const low = l.toLowerCase();
    if (low.startsWith('zh')) return 'zh-CN';
    if (low.startsWith('en')) return 'en';
    return '';
  };

  // addStrings merges {"zh-CN": {key: text}, "en": {...}} into the tables.
  S.addStrings = function (add) {
    for (const lang of Object.keys(add || {})) {
      const l = S.normLang(lang) || lang;
      tables[l] = Object.assign(tables[l] || {}, add[lang]);
    }
  };

  // t translates key, filling {name} placeholders from vars. When vars.n is
  // 1 and "key.one" exists, that singular form is used. A missing key is
  // shown as the key itself, so that it is noticed.
  S.t = function (key, vars) {
    const table = tables[current] || {};
    let s = table[key];
    if (vars && vars.n === 1 && table[key + '.one'] !== undefined) s = table[key + '.one'];
    if (s === undefined) return key;
    if (vars) {
      s = s.replace(/\{(\w+)\}/g, (m, name) =>
        vars[name] === undefined || vars[name] === null ? m : String(vars[name]));
    }
    return s;
  };

  // hasString says whether key is translated, for values that come from the
  // server and may be new (a state, a class): t them when known, else show
  // them as they are.
  S.hasString = function (key) {
    return Object.prototype.hasOwnProperty.call(tables[current] || {}, key);
  };

  // tv translates a server value under a prefix ("camera.status." +
  // "online"), falling back to the value itself.
  S.tv = function (prefix, value) {
    if (value === undefined || value === null || value === '') return '';
    return S.hasString(prefix + value) ? S.t(prefix + value) : String(value);
  };

  S.lang = function () {
    return current;
  };

  // onLang registers fn(lang), called after every language change.
  S.onLang = function (fn) {
    hooks.push(fn);
  };

  // setLang switches the language, translates the static page and calls
  // the hooks (core re-renders the shell and the mounted view).
  S.setLang = function (l) {
    const lang = S.normLang(l) || 'zh-CN';
    const changed = lang !== current;
    current = lang;
    document.documentElement.lang = lang;
    S.translateDom(document);
    if (changed) hooks.forEach((fn) => fn(lang));
  };

  // translateDom fills elements marked data-i18n (text), data-i18n-title,
  // data-i18n-placeholder and data-i18n-aria-label under root.
  S.translateDom = function (root) {
    root.querySelectorAll('[data-i18n]').forEach((el) => {
      el.textContent = S.t(el.dataset.i18n);
    });
    root.querySelectorAll('[data-i18n-title]').forEach((el) => {
      el.title = S.t(el.dataset.i18nTitle);
    });
    root.querySelectorAll('[data-i18n-placeholder]').forEach((el) => {
      el.placeholder = S.t(el.dataset.i18nPlaceholder);
    });
    root.querySelectorAll('[data-i18n-aria-label]').forEach((el) => {
      el.setAttribute('aria-label', S.t(el.dataset.i18nAriaLabel));
    });
  };

  S.addStrings({
    'zh-CN': {
      'app.name': 'Skywatch 天网',
      'app.subtitle': '综合指挥调度平台',
      'app.loading': '正在加载…',

      'tab.wall': '视频墙',
      'tab.alarms': '警情',
      'tab.map': '地图',
      'tab.devices': '报警设备',
      'tab.units': '巡逻力量',
      'tab.audit': '审计日志',

      'role.viewer': '查看员',
      'role.operator': '值班员',
      'role.supervisor': '值班长',
      'role.admin': '管理员',

      'shell.logout': '退出',
      'shell.language': '语言',
      'shell.allAreas': '全部辖区',
      'shell.area': '辖区',
      'shell.user': '当前用户',
      'shell.clock': '当前时间',
      'shell.noAuth': '未启用登录',
      'shell.live': '实时连接',
      'shell.reconnecting': '正在重连',
      'shell.liveTitle': '实时事件推送已连接',
      'shell.reconnectingTitle': '实时事件推送中断，正在重连；恢复后列表会自动刷新',
      'shell.idleWarning': '长时间无操作，将在 {s} 秒后自动退出。移动鼠标或按任意键继续。',
      'shell.viewMissing': '此页面尚未加载',
      'shell.dismiss': '关闭',

      'login.title': '用户登录',
      'login.subtitle': '请使用您的值班账号登录',
      'login.username': '用户名',
      'login.password': '密码',
      'login.submit': '登录',
      'login.submitting': '正在登录…',
      'login.required': '请输入用户名和密码',
      'login.wrong': '用户名或密码错误',
      'login.locked': '登录失败次数过多，请 {min} 分钟后再试',
      'login.lockedSeconds': '登录失败次数过多，请 {s} 秒后再试',
      'login.network': '无法连接服务器，请检查网络后重试',
      'login.failed': '登录失败：{message}',
      'login.failedStatus': '登录失败：服务器错误（HTTP {status}）',
      'login.expired': '会话已失效，请重新登录',
      'login.loggedOut': '您已安全退出',
      'login.idle': '因长时间无操作，已自动退出',
      'login.footer': '本系统仅限授权人员使用，所有操作均被记录',

      'error.network': '网络错误，无法连接服务器',
      'error.http': '服务器错误（HTTP {status}）',
      'error.forbidden': '无权限',

      'player.state.connecting': '连接中',
      'player.state.playing': '播放中',
      'player.state.retrying': '重连中',
      'player.state.offline': '不可用',
      'player.state.denied': '无权限',
      'player.state.removed': '已移除',
      'player.state.empty': '空闲',
      'player.retryIn': '{s} 秒后重试',
      'player.reconnecting': '正在重新连接',
      'player.interrupted': '连接中断',
      'player.failed': '连接失败',
      'player.timeout': '连接超时',
      'player.noPicture': '画面中断',
      'player.unavailable': '相机暂不可用',
      'player.unknown': '相机不存在',
      'player.removed': '该相机已从配置中移除',
      'player.changed': '相机设置已更改，正在重新连接',
      'player.denied': '您无权查看此相机',
      'player.outsideArea': '此相机不在您的辖区',
      'player.network': '网络错误',
      'player.server': '服务器错误（HTTP {status}）',
      'player.stream.sub': '子码流',
      'player.stream.main': '主码流',
      'player.unavailableWhy': '相机暂不可用：{reason}',
      'camera.error.unreachable': '无法连接相机（网络不通或相机未开机）',
      'camera.error.timeout': '相机响应超时',
      'camera.error.auth': '相机用户名或密码错误',
      'camera.error.not_found': '相机上没有该码流（通道或路径有误）',
      'camera.error.unsupported': '相机的码流格式不受支持',
      'camera.error.other': '相机码流异常',
      'player.tooMany': '打开的视频过多（上限 {limit} 路），请先关闭其他画面',

      'camera.status.online': '在线',
      'camera.status.offline': '待机',
      'camera.status.connecting': '连接中',
      'camera.status.retrying': '故障',
      'camera.status.unknown': '未知',

      'time.justNow': '刚刚',
      'time.secondsAgo': '{n} 秒前',
      'time.minutesAgo': '{n} 分钟前',
      'time.hoursAgo': '{n} 小时前',
      'time.daysAgo': '{n} 天前',
      'time.inSeconds': '{n} 秒后',
      'time.inMinutes': '{n} 分钟后',
      'time.inHours': '{n} 小时后',
      'time.inDays': '{n} 天后',
      'time.dur.s': '{s} 秒',
      'time.dur.ms': '{m} 分 {s} 秒',
      'time.dur.hm': '{h} 小时 {m} 分',
      'time.dur.dh': '{d} 天 {h} 小时',

      'common.ok': '确定',
      'common.cancel': '取消',
      'common.close': '关闭',
      'common.save': '保存',
      'common.search': '搜索',
      'common.refresh': '刷新',
      'common.loading': '加载中…',
      'common.none': '无',
      'common.all': '全部',
      'common.retry': '重试',
      'common.yes': '是',
      'common.no': '否',
      'common.more': '加载更多',
      'common.noData': '暂无数据',
    },
    en: {
      'app.name': 'Skywatch',
      'app.subtitle': 'Command Centre',
      'app.loading': 'Loading…',

      'tab.wall': 'Video wall',
      'tab.alarms': 'Alarms',
      'tab.map': 'Map',
      'tab.devices': 'Alarm devices',
      'tab.units': 'Patrol units',
      'tab.audit': 'Audit log',

      'role.viewer': 'Viewer',
      'role.operator': 'Operator',
      'role.supervisor': 'Supervisor',
      'role.admin': 'Administrator',

      'shell.logout': 'Log out',
      'shell.language': 'Language',
      'shell.allAreas': 'All areas',
      'shell.area': 'Area',
      'shell.user': 'Signed in as',
      'shell.clock': 'Current time',
      'shell.noAuth': 'Login not enabled',
      'shell.live': 'Live',
      'shell.reconnecting': 'Reconnecting',
      'shell.liveTitle': 'Live event feed connected',
      'shell.reconnectingTitle': 'Live event feed interrupted, reconnecting; lists reload when it is back',
      'shell.idleWarning': 'No activity: you will be logged out in {s} s. Move the mouse or press a key to stay.',
      'shell.viewMissing': 'This page is not loaded',
      'shell.dismiss': 'Dismiss',

      'login.title': 'Sign in',
      'login.subtitle': 'Use your duty account',
      'login.username': 'User name',
      'login.password': 'Password',
      'login.submit': 'Sign in',
      'login.submitting': 'Signing in…',
      'login.required': 'Enter your user name and password',
      'login.wrong': 'Wrong user name or password',
      'login.locked': 'Too many failed attempts, try again in {min} min',
      'login.lockedSeconds': 'Too many failed attempts, try again in {s} s',
      'login.network': 'Cannot reach the server; check the network and try again',
      'login.failed': 'Sign-in failed: {message}',
      'login.failedStatus': 'Sign-in failed: server error (HTTP {status})',
      'login.expired': 'Your session has ended; please sign in again',
      'login.loggedOut': 'You have signed out',
      'login.idle': 'Signed out after a period of inactivity',
      'login.footer': 'Authorised personnel only. All actions are recorded.',

      'error.network': 'Network error: cannot reach the server',
      'error.http': 'Server error (HTTP {status})',
      'error.forbidden': 'Not allowed',

      'player.state.connecting': 'Connecting',
      'player.state.playing': 'Live',
      'player.state.retrying': 'Reconnecting',
      'player.state.offline': 'Unavailable',
      'player.state.denied': 'No access',
      'player.state.removed': 'Removed',
      'player.state.empty': 'Empty',
      'player.retryIn': 'retrying in {s} s',
      'player.reconnecting': 'reconnecting',
      'player.interrupted': 'Connection interrupted',
      'player.failed': 'Connection failed',
      'player.timeout': 'Connection timed out',
      'player.noPicture': 'Picture stopped',
      'player.unavailable': 'Camera unavailable',
      'player.unknown': 'Unknown camera',
      'player.removed': 'Camera removed from the configuration',
      'player.changed': 'Camera settings changed, reconnecting',
      'player.denied': 'You may not view this camera',
      'player.outsideArea': 'This camera is outside your area',
      'player.network': 'Network error',
      'player.server': 'Server error (HTTP {status})',
      'player.stream.sub': 'Sub stream',
      'player.stream.main': 'Main stream',
      'player.unavailableWhy': 'Camera unavailable: {reason}',
      'camera.error.unreachable': 'the camera cannot be reached (network down or camera off)',
      'camera.error.timeout': 'the camera did not answer in time',
      'camera.error.auth': 'wrong camera user name or password',
      'camera.error.not_found': 'no such stream on the camera (wrong channel or path)',
      'camera.error.unsupported': 'the camera\'s stream format is not supported',
      'camera.error.other': 'the camera\'s stream failed',
      'player.tooMany': 'Too many videos open (at most {limit}): close other views first',

      'camera.status.online': 'Online',
      'camera.status.offline': 'Standby',
      'camera.status.connecting': 'Connecting',
      'camera.status.retrying': 'Fault',
      'camera.status.unknown': 'Unknown',

      'time.justNow': 'just now',
      'time.secondsAgo': '{n} s ago',
      'time.minutesAgo': '{n} min ago',
      'time.hoursAgo': '{n} h ago',
      'time.daysAgo': '{n} days ago',
      'time.daysAgo.one': '1 day ago',
      'time.inSeconds': 'in {n} s',
      'time.inMinutes': 'in {n} min',
      'time.inHours': 'in {n} h',
      'time.inDays': 'in {n} days',
      'time.inDays.one': 'in 1 day',
      'time.dur.s': '{s} s',
      'time.dur.ms': '{m} min {s} s',
      'time.dur.hm': '{h} h {m} min',
      'time.dur.dh': '{d} d {h} h',

      'common.ok': 'OK',
      'common.cancel': 'Cancel',
      'common.close': 'Close',
      'common.save': 'Save',
      'common.search': 'Search',
      'common.refresh': 'Refresh',
      'common.loading': 'Loading…',
      'common.none': 'None',
      'common.all': 'All',
      'common.retry': 'Retry',
      'common.yes': 'Yes',
      'common.no': 'No',
      'common.more': 'Load more',
      'common.noData': 'No data',
    },
  });
})();
