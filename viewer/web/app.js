// Skywatch live video: a camera list and a wall of 1, 4 or 9 tiles, each
// playing one camera over WHEP (RFC 9725) with the browser's own WebRTC.
// No libraries, nothing from the network but this server.
'use strict';

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
const LIST_REFRESH_MS = 5000;
const GATHER_TIMEOUT_MS = 3000;

// WhepPlayer plays one camera into one <video>. It reconnects by itself
// when the connection fails or the camera is unavailable, until stop().
class WhepPlayer {
  constructor(video, cameraId, onState) {
    this.video = video;
    this.cameraId = cameraId;
    this.onState = onState;
    this.pc = null;
    this.location = null;
    this.stopped = false;
    this.retryMs = RETRY_MIN_MS;
    this.retryTimer = null;
  }

  start() {
    this.connect().catch((err) => this.retry(err.message));
  }

  async connect() {
    this.onState('connecting', 'Connecting…');
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (ev) => {
      if (pc !== this.pc) return;
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      if (this.video.srcObject !== stream) this.video.srcObject = stream;
      this.video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      switch (pc.connectionState) {
        case 'connected':
          this.retryMs = RETRY_MIN_MS;
          this.onState('live', 'Live');
          break;
        case 'disconnected':
          this.onState('trouble', 'Connection interrupted…');
          break;
        case 'failed':
          this.retry('Connection failed');
          break;
      }
    };

    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc);
    if (pc !== this.pc) return;

    const resp = await fetch('/whep/' + encodeURIComponent(this.cameraId), {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
    const text = await resp.text();
    if (pc !== this.pc) return;
    if (resp.status !== 201) {
      throw new Error(errorText(resp.status, text));
    }
    this.location = resp.headers.get('Location');
    await pc.setRemoteDescription({ type: 'answer', sdp: text });
  }

  retry(reason) {
    if (this.stopped) return;
    this.teardown();
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.onState('trouble', reason + ' — retrying in ' + Math.round(wait / 1000) + ' s');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), wait);
  }

  // teardown ends the current session, telling the server (keepalive lets
  // the DELETE out even while the page is being hidden or unloaded).
  teardown() {
    if (this.location) {
      fetch(this.location, { method: 'DELETE', keepalive: true }).catch(() => {});
      this.location = null;
    }
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown();
    this.video.srcObject = null;
  }
}

// gatheringComplete waits for the offer's candidates: the server does not
// take trickled candidates.
function gatheringComplete(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener('icegatheringstatechange', check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

function errorText(status, body) {
  try {
    const e = JSON.parse(body);
    if (e.camera && e.camera.last_error) return e.error + ': ' + e.camera.last_error;
    if (e.error) return e.error;
  } catch (_) { /* not JSON */ }
  return 'HTTP ' + status;
}

// Wall is the grid of tiles and which camera each plays.
class Wall {
  constructor(el, template) {
    this.el = el;
    this.template = template;
    this.tiles = [];
    this.selected = 0;
    this.cameras = new Map();
  }

  setLayout(n) {
    while (this.tiles.length > n) this.tiles.pop().stop();
    while (this.tiles.length < n) this.tiles.push(this.newTile());
    this.el.className = 'wall layout-' + n;
    this.select(Math.min(this.selected, n - 1));
    localStorage.setItem('skywatch.layout', String(n));
    this.save();
  }

  newTile() {
    const node = this.template.content.firstElementChild.cloneNode(true);
    this.el.appendChild(node);
    const tile = {
      node,
      video: node.querySelector('video'),
      name: node.querySelector('.name'),
      state: node.querySelector('.state'),
      message: node.querySelector('.message'),
      close: node.querySelector('.close'),
      cameraId: null,
      player: null,
      stop() {
        if (this.player) this.player.stop();
        this.player = null;
        this.cameraId = null;
        this.node.remove();
      },
    };
    node.addEventListener('click', () => this.select(this.tiles.indexOf(tile)));
    tile.close.addEventListener('click', (ev) => {
      ev.stopPropagation();
      this.clear(tile);
    });
    this.render(tile);
    return tile;
  }

  select(i) {
    this.selected = i;
    this.tiles.forEach((t, j) => t.node.classList.toggle('selected', j === i));
  }

  // play shows a camera in the selected tile, then selects the next tile
  // so that clicking through the list fills the wall.
  play(cameraId) {
    const tile = this.tiles[this.selected];
    if (tile.player) tile.player.stop();
    tile.cameraId = cameraId;
    tile.player = new WhepPlayer(tile.video, cameraId, (cls, text) => {
      tile.state.className = 'state ' + cls;
      tile.state.textContent = text;
      tile.message.textContent = cls === 'live' ? '' : text;
    });
    tile.player.start();
    this.render(tile);
    this.select((this.selected + 1) % this.tiles.length);
    this.save();
  }

  clear(tile) {
    if (tile.player) tile.player.stop();
    tile.player = null;
    tile.cameraId = null;
    tile.video.srcObject = null;
    this.render(tile);
    this.save();
  }

  render(tile) {
    const cam = tile.cameraId ? this.cameras.get(tile.cameraId) : null;
    tile.name.textContent = tile.cameraId ? (cam ? cam.name || cam.id : tile.cameraId) : 'Empty tile';
    tile.close.hidden = !tile.cameraId;
    if (!tile.cameraId) {
      tile.state.textContent = '';
      tile.message.textContent = 'Select a camera';
    }
  }

  playing() {
    return new Set(this.tiles.filter((t) => t.cameraId).map((t) => t.cameraId));
  }

  save() {
    localStorage.setItem('skywatch.tiles', JSON.stringify(this.tiles.map((t) => t.cameraId)));
  }

  restore(ids) {
    ids.slice(0, this.tiles.length).forEach((id, i) => {
      if (id) {
        this.select(i);
        this.play(id);
      }
    });
    this.select(0);
  }

  stopAll() {
    this.tiles.forEach((t) => { if (t.player) t.player.stop(); });
  }
}

function describe(cam) {
  const video = (cam.tracks || []).find((t) => t.kind === 'video');
  const parts = [cam.status];
  if (video) {
    parts.push(video.codec + (video.width ? ' ' + video.width + '×' + video.height : ''));
  }
  if (cam.status === 'online' && cam.frame_rate) parts.push(cam.frame_rate.toFixed(0) + ' fps');
  if (cam.viewers) parts.push(cam.viewers + ' watching');
  return parts.join(' · ');
}

function renderList(listEl, cameras, wall) {
  const playing = wall.playing();
  listEl.replaceChildren(...cameras.map((cam) => {
    const li = document.createElement('li');
    li.tabIndex = 0;
    li.classList.toggle('playing', playing.has(cam.id));
    li.title = cam.last_error ? 'Last error: ' + cam.last_error : cam.id;
    const dot = document.createElement('span');
    dot.className = 'dot ' + cam.status;
    const text = document.createElement('span');
    text.className = 'cam-name';
    text.textContent = cam.name || cam.id;
    const meta = document.createElement('div');
    meta.className = 'cam-meta';
    meta.textContent = describe(cam);
    text.appendChild(meta);
    li.append(dot, text);
    const choose = () => { wall.play(cam.id); renderList(listEl, cameras, wall); };
    li.addEventListener('click', choose);
    li.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); choose(); } });
    return li;
  }));
}

