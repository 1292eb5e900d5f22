// The page: browse trials, datasets and versions; chart the log; verify a record proof.
// Every request is same-origin; verification trusts only the vkeys pinned in the page.
import { MalformedError, StepError, verifyProof } from "/static/verify.mjs";

const pinned = JSON.parse(document.getElementById("pinned-vkeys").textContent);
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function showResult(result, step, text) {
  const box = $("result");
  box.dataset.result = result;
  box.dataset.step = step;
  box.textContent = text;
}

async function verifyText(text) {
  let proof;
  try {
    proof = JSON.parse(text);
  } catch (e) {
    showResult("failed", "malformed", `Not JSON: ${e.message}`);
    return;
  }
  try {
    const ok = await verifyProof(proof, pinned);
    const notChecked = ok.anchors_not_checked.length
      ? ` Anchor receipts not checked in the browser: ${ok.anchors_not_checked.join(", ")}.` : "";
    const what = ok.entry
      ? (ok.entry.type === "trialproof/document/v1"
        ? `the ${ok.entry.kind} "${ok.entry.label}" of ${ok.entry.trial} (sha256 ${ok.entry.sha256})`
        : `a ${ok.entry.type} entry`)
      : `record ${ok.leaf_index} of ${ok.trial}/${ok.dataset} v${ok.version}`;
    showResult("verified", "", `Verified: ${what} is in log entry ${ok.log_index} of a checkpoint of size ${ok.size} signed by the pinned key.${notChecked}`);
  } catch (e) {
    if (e instanceof StepError) showResult("failed", e.step, `Failed at step "${e.step}": ${e.reason}`);
    else if (e instanceof MalformedError) showResult("failed", "malformed", `Malformed proof: ${e.message}`);
    else showResult("failed", "malformed", `Cannot verify: ${e.message}`);
  }
}

$("verify-button").addEventListener("click", () => verifyText($("proof-input").value));
$("proof-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const text = await file.text();
  $("proof-input").value = text;
  await verifyText(text);
});

function versionsTable(trial, dataset, versions) {
  const base = `/api/v1/trials/${encodeURIComponent(trial)}/datasets/${encodeURIComponent(dataset)}/versions`;
  const table = el("table", {}, el("tr", {}, el("th", {}, "version"), el("th", {}, "records"),
    el("th", {}, "validation"), el("th", {}, "anchors"), el("th", {}, "download")));
  for (const v of versions) {
    const vbase = `${base}/${v.version}`;
    const validation = v.validation && v.validation.success
      ? el("span", { class: "ok" }, "passed ") : el("span", { class: "bad" }, "failed ");
    const anchors = el("div", {});
    if (!v.anchors.length) anchors.append(el("span", { class: "muted" }, "not anchored yet"));
    for (const a of v.anchors.slice(0, 3)) {
      const receipts = a.receipts.map((r) => {
        const detail = r.receipt || {};
        const chain = detail.chain_id !== undefined ? ` chain ${detail.chain_id}` : "";
        const extra = detail.tx_hash ? `${chain} tx ${detail.tx_hash.slice(0, 12)}…`
          : detail.gen_time ? ` TSA time ${detail.gen_time}` : "";
        return `${r.ledger} (${r.state})${extra}`;
      }).join(", ");
      const cosigners = a.signatures.length > 1 ? `; cosigned by ${a.signatures.slice(1).join(", ")}` : "";
      anchors.append(el("div", {}, `size ${a.size}: ${receipts}${cosigners}`));
    }
    table.append(el("tr", { "data-version": v.version },
      el("td", {}, `v${v.version}`, el("div", { class: "muted mono" }, `log entry ${v.log_index}`)),
      el("td", {}, v.records),
      el("td", {}, validation, el("a", { href: `${vbase}/report.html` }, "report")),
      el("td", {}, anchors),
      el("td", {}, el("a", { class: "button", href: `${vbase}/records?format=parquet` }, "Parquet"), " ",
        el("a", { class: "button", href: `${vbase}/records?format=csv` }, "CSV"), " ",
        el("a", { class: "button", href: `${vbase}/bundle` }, "manifest + proof"))));
  }
  return table;
}

