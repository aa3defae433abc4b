// Evaluations: scores and pass rates over time per dimension (hourly), and the worst results first, each
// linking to the span it evaluated. Fed by GET /api/v1/evaluations (the genai_evaluation connector's results).

import { get } from "../api.js";
import { fill, h } from "../dom.js";
import * as fmt from "../format.js";
import * as ui from "../ui.js";

const HOUR = 3600;

function hours(window) {
  const first = Math.floor(window.start.getTime() / 1000 / HOUR) * HOUR;
  const x = [];
  for (let t = first; t < window.end.getTime() / 1000; t += HOUR) x.push(t);
  return x;
}

// Per dimension, per hour: valueOf(row) gives [value, weight]; a dimension's point is the weighted mean over every
// model and service of that hour (null where it had nothing).
function perDimension(x, rows, valueOf) {
  const at = new Map(x.map((t, index) => [t, index]));
  const byDimension = new Map();
  for (const row of rows) {
    const index = at.get(Date.parse(row.hour) / 1000);
    const [value, weight] = valueOf(row);
    if (index === undefined || !weight) continue;
    if (!byDimension.has(row.dimension)) byDimension.set(row.dimension, x.map(() => ({ sum: 0, weight: 0 })));
    const point = byDimension.get(row.dimension)[index];
    point.sum += value * weight;
    point.weight += weight;
  }
  return [...byDimension.entries()].sort(([a], [b]) => a.localeCompare(b))
    .map(([label, points]) => ({ label, values: points.map((p) => (p.weight ? p.sum / p.weight : null)) }));
}

const meanScore = (row) => [row.mean_score, row.scored];
const passRate = (row) => {
  const decided = row.passed + row.failed;
  return [decided ? row.passed / decided : 0, decided];
};

export async function render(view) {
  const { main, query, signal } = view;
  const window = ui.timeWindow(query, "24h");
  const services = await ui.serviceNames(view, window.params);
  main.append(ui.heading("Evaluations", "Scores of calls and agent runs by the genai_evaluation connector's judges and rules"),
    ui.filterForm(view, [
      { name: "dimension", label: "Dimension", placeholder: "relevance" },
      { name: "service", label: "Service", options: services },
      { name: "model", label: "Model", placeholder: "gpt-4o" },
    ], { fallbackRange: "24h" }));
  const results = h("section", { "aria-live": "polite" }, ui.loading());
  main.append(results);
  const params = { ...window.params, limit: 50 };
  for (const name of ["dimension", "service", "model"]) params[name] = query.get(name);
  const answer = await get("/evaluations", params, { signal });
  if (!answer.hours.length) {
    results.replaceChildren(h("section", { class: "panel empty" }, h("h2", null, "No evaluations in this window"),
      h("p", null, "Evaluations come from the genai_evaluation connector: list it as an exporter of a traces pipeline "
        + "and a receiver of a logs pipeline that stores into ClickHouse (see docs/evaluations.md).")));
    return;
  }
  const { lineChart } = await import("../charts.js");
  const x = hours(window);
  const charts = [
    lineChart("Mean score by dimension", x, perDimension(x, answer.hours, meanScore), (v) => v.toFixed(2)),
    lineChart("Pass rate by dimension", x, perDimension(x, answer.hours, passRate), (v) => `${Math.round(v * 100)} %`),
  ];
  const totals = answer.hours.reduce((sum, row) => ({ results: sum.results + row.results, errors: sum.errors + row.errors,
    passed: sum.passed + row.passed, decided: sum.decided + row.passed + row.failed }), { results: 0, errors: 0, passed: 0, decided: 0 });
  fill(results,
    h("div", { class: "tiles" },
      ui.tile("Results", fmt.count(totals.results), null, "results"),
      ui.tile("Passed", fmt.percent(totals.passed, totals.decided), `${fmt.count(totals.passed)} of ${fmt.count(totals.decided)}`, "passed"),
      ui.tile("Errors", fmt.count(totals.errors), "judge answers that could not be read, timeouts", "errors")),
    h("div", { class: "charts" }, charts.map((chart) => chart.element)),
    h("h2", null, "Worst results"),
    ui.table([
      ["Dimension", (r) => r.dimension],
      ["Score", (r) => (r.error_type ? `error: ${r.error_type}` : r.score !== null ? String(r.score) : r.label || "–"), { numeric: true }],
      ["Passed", (r) => (r.passed === null ? "–" : r.passed ? "yes" : "no")],
      ["Time", (r) => fmt.timeElement(r.time, h)],
      ["Service", (r) => r.service],
      ["Model", (r) => r.model],
      ["Explanation", (r) => r.explanation],
    ], answer.worst, { href: (r) => ui.traceUrl(r.trace_id, r.span_id), rowClass: (r) => (r.passed === false || r.error_type ? "evaluation-failed" : null) }));
  return () => { for (const chart of charts) chart.destroy(); };
}
