// mmanat viewer: server calls, the error banner and the list of points (add, rename, delete,
// re-match, load, save, export). Points are world LPS mm, as the server and mmanat use them.
const $ = (id) => document.getElementById(id);

/** GET (no body) or POST JSON to the viewer server; throws Error(message of the server). */
export async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  };
  let res;
  try {
    res = await fetch(path, opts);
  } catch (err) {
    throw new Error(`no answer from the viewer server (${err.message}); is it still running?`);
  }
  let data = null;
  try { data = await res.json(); } catch (err) { data = null; }
  if (!res.ok) {
    throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  }
  return data;
}

export function showError(text) {
  $('error-text').textContent = text;
  $('error').hidden = false;
}

export function clearError() {
  $('error').hidden = true;
  $('error-text').textContent = '';
}

function download(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const fmt = (p) => p.map((v) => v.toFixed(1)).join(', ');

/** The list of points of the page: each {id, name, lps, matches: {target index: {lps, score}}}. */
export class PointList {
  constructor(hooks) {
    this.hooks = hooks;
    this.items = [];
    this.nextId = 1;
    this.selected = null;
  }

  init(info) {
    this.info = info;
    this.planar = info.planar;
    const sel = $('export-target');
    for (const img of info.images.slice(1)) {
      const o = document.createElement('option');
      o.value = img.index;
      o.textContent = img.name;
      sel.appendChild(o);
    }
    if (this.planar) {
      for (const id of ['format', 'space']) $(id).value = id === 'format' ? 'csv' : 'LPS';
      $('format').disabled = true;
      $('space').disabled = true;
    }
    $('error-close').onclick = clearError;
    $('clear').onclick = () => { this.items = []; this.render(); };
    $('rematch-all').onclick = () => this.rematch(this.items);
    $('save').onclick = () => this.save();
    $('export').onclick = () => this.exportMatches();
    $('load').onchange = (e) => this.load(e.target.files[0]).finally(() => {
      e.target.value = '';
    });
    this.render();
  }

  add(lps, name) {
    const item = { id: this.nextId, name: name || `P${this.nextId}`, lps, matches: {} };
    this.nextId += 1;
    this.items.push(item);
    this.selected = item.id;
    this.render();
    return item;
  }

  setMatches(item, answer, k) {
    for (const t of answer.targets) {
      item.matches[t.index] = { lps: t.points[k], score: t.scores[k], voxel: t.voxels[k] };
    }
    this.render();
  }

  toJSON() {
    return this.items.map((p) => ({ name: p.name, lps: this.planar ? p.lps.slice(0, 2) : p.lps }));
  }

  async rematch(items) {
    if (!items.length) return;
    try {
      const answer = await this.hooks.matchPoints(items.map((p) => p.lps));
      items.forEach((p, k) => this.setMatches(p, answer, k));
      this.hooks.setStatus(`re-matched ${items.length} point(s) in `
        + `${answer.elapsed_ms.toFixed(0)} ms`);
      this.select(items[items.length - 1]);
    } catch (err) {
      showError(`matching failed: ${err.message}`);
    }
  }

  select(item) {
    this.selected = item.id;
    this.hooks.goTo(0, item.lps);
    for (const [t, m] of Object.entries(item.matches)) {
      const panel = this.hooks.state.panels[Number(t)];
      if (panel) {
        panel.match = { lps: m.lps, score: m.score };
        this.hooks.goTo(Number(t), m.lps);
      }
    }
    this.render();
  }

  async load(file) {
    if (!file) return;
    try {
      const text = await file.text();
      const res = await api('/api/points/parse', { filename: file.name, text,
        space: $('space').value });
      const added = res.points.map((p) => this.add(this.planar ? [p.lps[0], p.lps[1], 0]
        : p.lps, p.name));
      this.hooks.setStatus(`loaded ${added.length} point(s) from ${file.name}`);
      clearError();
      if (this.hooks.state.ready) await this.rematch(added);
    } catch (err) {
      showError(`cannot load ${file.name}: ${err.message}`);
    }
  }

  async save() {
    try {
      const res = await api('/api/points/export', { points: this.toJSON(),
        format: $('format').value, space: $('space').value });
      download(res.filename, res.text);
      this.hooks.setStatus(`saved ${this.items.length} point(s) as ${res.filename}`);
    } catch (err) {
      showError(`cannot save the points: ${err.message}`);
    }
  }

  async exportMatches() {
    try {
      const res = await api('/api/matches/export', { points: this.toJSON(),
        target: Number($('export-target').value), format: $('format').value,
        space: $('space').value, method: this.hooks.state.method });
      download(res.filename, res.text);
      this.hooks.setStatus(`exported the matches as ${res.filename}`);
    } catch (err) {
      showError(`cannot export the matches: ${err.message}`);
    }
  }

  render() {
    const body = document.querySelector('#points tbody');
    body.textContent = '';
    const targets = this.info ? this.info.images.slice(1) : [];
    for (const item of this.items) {
      const tr = document.createElement('tr');
      tr.dataset.id = item.id;
      if (item.id === this.selected) tr.className = 'selected';
      const name = document.createElement('input');
      name.value = item.name;
      name.title = 'rename';
      name.onclick = (e) => e.stopPropagation();
      name.onchange = () => { item.name = name.value.trim() || item.name; };
      const tdName = document.createElement('td');
      tdName.appendChild(name);
      const tdXyz = document.createElement('td');
      tdXyz.className = 'coords';
      tdXyz.textContent = fmt(this.planar ? item.lps.slice(0, 2) : item.lps);
      const tdMatch = document.createElement('td');
      tdMatch.className = 'coords';
      for (const img of targets) {
        const m = item.matches[img.index];
        const line = document.createElement('div');
        if (m) {
          line.textContent = `${fmt(this.planar ? m.lps.slice(0, 2) : m.lps)} `
            + `(${m.score.toFixed(2)})`;
          if (m.score < 0.3) line.className = 'low';
          line.title = `${img.name}: score ${m.score.toFixed(4)}`;
        } else {
          line.textContent = '–';
        }
        tdMatch.appendChild(line);
      }
      const tdBtn = document.createElement('td');
      const re = document.createElement('button');
      re.textContent = '↻';
      re.title = 're-match';
      re.onclick = (e) => { e.stopPropagation(); this.rematch([item]); };
      const del = document.createElement('button');
      del.textContent = '✕';
      del.title = 'delete';
      del.onclick = (e) => {
        e.stopPropagation();
        this.items = this.items.filter((p) => p !== item);
        this.render();
      };
      tdBtn.append(re, del);
      tr.append(tdName, tdXyz, tdMatch, tdBtn);
      tr.onclick = () => this.select(item);
      body.appendChild(tr);
    }
  }
}
