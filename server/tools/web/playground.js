// The gpt-lsp playground page: plain DOM, no framework, no build step, nothing from another origin.
// Every value the server sends is inserted as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const STAGES = ["context", "redact", "related", "prompt", "decode", "postprocess"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A token as a literal with its spaces and line breaks visible, or a sentinel's name in ⟦ ⟧.
function shown(token) {
  return token.sentinel ? `⟦${token.text}⟧` : JSON.stringify(token.text);
}

// --- the cursor ------------------------------------------------------------------------------
// LINE and COL start at 1; COL counts characters (code points), as `gpt-lsp complete` does.
function cursor() {
  const source = $("source");
  const before = source.value.slice(0, source.selectionStart);
  const lines = before.split("\n");
  return { line: lines.length, col: Array.from(lines[lines.length - 1]).length + 1 };
}

function showCursor() {
  const { line, col } = cursor();
  $("position").textContent = `Ln ${line}, Col ${col}`;
}

// --- settings --------------------------------------------------------------------------------
const NUMBERS = ["budget", "max_tokens", "temperature", "top_p", "repetition_penalty", "timeout_ms"];

function settings(model) {
  const form = $("settings").elements;
  const out = { model, variant: form.variant.value, prompt: form.prompt.value, healing: form.healing.checked };
  for (const name of NUMBERS) {
    if (form[name].value !== "") out[name] = Number(form[name].value);
  }
  return out;
}

function models() {
  const form = $("settings").elements;
  const list = [form.model.value.trim()];
  if (form.compare.value.trim()) list.push(form.compare.value.trim());
  return list;
}

