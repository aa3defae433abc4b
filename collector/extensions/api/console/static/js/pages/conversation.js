// One conversation: its calls across traces, oldest first, with tokens and cost adding up call by call.

import { get } from "../api.js";
import { fill, h } from "../dom.js";
import * as fmt from "../format.js";
import * as ui from "../ui.js";

export async function render(view) {
  const { main, params, query, signal } = view;
  const id = params[0];
  main.append(ui.loading());
  let answer;
  try {
    const window = { start: query.get("start"), end: query.get("end") };
    answer = await get(`/conversations/${encodeURIComponent(id)}`, window, { signal });
  } catch (error) {
    if (error.status !== 404) throw error;
    fill(main, ui.heading(`Conversation ${id}`), h("section", { class: "panel empty" },
      h("p", null, query.get("start")
        ? `No call of this conversation from ${fmt.time(query.get("start"))} to ${fmt.time(query.get("end") || Date.now())} is visible to this key.`
        : "No call of this conversation in the last 31 days is visible to this key."),
      h("p", null, h("a", { href: "/conversations" }, "All conversations"))));
    return undefined;
  }
  const summary = answer.summary;
  let tokens = 0;
  let cost = 0;
  const rows = answer.calls.map((call, index) => {
    tokens += call.tokens.input + call.tokens.output;
    cost += call.cost_usd;
    return { ...call, index: index + 1, tokensSoFar: tokens, costSoFar: cost };
  });
  const findingsBySpan = new Map();
  for (const finding of answer.findings) {
    if (!findingsBySpan.has(finding.span_id)) findingsBySpan.set(finding.span_id, []);
    findingsBySpan.get(finding.span_id).push(finding);
  }
  const cumulative = h("div", { class: "charts one" });
  fill(main,
    ui.heading(`Conversation ${id}`, `${fmt.time(summary.first)} – ${fmt.time(summary.last)} · `,
      `${fmt.counted(summary.trace_count, "trace")} · ${summary.services.join(", ")}`),
    h("div", { class: "tiles compact" },
      ui.tile("Calls", fmt.count(summary.calls), null, "calls"),
      ui.tile("Tokens in / out", `${fmt.tokens(summary.tokens.input)} / ${fmt.tokens(summary.tokens.output)}`, null, "tokens"),
      ui.tile("Cost", fmt.cost(summary.cost_usd), null, "cost"),
      ui.tile("Errors", fmt.count(summary.errors), null, "errors"),
      ui.tile("Findings", fmt.count(answer.findings.length), null, "findings")),
    answer.truncated ? h("p", { class: "notice" }, "More calls than one answer holds: the first ones are shown.") : null,
    rows.length > 1 ? cumulative : null,
    ui.table([
      ["#", (c) => String(c.index)],
      ["Time", (c) => fmt.timeElement(c.time, h)],
      ["Model", (c) => c.request_model || c.response_model],
      ["Service", (c) => c.service],
      ["Tokens in / out", (c) => `${fmt.tokens(c.tokens.input)} / ${fmt.tokens(c.tokens.output)}`, { numeric: true }],
      ["Cost", (c) => fmt.cost(c.cost_usd), { numeric: true }],
      ["Tokens so far", (c) => fmt.tokens(c.tokensSoFar), { numeric: true }],
      ["Cost so far", (c) => fmt.cost(c.costSoFar), { numeric: true }],
      ["Duration", (c) => fmt.duration(c.duration_ms), { numeric: true }],
      ["Findings", (c) => (findingsBySpan.get(c.span_id) || []).map((f) => h("span", { class: "finding-tag" }, ui.severityBadge(f.severity), " ", f.detector))],
      ["Status", (c) => ui.statusBadge(c.status === "Error")],
    ], rows, { href: (c) => ui.traceUrl(c.trace_id, c.span_id) }));
  if (rows.length > 1) {
    const { lineChart } = await import("../charts.js");
    const x = rows.map((row) => Date.parse(row.time) / 1000);
    const chart = lineChart("Cost so far", x, [{ label: "cost", values: rows.map((row) => row.costSoFar) }], (v) => fmt.cost(v));
    const tokenChart = lineChart("Tokens so far", x, [{ label: "tokens", values: rows.map((row) => row.tokensSoFar) }], (v) => fmt.tokens(v));
    cumulative.append(chart.element, tokenChart.element);
    return () => { chart.destroy(); tokenChart.destroy(); };
  }
  return undefined;
}
