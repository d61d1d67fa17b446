// mmanat viewer: template and targets in NiiVue, click-to-match through the mmanat server.
// World coordinates: the server speaks LPS mm (ITK / DICOM / 3D Slicer), NiiVue RAS mm; the
// two differ by the sign of x and y (lpsToRas / rasToLps).
import { Niivue, SHOW_RENDER, DRAG_MODE } from './niivue.js';
import { api, showError, clearError, PointList } from './viewer_ui.js';

const $ = (id) => document.getElementById(id);
export const lpsToRas = (p) => [-p[0], -p[1], p.length > 2 ? p[2] : 0];
export const rasToLps = (p) => [-p[0], -p[1], p[2]];
const fmt = (p) => p.map((v) => v.toFixed(1)).join(', ');

const state = {
  info: null, panels: [], ready: false, method: 'reference', window: 'soft',
  lastRoundTripMs: null, lastServerMs: null, lastMatch: null, matchCount: 0, busy: false,
};

// ------------------------------------------------------------------ panels (one NiiVue each)
async function makePanel(img) {
  const div = document.createElement('div');
  div.className = `panel ${img.role}`;
  div.innerHTML = `<h4></h4><div class="canvas-wrap"><canvas></canvas></div>
    <div class="readout"></div>`;
  div.querySelector('h4').textContent = `${img.role === 'template' ? 'Template' : 'Target'}: `
    + `${img.name} (${img.modality || '?'}${img.planar ? ', 2D' : ''})`;
  $('views').appendChild(div);
  const canvas = div.querySelector('canvas');
  canvas.id = `gl${img.index}`;
  const nv = new Niivue({
    isRadiologicalConvention: true, show3Dcrosshair: false, backColor: [0, 0, 0, 1],
    crosshairColor: img.role === 'template' ? [0.2, 0.6, 1, 1] : [1, 0.55, 0.1, 1],
    crosshairWidth: 0.35, crosshairWidthUnit: 'percent', // thickness independent of the voxels
    multiplanarShowRender: SHOW_RENDER.NEVER, dragAndDropEnabled: false,
    isOrientationTextVisible: !img.planar, logLevel: 'warn', loadingText: 'loading...',
  });
  await nv.attachToCanvas(canvas);
  nv.opts.dragMode = DRAG_MODE.pan;
  await nv.loadVolumes([{ url: img.url, name: `${img.index}.nii` }]);
  const panel = { img, nv, div, canvas, readout: div.querySelector('.readout'), match: null };
  nv.onLocationChange = (loc) => updateReadout(panel, loc);
  return panel;
}

function updateReadout(panel, loc) {
  const lps = rasToLps(loc ? loc.mm : panel.nv.frac2mm(panel.nv.scene.crosshairPos, 0, true));
  const value = loc && loc.values && loc.values.length ? loc.values[0].value : null;
  let text = `LPS ${fmt(panel.img.planar ? lps.slice(0, 2) : lps)} mm`;
  if (value !== null && value !== undefined) text += `  value ${Number(value).toFixed(0)}`;
  if (panel.match) {
    text += `  <span class="score">match score ${panel.match.score.toFixed(3)}</span>`;
  }
  panel.readout.innerHTML = text;
}

function setView(kind) {
  for (const { nv, img } of state.panels) {
    const k = img.planar ? 'axial' : kind;
    nv.setSliceType({ multi: nv.sliceTypeMultiplanar, axial: nv.sliceTypeAxial,
      coronal: nv.sliceTypeCoronal, sagittal: nv.sliceTypeSagittal }[k]);
  }
}

function setWindow(preset) {
  state.window = preset;
  const table = { lung: [-1350, 150], soft: [-160, 240], bone: [-450, 1050] };
  for (const { nv, img } of state.panels) {
    const vol = nv.volumes[0];
    const auto = img.modality !== 'CT' || preset === 'auto';
    const [lo, hi] = auto ? img.robust : table[preset];
    vol.cal_min = lo;
    vol.cal_max = hi;
    nv.updateGLVolume();
  }
}

