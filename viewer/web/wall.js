// Skywatch console: the camera wall. A tree of the cameras by area (with a
// search box) beside a grid of 1, 4, 9 or 16 tiles; each tile plays one
// camera's sub stream over WHEP, and its main stream when shown full
// screen. The layout and which camera is in which tile are kept in the
// user's preferences ("wall": {"layout": 4, "tiles": [...]}).
//
// Route parameters (for unattended wall displays): #/wall?layout=9&cameras=a,b
// shows those cameras without changing the saved wall.
'use strict';

(function () {
  const S = window.Skywatch;
  const h = S.h;

  const LAYOUTS = [1, 4, 9, 16];
  const MAX_TILES = 16;
  const REFRESH_MS = 4000;
  const UNASSIGNED = '\u0000unassigned';

  S.addStrings({
    'zh-CN': {
      'wall.cameras': '相机',
      'wall.search': '搜索名称、编号或辖区',
      'wall.searchLabel': '搜索相机',
      'wall.summary': '在线 {online} / 共 {total}',
      'wall.stat.online': '在线',
      'wall.stat.standby': '待机',
      'wall.stat.fault': '故障',
      'wall.unassigned': '未分配辖区',
      'wall.allCameras': '全部相机',
      'wall.noCameras': '辖区内没有相机',
      'wall.noMatch': '没有匹配“{q}”的相机',
      'wall.listError': '相机列表暂不可用：{message}',
      'wall.loading': '正在加载相机列表…',
      'wall.hint': '单击相机放入选中画面，或拖动到任意画面。双击画面全屏。',
      'wall.layout': '画面布局',
      'wall.layoutN': '{n} 画面',
      'wall.playing': '{n} / {total} 路在播',
      'wall.selected': '当前画面：{n}',
      'wall.clearAll': '清空画面',
      'wall.emptyTitle': '空闲画面',
      'wall.emptyHint': '从左侧选择相机',
      'wall.close': '关闭此画面',
      'wall.fullscreen': '全屏（主码流）',
      'wall.exitFullscreen': '退出全屏',
      'wall.onWall': '画面 {n}',
      'wall.cameraTitle': '{name}（{id}）· {status}',
      'wall.lastError': '最近错误：{error}',
      'wall.subLastError': '子码流最近错误：{error}',
      'wall.since': '自 {time}',
      'wall.collapse': '收起',
      'wall.areaToWall': '将此辖区的相机上墙（{n} 路）',
      'wall.expand': '展开',
    },
    en: {
      'wall.cameras': 'Cameras',
      'wall.search': 'Search name, ID or area',
      'wall.searchLabel': 'Search cameras',
      'wall.summary': '{online} of {total} online',
      'wall.stat.online': 'Online',
      'wall.stat.standby': 'Standby',
      'wall.stat.fault': 'Fault',
      'wall.unassigned': 'No area',
      'wall.allCameras': 'All cameras',
      'wall.noCameras': 'No cameras in your area',
      'wall.noMatch': 'No camera matches “{q}”',
      'wall.listError': 'Camera list unavailable: {message}',
      'wall.loading': 'Loading cameras…',
      'wall.hint': 'Click a camera to show it in the selected tile, or drag it onto any tile. Double-click a tile for full screen.',
      'wall.layout': 'Layout',
      'wall.layoutN': '{n} tiles',
      'wall.layoutN.one': '1 tile',
      'wall.playing': '{n} of {total} playing',
      'wall.selected': 'Selected tile: {n}',
      'wall.clearAll': 'Clear wall',
      'wall.emptyTitle': 'Empty tile',
      'wall.emptyHint': 'Choose a camera on the left',
      'wall.close': 'Close this tile',
      'wall.fullscreen': 'Full screen (main stream)',
      'wall.exitFullscreen': 'Exit full screen',
      'wall.onWall': 'Tile {n}',
      'wall.cameraTitle': '{name} ({id}) · {status}',
      'wall.lastError': 'Last error: {error}',
      'wall.subLastError': 'Sub stream last error: {error}',
      'wall.since': 'since {time}',
      'wall.collapse': 'Collapse',
      'wall.areaToWall': 'Show this area\'s cameras on the wall ({n})',
      'wall.expand': 'Expand',
    },
  });

  // statusClass maps a camera's status to a colour.
  function statusClass(status) {
    switch (status) {
      case 'online': return 'ok';
      case 'connecting': return 'info';
      case 'retrying': return 'err';
      default: return 'muted';
    }
  }
  // stateClass maps a tile's state to a badge colour.
  function stateClass(state) {
    switch (state) {
      case 'playing': return 'ok';
      case 'connecting': case 'playback': return 'info';
      case 'retrying': return 'warn';
      case 'offline': case 'denied': case 'removed': return 'err';
      default: return 'muted';
    }
  }

  // Tile is one cell of the grid and the player in it.
  class Tile {
    constructor(wall, index) {
      this.wall = wall;
      this.index = index;
      this.cameraId = null;
      this.player = null;
      this.state = 'empty';
      this.video = h('video', { muted: true, autoplay: true, playsinline: true, disablepictureinpicture: true });
      this.el = h('div', { class: 'tile', tabindex: '0', 'data-testid': 'tile', 'data-index': String(index), 'data-state': 'empty', 'data-camera': '' });
      this.numEl = h('span', { class: 'tile-num', text: String(index + 1) });
      this.nameEl = h('span', { class: 'tile-name ellipsis' });
      this.areaEl = h('span', { class: 'tile-area ellipsis' });
      this.badgeEl = h('span', { class: 'badge tile-state' });
      this.msgEl = h('div', { class: 'tile-msg' });
      this.streamEl = h('span', { class: 'tile-stream' });
      this.fullBtn = h('button', { type: 'button', class: 'tile-btn', 'data-testid': 'tile-fullscreen' }, S.icon('expand'));
      this.closeBtn = h('button', { type: 'button', class: 'tile-btn', 'data-testid': 'tile-close' }, S.icon('close'));
      this.emptyTitle = h('span', { class: 'tile-empty-title' });
      this.emptyHint = h('span', { class: 'tile-empty-hint' });
      this.el.append(
        this.video,
        h('div', { class: 'tile-empty' }, h('span', { class: 'tile-empty-num', text: String(index + 1) }), this.emptyTitle, this.emptyHint),
        h('div', { class: 'tile-top' }, this.numEl, this.nameEl, this.areaEl, h('span', { class: 'spacer' }), this.badgeEl),
        h('span', { class: 'spinner tile-spin', 'aria-hidden': 'true' }),
        this.msgEl,
        h('div', { class: 'tile-bottom' }, this.streamEl, h('span', { class: 'spacer' }), this.fullBtn, this.closeBtn),
      );
      // The single view's timeline and recording player.
      this.pb = new S.Playback({
        el: this.el,
        stopLive: () => {
          this.stopPlayer();
          this.state = 'playback';
          this.render();
          this.wall.renderInfo();
        },
        startLive: () => this.play(this.cameraId, 'main'),
      });
      this.el.addEventListener('click', () => wall.select(index));
      this.el.addEventListener('dblclick', (ev) => {
        ev.preventDefault();
        if (this.cameraId) wall.toggleExpand(index);
      });
      this.fullBtn.addEventListener('click', (ev) => {
        ev.stopPropagation();
        wall.toggleExpand(index);
      });
      this.closeBtn.addEventListener('click', (ev) => {
        ev.stopPropagation();
        wall.assign(index, null);
      });
      this.fullBtn.addEventListener('dblclick', (ev) => ev.stopPropagation());
      this.closeBtn.addEventListener('dblclick', (ev) => ev.stopPropagation());
      // Drop a camera from the tree, or another tile (swap).
      this.el.addEventListener('dragover', (ev) => {
        if (wall.dragging) {
          ev.preventDefault();
          this.el.classList.add('drop');
        }
      });
      this.el.addEventListener('dragleave', () => this.el.classList.remove('drop'));
      this.el.addEventListener('drop', (ev) => {
        ev.preventDefault();
        this.el.classList.remove('drop');
        const d = wall.dragging;
        wall.dragging = null;
        if (!d) return;
        if (d.tile !== undefined) wall.swap(d.tile, index);
        else wall.assign(index, d.camera, true);
      });
      this.el.draggable = true;
      this.el.addEventListener('dragstart', (ev) => {
        if (!this.cameraId) {
          ev.preventDefault();
          return;
        }
        wall.dragging = { tile: index };
        ev.dataTransfer.setData('text/plain', this.cameraId);
        ev.dataTransfer.effectAllowed = 'move';
      });
      this.el.addEventListener('dragend', () => {
        wall.dragging = null;
      });
    }

    // play shows camera id (null: empty) on the stream kind.
    play(id, stream) {
      if (this.pb.open && (this.cameraId !== id || stream !== 'main')) this.pb.hide();
      if (this.pb.mode === 'playback' && this.cameraId === id) return;
      if (this.player && this.cameraId === id) {
        this.player.setStream(stream);
        this.render();
        return;
      }
      this.stopPlayer();
      this.cameraId = id;
      this.state = id ? 'connecting' : 'empty';
      if (id) {
        this.player = S.Player(this.video, id, {
          stream,
          onState: (state) => {
            this.state = state;
            this.render();
            // A camera pulled on demand has just come online: show it so.
            if (state === 'playing') this.wall.refreshSoon();
            this.wall.renderInfo();
            this.wall.renderCounts();
          },
        });
        this.player.start();
      }
      this.render();
    }

    stopPlayer() {
      if (this.player) this.player.stop();
      this.player = null;
      this.video.srcObject = null;
    }

    render() {
      const cam = this.cameraId ? this.wall.cameras.get(this.cameraId) : null;
      const el = this.el;
      el.dataset.camera = this.cameraId || '';
      el.dataset.state = this.state;
      el.classList.toggle('is-empty', !this.cameraId);
      el.classList.toggle('is-playing', this.state === 'playing');
      this.emptyTitle.textContent = S.t('wall.emptyTitle');
      this.emptyHint.textContent = S.t('wall.emptyHint');
      this.nameEl.textContent = this.cameraId ? (cam && cam.name) || this.cameraId : '';
      this.nameEl.title = this.cameraId || '';
      this.areaEl.textContent = cam && cam.area ? S.areaName(cam.area) : '';
      this.badgeEl.textContent = S.t('player.state.' + this.state);
      this.badgeEl.className = 'badge tile-state badge-' + stateClass(this.state);
      // The player says why in the language shown now.
      const detail = this.player && this.state !== 'playing' ? this.player.detail : '';
      this.msgEl.textContent = detail;
      this.msgEl.hidden = !detail;
      const stream = this.player ? this.player.stream : 'sub';
      this.streamEl.textContent = this.cameraId ? S.t('player.stream.' + stream) : '';
      this.streamEl.classList.toggle('main', stream === 'main');
      const expanded = this.wall.expanded === this.index;
      this.fullBtn.replaceChildren(S.icon(expanded ? 'collapse' : 'expand'));
      this.fullBtn.title = S.t(expanded ? 'wall.exitFullscreen' : 'wall.fullscreen');
      this.fullBtn.setAttribute('aria-label', this.fullBtn.title);
      this.closeBtn.title = S.t('wall.close');
      this.closeBtn.setAttribute('aria-label', this.closeBtn.title);
      el.setAttribute('aria-label', S.t('wall.onWall', { n: this.index + 1 }) + (this.cameraId ? ' · ' + this.nameEl.textContent : ''));
      this.pb.render();
    }
  }

  // Wall is the view: the camera tree, the toolbar and the grid.
  class Wall {
    constructor(el, params) {
      this.el = el;
      this.cameras = new Map(); // id → camera JSON
      this.list = []; // cameras in API order
      this.loaded = false;
      this.listError = '';
      this.query = '';
      this.collapsed = new Set();
      this.assigned = new Array(MAX_TILES).fill(null);
      this.layout = 4;
      this.selected = 0;
      this.expanded = -1;
      this.dragging = null;
      this.tiles = [];
      this.treeKey = '';
      this.rows = new Map(); // camera id → tree row parts
      this.groupCounts = new Map(); // area id → count element
      this.refreshTimer = null;
      this.stopped = false;
      // Which wall: the route's (a wall display), else the saved one,
      // else (none saved) the first cameras once the list is in.
      this.temporary = false;
      this.autofill = false;
      const saved = S.prefs.get('wall');
      if (params && params.cameras) {
        this.temporary = true;
        params.cameras.split(',').slice(0, MAX_TILES).forEach((id, i) => { this.assigned[i] = id.trim() || null; });
        this.layout = LAYOUTS.includes(Number(params.layout)) ? Number(params.layout) : fitLayout(params.cameras.split(',').length);
      } else if (saved && typeof saved === 'object') {
        if (LAYOUTS.includes(Number(saved.layout))) this.layout = Number(saved.layout);
        (Array.isArray(saved.tiles) ? saved.tiles : []).slice(0, MAX_TILES).forEach((id, i) => {
          this.assigned[i] = typeof id === 'string' && id ? id : null;
        });
      } else {
        this.autofill = true;
        if (params && LAYOUTS.includes(Number(params.layout))) this.layout = Number(params.layout);
      }
      for (let i = 0; i < MAX_TILES; i++) this.tiles.push(new Tile(this, i));
      this.build();
      this.onKey = (ev) => this.key(ev);
      this.onFullscreen = () => {
        if (!document.fullscreenElement && this.expanded >= 0 && this.wentFullscreen) this.toggleExpand(this.expanded);
      };
      document.addEventListener('keydown', this.onKey);
      document.addEventListener('fullscreenchange', this.onFullscreen);
    }

    build() {
      this.searchInput = h('input', {
        type: 'search', class: 'input wall-search-input', 'data-testid': 'camera-search', autocomplete: 'off', spellcheck: 'false',
        oninput: () => {
          this.query = this.searchInput.value.trim();
          this.renderTree();
        },
      });
      this.titleEl = h('span', { class: 'panel-title' });
      this.summaryEl = h('span', { class: 'wall-summary num' });
      this.statsEl = h('div', { class: 'wall-stats' });
      this.treeEl = h('div', { class: 'wall-tree', role: 'tree', 'data-testid': 'camera-tree' });
      this.hintEl = h('div', { class: 'wall-hint' });
      this.errorEl = h('div', { class: 'wall-error', role: 'alert', hidden: true });
      const side = h('aside', { class: 'wall-side panel' },
        h('div', { class: 'panel-head' }, this.titleEl, this.summaryEl),
        h('div', { class: 'wall-search' }, S.icon('search', 'wall-search-icon'), this.searchInput),
        this.statsEl, this.errorEl, this.treeEl, this.hintEl);

      this.layoutBtns = LAYOUTS.map((n) => h('button', {
        type: 'button', class: 'btn btn-small layout-btn', 'data-layout': String(n), 'data-testid': 'layout-' + n,
        onclick: () => this.setLayout(n, true),
      }, layoutIcon(n), h('span', { class: 'num', text: String(n) })));
      this.layoutGroup = h('div', { class: 'btn-group', role: 'group' }, this.layoutBtns);
      this.infoEl = h('span', { class: 'wall-info num', 'data-testid': 'wall-info' });
      this.clearBtn = h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-testid': 'wall-clear', onclick: () => this.clearAll() }, S.icon('trash'), h('span'));
      this.gridEl = h('div', { class: 'wall-grid', 'data-testid': 'wall-grid' });
      const main = h('section', { class: 'wall-main' },
        h('div', { class: 'wall-toolbar' }, this.layoutGroup, this.infoEl, h('span', { class: 'spacer' }), this.clearBtn),
        this.gridEl);
      this.el.append(h('div', { class: 'wall-view' }, side, main));
    }

    start() {
      this.selected = this.firstEmpty(0);
      this.setLayout(this.layout, false);
      this.render();
      this.refresh();
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.refreshTimer);
      clearTimeout(this.soon);
      document.removeEventListener('keydown', this.onKey);
      document.removeEventListener('fullscreenchange', this.onFullscreen);
      if (document.fullscreenElement && this.el.contains(document.fullscreenElement)) document.exitFullscreen().catch(() => {});
      this.tiles.forEach((t) => {
        t.pb.hide();
        t.stopPlayer();
      });
    }

    async refresh() {
      clearTimeout(this.refreshTimer);
      try {
        const list = await S.api('GET', '/api/cameras');
        if (this.stopped) return;
        this.list = Array.isArray(list) ? list : [];
        this.cameras = new Map(this.list.map((c) => [c.id, c]));
        this.listError = '';
        const first = !this.loaded;
        this.loaded = true;
        if (first && this.autofill) this.fill();
        this.renderTree();
        this.tiles.forEach((t) => t.render());
      } catch (err) {
        if (this.stopped) return;
        this.listError = err.message;
        this.renderTree();
      }
      if (this.stopped) return;
      clearTimeout(this.refreshTimer); // one loop, even when two refreshes overlapped
      this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_MS);
    }

    // status is the camera's status for the tree: online when either of
    // its streams is (the wall plays the sub stream while the main one may
    // be idle), or when a tile here plays it.
    status(c) {
      if (c.status === 'online' || c.sub_status === 'online') return 'online';
      if (this.tiles.some((t) => t.cameraId === c.id && t.state === 'playing')) return 'online';
      return c.status;
    }

    refreshSoon() {
      if (this.soon || this.stopped) return;
      this.soon = setTimeout(() => {
        this.soon = null;
        if (!this.stopped) this.refresh();
      }, 700);
    }

    // fill puts the first cameras (in the tree's order) on an unsaved wall.
    fill() {
      const ids = this.orderedCameras().map((c) => c.id).slice(0, this.layout);
      ids.forEach((id, i) => { this.assigned[i] = id; });
      this.applyTiles();
      this.selected = this.firstEmpty(0);
      this.renderChrome();
    }

    save() {
      if (this.temporary) return;
      this.autofill = false;
      let tiles = this.assigned.slice();
      while (tiles.length && !tiles[tiles.length - 1]) tiles.pop();
      S.prefs.set('wall', { layout: this.layout, tiles });
    }

    setLayout(n, byUser) {
      this.layout = n;
      if (this.expanded >= n) this.expanded = -1;
      this.gridEl.className = 'wall-grid layout-' + n + (this.expanded >= 0 ? ' has-expanded' : '');
      this.gridEl.replaceChildren(...this.tiles.slice(0, n).map((t) => t.el));
      if (this.selected >= n) this.selected = this.firstEmpty(0);
      this.applyTiles();
      this.renderChrome();
      if (byUser) {
        if (this.autofill && this.loaded) this.fill();
        this.save();
      }
    }

    // applyTiles starts the visible tiles' players and stops the others.
    applyTiles() {
      this.tiles.forEach((t, i) => {
        const id = i < this.layout ? this.assigned[i] : null;
        t.play(id, this.expanded === i ? 'main' : 'sub');
      });
    }

    firstEmpty(from) {
      for (let k = 0; k < this.layout; k++) {
        const i = (from + k) % this.layout;
        if (!this.assigned[i]) return i;
      }
      return Math.min(from, this.layout - 1);
    }

    select(i) {
      if (i < 0 || i >= this.layout) return;
      this.selected = i;
      this.renderChrome();
    }

    // assign puts camera id (null: none) in tile i. From the tree, a
    // camera already on the wall is selected there instead of shown twice.
    assign(i, id, fromTree) {
      if (id && fromTree) {
        const at = this.assigned.slice(0, this.layout).indexOf(id);
        if (at >= 0 && at !== i) {
          this.assigned[at] = null;
        }
      }
      if (this.expanded === i && !id) this.collapseExpanded();
      this.assigned[i] = id || null;
      this.tiles[i].play(this.assigned[i], this.expanded === i ? 'main' : 'sub');
      if (this.expanded === i && id) this.tiles[i].pb.show(id);
      this.save();
      this.renderChrome();
      this.renderTreeState();
    }

    // choose is a click on a camera in the tree.
    choose(id) {
      const at = this.assigned.slice(0, this.layout).indexOf(id);
      if (at >= 0) {
        this.select(at);
        this.flash(at);
        return;
      }
      const i = this.selected;
      this.assign(i, id, true);
      this.selected = this.firstEmpty((i + 1) % this.layout);
      if (this.selected === i && this.layout > 1) this.selected = (i + 1) % this.layout;
      this.renderChrome();
    }

    // showArea puts an area's cameras (those the search shows, at most 16)
    // on the wall, in a layout that fits them.
    showArea(n) {
      const ids = [];
      const walk = (x) => {
        x.cameras.forEach((c) => ids.push(c.id));
        x.children.forEach(walk);
      };
      walk(n);
      if (!ids.length) return;
      this.collapseExpanded();
      this.assigned.fill(null);
      ids.slice(0, MAX_TILES).forEach((id, i) => { this.assigned[i] = id; });
      this.autofill = false;
      this.setLayout(fitLayout(Math.min(ids.length, MAX_TILES)), true);
      this.selected = this.firstEmpty(0);
      this.renderChrome();
      this.renderTreeState();
    }

    swap(a, b) {
      if (a === b) return;
      [this.assigned[a], this.assigned[b]] = [this.assigned[b], this.assigned[a]];
      if (this.expanded === a || this.expanded === b) this.collapseExpanded();
      this.tiles[a].play(this.assigned[a], 'sub');
      this.tiles[b].play(this.assigned[b], 'sub');
      this.selected = b;
      this.save();
      this.renderChrome();
      this.renderTreeState();
    }

    flash(i) {
      const el = this.tiles[i].el;
      el.classList.remove('flash');
      void el.offsetWidth; // restart the animation
      el.classList.add('flash');
    }

    clearAll() {
      this.collapseExpanded();
      for (let i = 0; i < MAX_TILES; i++) this.assigned[i] = null;
      this.applyTiles();
      this.selected = 0;
      this.save();
      this.renderChrome();
      this.renderTreeState();
    }

    // toggleExpand shows tile i alone on its main stream (and full screen
    // when the browser allows), or back in the grid on its sub stream.
    toggleExpand(i) {
      if (this.expanded === i) {
        this.collapseExpanded();
      } else {
        if (!this.assigned[i]) return;
        this.collapseExpanded();
        this.expanded = i;
        this.selected = i;
        this.wentFullscreen = false;
        const el = this.tiles[i].el;
        // The browser refuses full screen without a click or key; the
        // tile then fills the wall only.
        const gesture = !navigator.userActivation || navigator.userActivation.isActive;
        if (el.requestFullscreen && gesture) {
          el.requestFullscreen().then(() => { this.wentFullscreen = true; }, () => {});
        }
        this.tiles[i].play(this.assigned[i], 'main');
        this.tiles[i].pb.show(this.assigned[i]);
      }
      this.gridEl.classList.toggle('has-expanded', this.expanded >= 0);
      this.tiles.forEach((t, k) => t.el.classList.toggle('expanded', k === this.expanded));
      this.renderChrome();
    }

    collapseExpanded() {
      const i = this.expanded;
      if (i < 0) return;
      this.expanded = -1;
      this.wentFullscreen = false;
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      this.gridEl.classList.remove('has-expanded');
      this.tiles[i].el.classList.remove('expanded');
      this.tiles[i].pb.hide();
      this.tiles[i].play(this.assigned[i], 'sub');
    }

    // key: arrows move the selection, Enter or f shows the selected tile
    // full screen, Escape returns, Delete empties it. Only when no control
    // has the focus (a button's Enter is the button's).
    key(ev) {
      if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const t = ev.target;
      const free = t === document.body || (t && t.classList && t.classList.contains('tile'));
      if (!free && ev.key !== 'Escape') return;
      const n = this.layout;
      const side = Math.round(Math.sqrt(n));
      switch (ev.key) {
        case 'Escape':
          if (this.expanded >= 0) this.toggleExpand(this.expanded);
          break;
        case 'Enter':
        case 'f':
          if (this.assigned[this.selected]) this.toggleExpand(this.selected);
          break;
        case 'Delete':
          if (this.assigned[this.selected]) this.assign(this.selected, null);
          break;
        case 'ArrowRight': this.select((this.selected + 1) % n); break;
        case 'ArrowLeft': this.select((this.selected + n - 1) % n); break;
        case 'ArrowDown': this.select((this.selected + side) % n); break;
        case 'ArrowUp': this.select((this.selected + n - side) % n); break;
        default: return;
      }
      ev.preventDefault();
    }

    // ----- rendering

    render() {
      this.treeKey = '';
      this.renderChrome();
      this.renderTree();
      this.tiles.forEach((t) => t.render());
    }

    renderChrome() {
      this.titleEl.textContent = S.t('wall.cameras');
      this.searchInput.placeholder = S.t('wall.search');
      this.searchInput.setAttribute('aria-label', S.t('wall.searchLabel'));
      this.hintEl.textContent = S.t('wall.hint');
      this.layoutGroup.setAttribute('aria-label', S.t('wall.layout'));
      this.layoutBtns.forEach((b) => {
        const n = Number(b.dataset.layout);
        b.setAttribute('aria-pressed', String(n === this.layout));
        b.title = S.t('wall.layoutN', { n });
      });
      this.clearBtn.lastChild.textContent = S.t('wall.clearAll');
      this.renderInfo();
      this.tiles.forEach((t, i) => t.el.classList.toggle('selected', i === this.selected));
      this.tiles.slice(0, this.layout).forEach((t) => t.render());
    }

    // renderInfo counts the tiles that play a picture now (not those that
    // only have a camera: a refused or offline one plays nothing).
    renderInfo() {
      const playing = this.tiles.slice(0, this.layout).filter((t) => t.state === 'playing').length;
      this.infoEl.textContent = S.t('wall.playing', { n: playing, total: this.layout }) + '  ·  ' + S.t('wall.selected', { n: this.selected + 1 });
      this.infoEl.dataset.playing = String(playing);
    }

    // orderedCameras lists the cameras in the tree's order.
    orderedCameras() {
      const out = [];
      const walk = (node) => {
        node.cameras.forEach((c) => out.push(c));
        node.children.forEach(walk);
      };
      this.buildTree('').forEach(walk);
      return out;
    }

    // buildTree groups the cameras matching q under their areas: a list of
    // root nodes {area, cameras, children, total, online}; areas without
    // cameras are left out.
    buildTree(q) {
      const match = (c) => {
        if (!q) return true;
        const hay = [c.name, c.id, c.area ? S.areaPath(c.area).join(' ') : ''].join(' ').toLowerCase();
        return hay.includes(q.toLowerCase());
      };
      const nodes = new Map();
      const node = (id) => {
        if (!nodes.has(id)) nodes.set(id, { id, area: S.areaById(id), cameras: [], children: [], total: 0, online: 0 });
        return nodes.get(id);
      };
      const cams = this.list.filter(match);
      for (const c of cams) node(c.area && S.areaById(c.area) ? c.area : UNASSIGNED).cameras.push(c);
      // Give every area with cameras its chain of parents.
      for (const id of [...nodes.keys()]) {
        let a = S.areaById(id);
        while (a && a.parent && S.areaById(a.parent)) {
          const parent = node(a.parent);
          if (!parent.children.some((n) => n.id === a.id)) parent.children.push(node(a.id));
          a = S.areaById(a.parent);
        }
      }
      const order = new Map(S.areas.map((a, i) => [a.id, i]));
      const count = (n) => {
        n.children.sort((x, y) => (order.get(x.id) ?? 0) - (order.get(y.id) ?? 0));
        n.cameras.sort((x, y) => (x.name || x.id).localeCompare(y.name || y.id, S.lang()));
        n.total = n.cameras.length;
        n.online = n.cameras.filter((c) => this.status(c) === 'online').length;
        for (const ch of n.children) {
          count(ch);
          n.total += ch.total;
          n.online += ch.online;
        }
      };
      const roots = [...nodes.values()].filter((n) => n.id === UNASSIGNED || !n.area.parent || !S.areaById(n.area.parent));
      roots.sort((x, y) => (x.id === UNASSIGNED) - (y.id === UNASSIGNED) || (order.get(x.id) ?? 0) - (order.get(y.id) ?? 0));
      roots.forEach(count);
      return roots;
    }

    // renderCounts updates the tree's statuses and counts after a tile's
    // state changed (cheaply: a whole renderTree rebuilds nothing then).
    renderCounts() {
      if (this.loaded && !this.countsQueued) {
        this.countsQueued = true;
        requestAnimationFrame(() => {
          this.countsQueued = false;
          if (!this.stopped) this.renderTree();
        });
      }
    }

    renderTree() {
      const list = this.list;
      const counts = { online: 0, standby: 0, fault: 0 };
      for (const c of list) {
        const st = this.status(c);
        if (st === 'online') counts.online++;
        else if (st === 'retrying') counts.fault++;
        else counts.standby++;
      }
      this.summaryEl.textContent = this.loaded ? S.t('wall.summary', { online: counts.online, total: list.length }) : '';
      this.statsEl.replaceChildren(
        stat('ok', S.t('wall.stat.online'), counts.online),
        stat('muted', S.t('wall.stat.standby'), counts.standby),
        stat('err', S.t('wall.stat.fault'), counts.fault));
      this.errorEl.hidden = !this.listError;
      this.errorEl.textContent = this.listError ? S.t('wall.listError', { message: this.listError }) : '';

      const q = this.query;
      const roots = this.buildTree(q);
      const key = JSON.stringify([S.lang(), q, [...this.collapsed], this.loaded,
        list.map((c) => [c.id, c.name, c.area || ''])]);
      if (key !== this.treeKey) {
        this.treeKey = key;
        this.rows.clear();
        this.groupCounts.clear();
        const flat = roots.length === 1 && roots[0].id === UNASSIGNED && !S.areas.length;
        let content;
        if (!this.loaded) content = [h('div', { class: 'empty' }, h('span', { class: 'spinner' }), S.t('wall.loading'))];
        else if (!list.length) content = [h('div', { class: 'empty', text: S.t('wall.noCameras') })];
        else if (!roots.length) content = [h('div', { class: 'empty', text: S.t('wall.noMatch', { q }) })];
        else if (flat) content = roots[0].cameras.map((c) => this.cameraRow(c, 0));
        else content = roots.map((n) => this.groupEl(n, 0, !!q));
        this.treeEl.replaceChildren(...content);
      }
      this.renderTreeState(roots);
    }

    groupEl(n, depth, searching) {
      const open = searching || !this.collapsed.has(n.id);
      const name = n.id === UNASSIGNED ? S.t('wall.unassigned') : n.area.name || n.id;
      const countEl = h('span', { class: 'tree-count num' });
      this.groupCounts.set(n.id, countEl);
      const head = h('button', {
        type: 'button', class: 'tree-head', style: '--depth:' + depth, 'aria-expanded': String(open),
        title: S.t(open ? 'wall.collapse' : 'wall.expand'), 'data-area': n.id === UNASSIGNED ? '' : n.id,
        onclick: () => {
          if (this.collapsed.has(n.id)) this.collapsed.delete(n.id);
          else this.collapsed.add(n.id);
          this.renderTree();
        },
      }, S.icon('chevron', 'tree-chevron'), h('span', { class: 'tree-name ellipsis', text: name }), countEl);
      const toWall = h('button', {
        type: 'button', class: 'tree-to-wall', 'data-testid': 'area-to-wall', title: S.t('wall.areaToWall', { n: Math.min(n.total, MAX_TILES) }),
        'aria-label': S.t('wall.areaToWall', { n: Math.min(n.total, MAX_TILES) }),
        onclick: () => this.showArea(n),
      }, S.icon('grid'));
      const body = open ? h('div', { class: 'tree-children', role: 'group' },
        n.cameras.map((c) => this.cameraRow(c, depth + 1)),
        n.children.map((ch) => this.groupEl(ch, depth + 1, searching))) : null;
      return h('div', { class: 'tree-group', role: 'treeitem', 'aria-expanded': String(open) },
        h('div', { class: 'tree-head-row' }, head, toWall), body);
    }

    cameraRow(c, depth) {
      const dot = h('span', { class: 'dot' });
      const status = h('span', { class: 'cam-status' });
      const tag = h('span', { class: 'cam-tag num' });
      const row = h('div', {
        class: 'cam-row', role: 'treeitem', tabindex: '0', draggable: true, style: '--depth:' + depth,
        'data-testid': 'camera-item', 'data-camera': c.id,
        onclick: () => this.choose(c.id),
        onkeydown: (ev) => {
          if (ev.key === 'Enter' || ev.key === ' ') {
            ev.preventDefault();
            ev.stopPropagation();
            this.choose(c.id);
          }
        },
        ondragstart: (ev) => {
          this.dragging = { camera: c.id };
          ev.dataTransfer.setData('text/plain', c.id);
          ev.dataTransfer.effectAllowed = 'copy';
        },
        ondragend: () => { this.dragging = null; },
      }, dot, h('span', { class: 'cam-text' }, h('span', { class: 'cam-name ellipsis', text: c.name || c.id }), h('span', { class: 'cam-id ellipsis mono', text: c.id })), tag, status);
      this.rows.set(c.id, { row, dot, status, tag });
      return row;
    }

    // renderTreeState updates statuses, counts and "on the wall" marks in
    // place, so that the periodic refresh keeps scroll and focus.
    renderTreeState(roots) {
      const visible = this.assigned.slice(0, this.layout);
      for (const [id, r] of this.rows) {
        const c = this.cameras.get(id);
        if (!c) continue;
        const st = this.status(c);
        r.dot.className = 'dot dot-' + statusClass(st);
        r.status.textContent = S.tv('camera.status.', st);
        r.status.className = 'cam-status cam-status-' + statusClass(st);
        const at = visible.indexOf(id);
        r.tag.textContent = at >= 0 ? String(at + 1) : '';
        r.tag.hidden = at < 0;
        r.tag.title = at >= 0 ? S.t('wall.onWall', { n: at + 1 }) : '';
        r.row.classList.toggle('on-wall', at >= 0);
        const lines = [S.t('wall.cameraTitle', { name: c.name || c.id, id: c.id, status: S.tv('camera.status.', st) })];
        if (c.area) lines.push(S.areaPath(c.area).join(' › '));
        if (c.since) lines.push(S.t('wall.since', { time: S.fmtDateTime(c.since) }));
        if (c.last_error_code) lines.push(S.t('wall.lastError', { error: S.tv('camera.error.', c.last_error_code) }));
        if (c.sub_last_error_code) lines.push(S.t('wall.subLastError', { error: S.tv('camera.error.', c.sub_last_error_code) }));
        r.row.title = lines.join('\n');
      }
      if (!roots) return;
      const walk = (n) => {
        const el = this.groupCounts.get(n.id);
        if (el) el.textContent = n.online + '/' + n.total;
        n.children.forEach(walk);
      };
      roots.forEach(walk);
    }
  }

  function stat(cls, label, n) {
    return h('span', { class: 'wall-stat' }, h('span', { class: 'dot dot-' + cls }), h('span', { text: label }), h('b', { class: 'num', text: String(n) }));
  }

  // layoutIcon draws a small n-cell grid for a layout button.
  function layoutIcon(n) {
    const side = Math.round(Math.sqrt(n));
    const icon = h('span', { class: 'layout-icon', style: '--side:' + side, 'aria-hidden': 'true' });
    for (let i = 0; i < n; i++) icon.append(h('span'));
    return icon;
  }

  function fitLayout(count) {
    return LAYOUTS.find((n) => n >= count) || MAX_TILES;
  }

  let wall = null;
  S.registerView('wall', {
    titleKey: 'tab.wall',
    mount(el, params) {
      wall = new Wall(el, params);
      wall.start();
    },
    unmount() {
      if (wall) wall.stop();
      wall = null;
    },
    render() {
      if (wall) wall.render();
    },
  });
})();