// --- requests --------------------------------------------------------------------------------
async function post(action, body) {
  const response = await fetch(`api/${action}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  let data;
  try {
    data = await response.json();
  } catch (err) {
    data = { error: `HTTP ${response.status}` };
  }
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function status(text) {
  $("status").textContent = text;
}

let running = false;
let again = false;  // a click while a request runs: run once more with the latest cursor and settings
let runs = 0;  // counted on the page (data-runs) so a test can wait for the next result
async function complete() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  const { line, col } = cursor();
  const request = { text: $("source").value, filename: $("filename").value, line, col };
  const results = $("results");
  status("completing…");
  try {
    const columns = [];
    for (const model of models()) {
      try {
        columns.push(renderReport(await post("complete", { ...request, settings: settings(model) })));
      } catch (err) {
        columns.push(el("article", { class: "result" }, el("p", { class: "error" }, err.message)));
      }
    }
    results.replaceChildren(...columns);
    results.classList.toggle("compare", columns.length > 1);
    results.dataset.runs = String(++runs);
    status(`completed at Ln ${line}, Col ${col}`);
  } finally {
    running = false;
    if (again) {
      again = false;
      complete();
    }
  }
}

// --- one model's report ----------------------------------------------------------------------
function renderReport(r) {
  const ex = r.explain;
  // The gate runs before the model: a context it rejects, or a cursor inside a secret.
  const gate = r.reason.startsWith("gate: ") ? `skip — ${r.reason.slice(6)}` : "complete";
  const text = r.completions.length ? r.completions[0].text : null;
  return el("article", { class: "result" },
    el("h3", {}, r.model.path.split("/").filter(Boolean).pop() || r.model.path, " ",
      el("span", { class: "dim" }, `${r.model.onnx} · ${r.model.cached ? "cached" : `loaded in ${r.model.load_ms} ms`}`)),
    el("p", { class: "dim model-path", title: r.model.description }, r.model.path),
    text !== null
      ? el("pre", { class: "completion" }, text)
      : el("p", { class: "no-completion" }, `no completion: ${r.reason}`),
    el("table", { class: "facts" },
      fact("context", `${r.context_kind} (${r.context_reason})`, "context-kind"),
      fact("gate", gate, "gate"),
      fact("result", r.reason),
      fact("stop", r.stop_reason || "–"),
      fact("language", r.language || "unknown"),
      fact("position", `Ln ${r.line}, Col ${r.col}`)),
    renderLatency(r),
    ex ? renderPrompt(ex) : el("p", { class: "dim" }, "The model was not called (the gate said no)."),
    ex ? renderDecoded(ex) : null);
}

function fact(name, value, id) {
  return el("tr", id ? { "data-fact": id } : {}, el("th", {}, name), el("td", {}, value));
}

function renderLatency(r) {
  const stages = STAGES.filter((s) => s in r.timings_ms);
  const total = Math.max(...stages.map((s) => r.timings_ms[s]), 0.001);
  return el("div", { class: "latency" },
    el("h4", {}, `Latency ${r.latency_ms.toFixed(1)} ms`),
    el("table", {}, stages.map((stage) => {
      const bar = el("span", { class: "bar" });
      bar.style.width = `${(100 * r.timings_ms[stage]) / total}%`;
      return el("tr", {}, el("th", {}, stage), el("td", { class: "num" }, `${r.timings_ms[stage].toFixed(1)} ms`),
        el("td", { class: "bar-cell" }, bar));
    })));
}

const REDACTED = /<redacted:[^>]*>/g;

function renderPrompt(ex) {
  // Mark the tokens a redaction placeholder spans, by character ranges of the prompt text.
  const starts = [];
  let text = "";
  for (const t of ex.prompt_tokens) {
    starts.push(text.length);
    text += t.sentinel ? "" : t.text;
  }
  const ranges = [...text.matchAll(REDACTED)].map((m) => [m.index, m.index + m[0].length]);
  const view = el("div", { class: "prompt" }, ex.prompt_tokens.map((t, i) => {
    const end = starts[i] + (t.sentinel ? 0 : t.text.length);
    const redacted = ranges.some(([a, b]) => starts[i] < b && end > a);
    const cls = ["tok", t.sentinel ? "sentinel" : "", redacted ? "redacted" : "", i % 2 ? "odd" : ""].join(" ");
    return el("span", { class: cls.trim(), title: `#${i} id ${t.id}` }, t.text);
  }));
  const cut = ex.cut;
  const redactions = Object.entries(ex.redacted).map(([kind, n]) => `${n} ${kind}`).join(", ") || "nothing";
  return el("div", { class: "prompt-box" },
    el("h4", {}, `Prompt: ${ex.prompt_tokens.length} tokens (${ex.prompt_format}) of a ${ex.budget_tokens}-token budget`),
    el("p", { class: "dim" }, `context window ${ex.context_length} = budget ${ex.budget_tokens} + up to ${ex.max_new_tokens} new tokens (and any slack). Sentinels are highlighted; token boundaries alternate shades.`),
    view,
    el("ul", { class: "cuts" },
      el("li", {}, `prefix: ${cut.document_chars_before_cursor} chars before the cursor, ${cut.prefix_chars_in_window} in the context window, ${cut.prefix_chars_in_prompt} in the prompt — `,
        el("strong", { "data-cut": "prefix" }, `${cut.prefix_chars_cut_for_budget} cut for the budget`)),
      el("li", {}, `suffix: ${cut.suffix_chars_in_window} chars in the window, ${cut.suffix_chars_in_prompt} in the prompt`),
      el("li", {}, `extra context (imports, enclosing signatures): ${cut.extra_context_chars} chars`),
      el("li", {}, "token healing: ", cut.healed ? el("code", {}, JSON.stringify(cut.healed)) : "none"),
      el("li", {}, "redacted: ", el("span", { "data-redacted": "" }, redactions))));
}