function zoom(factor) {
  for (const { nv } of state.panels) {
    const p = nv.scene.pan2Dxyzmm;
    const z = factor === 0 ? 1 : Math.min(20, Math.max(0.5, p[3] * factor));
    nv.setPan2Dxyzmm(factor === 0 ? [0, 0, 0, 1] : [p[0], p[1], p[2], z]);
  }
}

// ------------------------------------------------------------------ navigation
/** Move the crosshair (and so the three slices) of image `index` to the LPS point. */
export function goTo(index, lps) {
  const panel = state.panels[index];
  const nv = panel.nv;
  nv.scene.crosshairPos = nv.mm2frac(lpsToRas(lps), 0, true);
  nv.drawScene();
  nv.createOnLocationChange();
  updateReadout(panel, null);
}

/** Client (CSS pixel) position of an LPS point of image `index` in its current views. */
export function screenPosOf(index, lps) {
  const { nv, canvas } = state.panels[index];
  const pos = nv.frac2canvasPos(nv.mm2frac(lpsToRas(lps), 0, true));
  if (!pos) return null;
  const r = canvas.getBoundingClientRect();
  const s = canvas.width / r.width;
  return [r.left + pos[0] / s, r.top + pos[1] / s];
}

function templatePoint() {
  const nv = state.panels[0].nv;
  const lps = rasToLps(nv.frac2mm(nv.scene.crosshairPos, 0, true));
  return state.info.planar ? [lps[0], lps[1], 0] : lps;
}

// ------------------------------------------------------------------ matching
/** Match template points (LPS) in every target; returns the server's answer. */
export async function matchPoints(points, overlay = false) {
  if (!state.ready) throw new Error(state.info.status.message || 'embeddings not ready');
  return api('/api/match', { points, method: state.method, overlay });
}

async function showOverlay(panel, ov) {
  const nv = panel.nv;
  while (nv.volumes.length > 1) nv.removeVolume(nv.volumes[nv.volumes.length - 1]);
  if (!ov) { nv.drawScene(); return; }
  await nv.addVolumeFromUrl({ url: ov.url, name: 'similarity.nii', colormap: 'warm',
    opacity: 0.55, cal_min: ov.cal_min, cal_max: ov.cal_max });
}

/** Show the matches of one point (index `k` of a server answer) in the target panels. */
export function showMatches(answer, k = 0) {
  for (const t of answer.targets) {
    const panel = state.panels[t.index];
    panel.match = { lps: t.points[k], score: t.scores[k] };
    goTo(t.index, t.points[k]);
  }
}

async function onTemplateClick(tClick) {
  if (state.busy) return;
  const lps = templatePoint();
  const item = points.add(lps);
  if (!state.ready) {
    showError(`point ${item.name} added, but it cannot be matched yet: `
      + `${state.info.status.message}`);
    return;
  }
  state.busy = true;
  try {
    const overlay = $('overlay').checked;
    const answer = await matchPoints([lps], overlay);
    points.setMatches(item, answer, 0);
    showMatches(answer, 0);
    await new Promise((r) => requestAnimationFrame(() => r())); // the views were drawn
    state.lastServerMs = answer.elapsed_ms;
    state.lastRoundTripMs = performance.now() - tClick;
    state.lastMatch = { query: lps, answer };
    state.matchCount += 1;
    setStatus(`matched ${item.name} (${answer.method}) in `
      + `${state.lastRoundTripMs.toFixed(0)} ms (server ${answer.elapsed_ms.toFixed(0)} ms)`);
    clearError();
    if (overlay) {
      await Promise.all(answer.targets.map((t) => showOverlay(state.panels[t.index],
        t.overlay)));
    } else {
      await Promise.all(state.panels.slice(1).map((p) => showOverlay(p, null)));
    }
  } catch (err) {
    showError(`matching failed: ${err.message}`);
  } finally {
    state.busy = false;
  }
}

