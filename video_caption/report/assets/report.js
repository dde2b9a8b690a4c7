// The report's gallery: clip records arrive in chunks (data/clips-N.js, plain <script> files, so the
// page works from file:// where fetch() is refused); filtering, sorting and search run over the
// records loaded so far, and only one page of cards is in the DOM at a time.
"use strict";
const META = JSON.parse(document.getElementById("meta").textContent);
const F = Object.fromEntries(META.fields.map((name, i) => [name, i]));
const clips = [];            // every record loaded, in manifest order
const byKey = new Map();     // clip path -> record
const frameChunks = {};      // chunk number -> frame captions of its clips, once loaded
let view = [];               // the records the current filters keep, sorted
let page = 0;
let loaded = 0;

window.REPORT = {
  chunk(number, rows) {
    for (const row of rows) { clips.push(row); byKey.set(row[F.key], row); }
    loaded += 1;
  },
  frames(number, captions) {
    frameChunks[number] = captions;
    document.querySelectorAll(`details[data-chunk="${number}"]`).forEach(fillFrames);
  },
  errors(rows) { renderErrors(rows); },
};

function $(id) { return document.getElementById(id); }

function load(src, done) {
  const script = document.createElement("script");
  script.src = src;
  script.onload = done;
  script.onerror = () => { $("loading").textContent = `could not load ${src}`; };
  document.body.appendChild(script);
}

function loadChunks(i) {
  if (i >= META.chunks) {
    $("loading").textContent = "";
    apply();
    document.body.dataset.ready = "1";  // every clip is in: what tests and the load bench wait for
    return;
  }
  load(`data/clips-${i}.js`, () => {
    $("loading").textContent = `loading clips: ${clips.length} of ${META.clips}`;
    if (i === 0) apply();
    loadChunks(i + 1);
  });
}

function text(value) {
  return value === null || value === undefined ? "" : String(value);
}

function number(value) {
  return typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toPrecision(4)) : text(value);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value; else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.appendChild(child);
  return node;
}

function keeps(row, status, gate, words) {
  if (status && row[F.status] !== status) return false;
  if (gate && row[F.reason] !== gate) return false;
  if (words.length) {
    const hay = (text(row[F.caption]) + " " + row[F.key]).toLowerCase();
    if (!words.every((w) => hay.includes(w))) return false;
  }
  return true;
}

function apply() {
  const status = $("status").value, gate = $("gate").value;
  const words = $("search").value.toLowerCase().split(/\s+/).filter(Boolean);
  const key = $("sort").value, desc = $("order").value === "desc";
  view = clips.filter((row) => keeps(row, status, gate, words));
  if (key) {
    const i = F[key];
    // Clips without the score go last, whatever the order.
    view.sort((a, b) => {
      const x = a[i], y = b[i];
      if (typeof x !== "number") return typeof y !== "number" ? 0 : 1;
      if (typeof y !== "number") return -1;
      return desc ? y - x : x - y;
    });
  }
  page = 0;
  render();
}

function thumb(row, cls) {
  const name = row[F.thumb];
  return name ? el("img", { class: cls, src: `thumbs/${name}`, loading: "lazy", alt: row[F.key] }) : null;
}

function fillFrames(details) {
  const captions = frameChunks[details.dataset.chunk];
  if (!captions || details.dataset.filled) return;
  const list = el("ol");
  for (const caption of captions[Number(details.dataset.index)] || []) list.appendChild(el("li", { text: caption }));
  details.appendChild(list);
  details.dataset.filled = "1";
}

function card(row) {
  const status = row[F.status];
  const node = el("div", { class: "card", "data-key": row[F.key], "data-status": status });
  node.appendChild(thumb(row, "thumb") || el("div", { class: "meta", text: "no thumbnail" }));
  node.appendChild(el("div", { class: "key", text: row[F.key] }));
  const head = el("div", {}, el("span", { class: `badge ${status.replace(" ", "-")}`, text: status }));
  if (row[F.reason]) {
    const value = status === "unscored" ? "" : ` (value ${number(row[F.gate_value])})`;
    // A reply kept out says what was wrong with it, beside the frame captions it was made from.
    const detail = row[F.detail] ? `: ${row[F.detail]}` : "";
    head.appendChild(document.createTextNode(` dropped by ${row[F.reason]}${value}${detail}`));
  }
  node.appendChild(head);
  const scores = el("div", { class: "scores" });
  for (const name of META.shown) {
    const value = row[F[name]];
    if (value !== null && value !== undefined) scores.appendChild(el("span", { text: `${name} ${number(value)}` }));
  }
  node.appendChild(scores);
  // A step that never ran, or passed the clip on unscored, said so: no score is not a score of 0.
  const skipped = (row[F.skipped] || []).map((step) => `${step} (${META.skip_notes[step]})`);
  if (skipped.length) node.appendChild(el("div", { class: "skipped", text: `skipped: ${skipped.join(", ")}` }));
  const kept = row[F.dup_of] && byKey.get(row[F.dup_of]);
  if (row[F.dup_of]) {
    node.appendChild(el("div", { class: "dup" },
      el("span", { text: `duplicate of ${row[F.dup_of]} (similarity ${number(row[F.similarity])})` }),
      kept ? thumb(kept, "") : null));
  }
  if (row[F.caption]) node.appendChild(el("div", { class: "caption", text: row[F.caption] }));
  if (row[F.frames_chunk] !== null) {
    const details = el("details", { "data-chunk": row[F.frames_chunk], "data-index": row[F.frames_index] },
      el("summary", { text: "frame captions" }));
    details.addEventListener("toggle", () => {
      if (!details.open) return;
      if (frameChunks[details.dataset.chunk]) fillFrames(details);
      else load(`data/frames-${details.dataset.chunk}.js`, () => {});
    });
    node.appendChild(details);
  }
  return node;
}

function render() {
  const size = Number($("page-size").value);
  const pages = Math.max(1, Math.ceil(view.length / size));
  page = Math.min(page, pages - 1);
  const grid = $("grid");
  grid.replaceChildren(...view.slice(page * size, (page + 1) * size).map(card));
  $("results-count").textContent = `${view.length} clips`;
  $("page-info").textContent = `page ${page + 1} of ${pages}`;
  $("prev").disabled = page === 0;
  $("next").disabled = page >= pages - 1;
}

function renderErrors(rows) {
  const body = $("errors-body");
  for (const row of rows.slice(0, META.errors_shown)) {
    body.appendChild(el("tr", {}, el("td", { text: text(row.stage) }), el("td", { class: "key", text: text(row.video_path) }),
      el("td", { text: text(row.message) }), el("td", { text: text(row.time) })));
  }
}

let typing = null;
$("search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(apply, 200); });
for (const id of ["status", "gate", "sort", "order", "page-size"]) $(id).addEventListener("change", apply);
$("prev").addEventListener("click", () => { page -= 1; render(); });
$("next").addEventListener("click", () => { page += 1; render(); });
loadChunks(0);
if (META.errors) load("data/errors.js", () => {});