function renderDecoded(ex) {
  const rows = ex.decoded.map((step, i) => {
    const bar = el("span", { class: "bar" });
    bar.style.width = `${100 * step.prob}%`;
    return el("tr", { class: step.in_completion ? "kept" : "cut" },
      el("td", { class: "num" }, i + 1),
      el("td", { class: "token" }, el("code", {}, shown(step))),
      el("td", { class: "num prob" }, step.prob.toFixed(3)),
      el("td", { class: "bar-cell" }, bar),
      el("td", { class: "alts" }, step.alternatives.map((a) =>
        el("span", { class: "alt" }, el("code", {}, shown(a)), " ", a.prob.toFixed(3)))),
      el("td", {}, step.in_completion ? "✓" : "cut"));
  });
  return el("div", { class: "decoded" },
    el("h4", {}, `Decoded tokens (${ex.decoded.length})`),
    el("table", { class: "tokens" },
      el("thead", {}, el("tr", {}, ["#", "token", "p", "", "top alternatives", "kept"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)),
    el("p", { class: "dim" }, "cut: decoded, then dropped by a stop rule or postprocessing."));
}

// --- evaluation ------------------------------------------------------------------------------
const METRICS = [["EM", "em"], ["ES", "es"], ["BLEU", "bleu"], ["ROUGE-L", "rouge_l"]];
const COLORS = ["#3b6fd8", "#e07b39"];

async function evaluate() {
  const out = $("eval-out");
  const folder = $("eval-folder").value;
  const n = Number($("eval-n").value || 50);
  out.replaceChildren(el("p", { class: "dim" }, "evaluating… (one model at a time)"));
  status("evaluating…");
  const reports = [];
  for (const model of models()) {
    try {
      reports.push(await post("eval", { folder, n, settings: settings(model) }));
    } catch (err) {
      out.replaceChildren(el("p", { class: "error" }, err.message));
      status("evaluation failed");
      return;
    }
  }
  const name = (r) => r.model.path.split("/").filter(Boolean).pop();
  out.replaceChildren(
    el("p", { class: "dim" }, `${reports[0].summary.n} line cuts from ${reports[0].files} files under ${reports[0].folder}`),
    el("div", { class: "eval-grid" },
      chart(reports, name),
      el("table", { class: "eval-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "metric"), reports.map((r) => el("th", {}, name(r))))),
        el("tbody", {},
          [...METRICS, ["empty", "empty"], ["latency p50 ms", "latency_p50_ms"], ["latency p95 ms", "latency_p95_ms"]].map(([label, key]) =>
            el("tr", { "data-metric": key }, el("th", {}, label),
              reports.map((r) => el("td", { class: "num" }, figure(r.summary[key], key)))))))),
    el("h4", {}, "Examples (first model)"),
    el("table", { class: "examples" },
      el("thead", {}, el("tr", {}, el("th", {}, "expected"), el("th", {}, "predicted"))),
      el("tbody", {}, reports[0].examples.map((e) => el("tr", { class: e.prediction.trim() === e.target.trim() ? "hit" : "" },
        el("td", {}, el("code", {}, e.target)), el("td", {}, el("code", {}, e.prediction)))))));
  status("evaluation done");
}

function figure(value, key) {
  return key === "empty" ? String(value) : Number(value).toFixed(1);  // a count; the rest are scores and ms
}

// Grouped bars, one group per metric (0-100), one bar per model; drawn here, no chart library.
function chart(reports, name) {
  const W = 460, H = 240, left = 36, bottom = 26, top = 24;
  const plotH = H - bottom - top, groupW = (W - left) / METRICS.length;
  const barW = Math.min(36, (groupW - 16) / reports.length);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "EM, ES, BLEU and ROUGE-L" });
  for (const tick of [0, 25, 50, 75, 100]) {
    const y = top + plotH * (1 - tick / 100);
    root.append(svg("line", { x1: left, x2: W, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, String(tick)));
  }
  METRICS.forEach(([label, key], g) => {
    const x0 = left + g * groupW + (groupW - barW * reports.length) / 2;
    reports.forEach((r, m) => {
      const value = Math.max(0, Math.min(100, Number(r.summary[key]) || 0));
      const h = (plotH * value) / 100;
      const x = x0 + m * barW;
      const bar = svg("rect", { x, y: top + plotH - h, width: barW - 4, height: h, fill: COLORS[m], class: "bar-rect", "data-metric": key });
      bar.append(svg("title", {}, `${name(r)} ${label}: ${value.toFixed(1)}`));
      root.append(bar);
      root.append(svg("text", { x: x + (barW - 4) / 2, y: top + plotH - h - 4, "text-anchor": "middle", class: "value" }, value.toFixed(1)));
    });
    root.append(svg("text", { x: left + g * groupW + groupW / 2, y: H - 8, "text-anchor": "middle", class: "axis" }, label));
  });
  reports.forEach((r, m) => {
    root.append(svg("rect", { x: left + 8 + m * 170, y: 4, width: 10, height: 10, fill: COLORS[m] }));
    root.append(svg("text", { x: left + 22 + m * 170, y: 13, class: "axis" }, name(r)));
  });
  return root;
}

// --- wiring ----------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  const source = $("source");
  let clickTimer = null;
  source.addEventListener("click", () => {
    showCursor();
    if (!$("on-click").checked) return;
    clearTimeout(clickTimer);
    clickTimer = setTimeout(complete, 120);  // a double click selects a word: run once
  });
  source.addEventListener("keyup", showCursor);
  source.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      showCursor();
      complete();
    }
  });
  $("run").addEventListener("click", () => { showCursor(); complete(); });
  $("eval-run").addEventListener("click", evaluate);
  $("file-input").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    source.value = await file.text();
    $("filename").value = file.name;
    source.focus();
    source.setSelectionRange(0, 0);
    showCursor();
  });
});