function wireTemplateClicks(panel) {
  let down = null;
  panel.canvas.addEventListener('pointerdown', (e) => {
    down = e.button === 0 ? { x: e.clientX, y: e.clientY } : null;
  });
  panel.canvas.addEventListener('pointerup', (e) => {
    if (!down || e.button !== 0) return;
    const moved = Math.hypot(e.clientX - down.x, e.clientY - down.y);
    down = null;
    if (moved > 4) return; // a drag, not a click
    const t0 = performance.now();
    setTimeout(() => onTemplateClick(t0), 0); // after NiiVue moved its crosshair
  });
}

// ------------------------------------------------------------------ status
function setStatus(text, cls = '') {
  const el = $('status');
  el.textContent = text;
  el.className = `status ${cls}`;
}

async function pollStatus() {
  for (;;) {
    let st;
    try {
      st = await api('/api/status');
    } catch (err) {
      setStatus('server unreachable', 'bad');
      showError(`lost the viewer server: ${err.message}`);
      return;
    }
    state.info.status = st;
    $('progress').value = st.total ? st.done / st.total : 0;
    if (st.state === 'ready') {
      state.ready = true;
      $('progress').hidden = true;
      setStatus('ready: click the template');
      return;
    }
    if (st.state === 'error') {
      setStatus('model not loaded', 'bad');
      showError(`the model or the embeddings failed to load: ${st.message}`);
      return;
    }
    setStatus(st.message, 'busy');
    await new Promise((r) => setTimeout(r, 400));
  }
}

// ------------------------------------------------------------------ start
const points = new PointList({
  state, goTo, showMatches, matchPoints,
  setStatus,
});

async function main() {
  try {
    state.info = await api('/api/info');
  } catch (err) {
    setStatus('cannot start', 'bad');
    showError(`cannot read the viewer's images: ${err.message}`);
    return;
  }
  const info = state.info;
  state.method = info.method;
  for (const m of info.methods) {
    const o = document.createElement('option');
    o.value = m;
    o.textContent = m === 'consensus' ? 'consensus (slow)' : m.replace(/_/g, ' ');
    $('method').appendChild(o);
  }
  $('method').value = info.method;
  $('method').onchange = () => { state.method = $('method').value; };
  points.init(info);
  pollStatus();
  try {
    for (const img of info.images) state.panels.push(await makePanel(img));
  } catch (err) {
    showError(`NiiVue could not show the images: ${err.message}`);
    return;
  }
  wireTemplateClicks(state.panels[0]);
  state.window = info.images[0].window;
  $('window').value = state.window;
  $('window').onchange = () => setWindow($('window').value);
  $('view').onchange = () => setView($('view').value);
  if (info.planar) { $('view').value = 'axial'; $('view').disabled = true; }
  setView($('view').value);
  setWindow(state.window);
  $('zoom-in').onclick = () => zoom(1.25);
  $('zoom-out').onclick = () => zoom(0.8);
  $('zoom-reset').onclick = () => zoom(0);
  document.addEventListener('keydown', (e) => {
    if (e.target.tagName === 'INPUT') return;
    if (e.key === '+' || e.key === '=') zoom(1.25);
    if (e.key === '-') zoom(0.8);
  });
  $('goto-btn').onclick = () => {
    const v = $('goto').value.split(/[\s,;]+/).filter((s) => s).map(Number);
    if (v.length < 2 || v.some((x) => !Number.isFinite(x))) {
      showError('go to: type world LPS mm as "x, y, z"');
      return;
    }
    goTo(0, v.length === 2 ? [v[0], v[1], 0] : v);
  };
  state.panelsReady = true;
  for (const p of state.panels) updateReadout(p, null);
}

window.mmanatViewer = { state, goTo, screenPosOf, matchPoints, points, lpsToRas, rasToLps };
main();