async function getJsonOrNull(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function provenText(proven) {
  if (!proven) return "not anchored yet";
  return `first anchored ${proven.time} (${proven.ledger}${proven.independent ? "" : ", not independent"})`;
}

// A trial's registered documents and registry records, in log order (which is the order
// they were registered), each with its earliest proven time; then the outcome check.
async function preregistration(trial) {
  const base = `/api/v1/trials/${encodeURIComponent(trial)}`;
  const [{ documents }, { records }, outcomes] = await Promise.all([
    getJson(`${base}/documents`), getJson(`${base}/registry-records`),
    getJsonOrNull(`${base}/outcomes`)]);
  if (!documents.length && !records.length) return null;
  const events = [
    ...documents.map((d) => ({ index: d.log_index, proven: d.proven_time,
      text: `${d.kind} "${d.label}" (${d.name}, sha256 ${d.sha256.slice(0, 12)}…)` })),
    ...records.map((r) => ({ index: r.log_index, proven: r.proven_time,
      text: `${r.registry} ${r.study_id} record, updated ${r.last_update ?? "?"}` })),
  ].sort((a, b) => a.index - b.index);
  const list = el("ol", { class: "prereg-timeline" });
  for (const e of events) {
    list.append(el("li", { "data-log-index": e.index },
      el("span", { class: "mono" }, `log entry ${e.index}: `), e.text,
      el("div", { class: "muted" }, provenText(e.proven))));
  }
  const section = el("div", { class: "prereg" }, el("h4", {}, "Pre-registration"), list);
  if (outcomes) {
    const verdict = outcomes.ok
      ? el("p", { class: "ok", "data-outcomes": "ok" }, "Outcome check: no outcome was switched.")
      : el("p", { class: "bad", "data-outcomes": "switched" },
        `Outcome check: ${outcomes.discrepancies} discrepancies between registered and later or reported outcomes.`);
    section.append(verdict);
  }
  return section;
}

async function loadCatalog() {
  const root = $("catalog");
  const { trials } = await getJson("/api/v1/trials");
  root.textContent = "";
  root.classList.remove("muted");
  if (!trials.length) root.append(el("p", { class: "muted" }, "No dataset version has been committed yet."));
  const everything = [];
  for (const { trial, datasets } of trials) {
    const section = el("div", { "data-trial": trial }, el("h3", {}, trial));
    const prereg = await preregistration(trial);
    if (prereg) section.append(prereg);
    for (const dataset of datasets) {
      const { versions } = await getJson(`/api/v1/trials/${encodeURIComponent(trial)}/datasets/${encodeURIComponent(dataset)}/versions`);
      everything.push(...versions);
      section.append(el("h4", {}, dataset), versionsTable(trial, dataset, versions));
    }
    root.append(section);
  }
  return everything;
}

function timeline(versions, anchorsInfo) {
  const box = $("timeline");
  const entries = versions.slice().sort((a, b) => a.log_index - b.log_index);
  const size = Math.max(anchorsInfo.log_size, 1);
  const W = 640, H = 160, L = 48, B = 24;
  const x = (i) => L + ((W - L - 10) * i) / size;
  let total = 0;
  const points = [[0, 0]];
  for (const v of entries) { total += v.records; points.push([v.log_index + 1, total]); }
  const maxY = Math.max(total, 1);
  const y = (n) => H - B - ((H - B - 10) * n) / maxY;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("style", "max-height: 220px");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "records committed by log size, with anchorings");
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  add("line", { x1: L, y1: H - B, x2: W - 10, y2: H - B, stroke: "#9aa5b4" });
  add("line", { x1: L, y1: 10, x2: L, y2: H - B, stroke: "#9aa5b4" });
  const path = points.map(([i, n], k) => `${k ? "L" : "M"}${x(i).toFixed(1)},${y(n).toFixed(1)}`).join(" ");
  add("path", { d: path, fill: "none", stroke: "#2b5fad", "stroke-width": 2, class: "growth" });
  for (const a of anchorsInfo.anchors) {
    add("line", { x1: x(a.size), x2: x(a.size), y1: 10, y2: H - B, stroke: "#11703a", "stroke-dasharray": "3 3", class: "anchoring" });
    add("text", { x: x(a.size) - 4, y: 20, "text-anchor": "end" }, `anchored ${a.size}`);
  }
  add("text", { x: L, y: H - 6 }, "0");
  add("text", { x: W - 10, y: H - 6, "text-anchor": "end" }, `log size ${anchorsInfo.log_size}`);
  add("text", { x: L - 4, y: 16, "text-anchor": "end" }, String(total));
  box.textContent = "";
  box.classList.remove("muted");
  box.append(svg, el("div", { class: "muted" }, `${entries.length} dataset versions, ${total} records committed; ${anchorsInfo.anchors.length} anchorings.`));
}

async function fromQuery() {
  const q = new URLSearchParams(location.search);
  if (location.pathname !== "/verify") return;
  const [trial, dataset, version, index] = ["trial", "dataset", "version", "index"].map((k) => q.get(k));
  if (!trial || !dataset || !version || index === null) {
    showResult("failed", "malformed", "/verify needs trial, dataset, version and index");
    return;
  }
  const url = `/api/v1/trials/${encodeURIComponent(trial)}/datasets/${encodeURIComponent(dataset)}/versions/${encodeURIComponent(version)}/proof?index=${encodeURIComponent(index)}`;
  const response = await fetch(url);
  const text = await response.text();
  if (!response.ok) {
    showResult("failed", "fetch", `The server has no such proof (HTTP ${response.status}).`);
    return;
  }
  $("proof-input").value = text;
  await verifyText(text);
}

fromQuery();
loadCatalog()
  .then(async (versions) => timeline(versions, await getJson("/api/v1/anchors")))
  .catch((e) => { $("catalog").textContent = `Cannot load the catalog: ${e.message}`; });
