// Skywatch console: start-up. Asks the server who is logged in, then shows
// the login form or the console (language, areas, the view the URL names,
// else the wall).
'use strict';

(function () {
  const S = window.Skywatch;

  async function boot() {
    S.setLang(S.normLang(localStorage.getItem('skywatch.lang')) || 'zh-CN');
    S.wireShell();
    let resp;
    try {
      resp = await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
    } catch (_) {
      S.showLogin('login.network');
      return;
    }
    if (resp.status === 200) {
      await S.startSession(await resp.json());
    } else if (resp.status === 404) {
      // A server without login: the console works without a user.
      await S.startSession(null);
    } else {
      S.showLogin('');
    }
  }

  boot().catch(() => S.showLogin('login.network'));
})();