async function refresh(listEl, countEl, errEl, wall) {
  try {
    const resp = await fetch('/api/cameras', { cache: 'no-store' });
    if (!resp.ok) throw new Error('HTTP ' + resp.status);
    const cameras = await resp.json();
    wall.cameras = new Map(cameras.map((c) => [c.id, c]));
    countEl.textContent = '(' + cameras.length + ')';
    errEl.hidden = true;
    renderList(listEl, cameras, wall);
    wall.tiles.forEach((t) => wall.render(t));
  } catch (err) {
    errEl.textContent = 'Camera list unavailable: ' + err.message;
    errEl.hidden = false;
  }
}

function main() {
  const wall = new Wall(document.getElementById('wall'), document.getElementById('tile-template'));
  const listEl = document.getElementById('cameras');
  const countEl = document.getElementById('camera-count');
  const errEl = document.getElementById('api-error');
  const buttons = document.querySelectorAll('[data-layout]');
  const setLayout = (n) => {
    wall.setLayout(n);
    buttons.forEach((b) => b.setAttribute('aria-pressed', String(Number(b.dataset.layout) === n)));
  };
  buttons.forEach((b) => b.addEventListener('click', () => setLayout(Number(b.dataset.layout))));
  // What to show: the URL (?layout=9&cameras=a,b for wall displays), else
  // the wall this browser showed last, else the first cameras of the list.
  // Read it before setLayout saves over it.
  const params = new URLSearchParams(location.search);
  const savedTiles = () => {
    try {
      const ids = JSON.parse(localStorage.getItem('skywatch.tiles') || 'null');
      return Array.isArray(ids) ? ids : null;
    } catch (_) {
      return null;
    }
  };
  const tiles = params.has('cameras') ? params.get('cameras').split(',').filter(Boolean) : savedTiles();
  const layout = Number(params.get('layout') || localStorage.getItem('skywatch.layout'));
  setLayout([1, 4, 9].includes(layout) ? layout : 4);
  if (tiles) wall.restore(tiles);

  const firstRefresh = refresh(listEl, countEl, errEl, wall);
  if (!tiles) {
    firstRefresh.then(() => {
      if (wall.playing().size === 0) {
        wall.restore([...wall.cameras.keys()].slice(0, wall.tiles.length));
      }
    });
  }
  setInterval(() => refresh(listEl, countEl, errEl, wall), LIST_REFRESH_MS);
  // End sessions when the page goes away; a restored page starts again.
  window.addEventListener('pagehide', () => wall.stopAll());
  window.addEventListener('pageshow', (ev) => { if (ev.persisted) wall.restore(savedTiles() || []); });
}

main();
