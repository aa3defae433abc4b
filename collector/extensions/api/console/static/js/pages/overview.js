// Overview: calls, errors, tokens by type, cost, duration and time to first chunk percentiles over the
// window, split by model, provider, service or tenant; refreshed while the window follows now.

import { get } from "../api.js";
import { fill, h } from "../dom.js";
import * as fmt from "../format.js";
import * as ui from "../ui.js";

const REFRESH_MS = 15000;
const TOP_GROUPS = 7;
const OTHER = "other";
const SPLITS = [["model", "model"], ["provider", "provider"], ["service", "service"], ["tenant", "tenant"]];
// The bucket for a window: about 30 to 200 points whatever its length.
const BUCKETS = [
  [2 * 3600, "minute", 60], [12 * 3600, "5minutes", 300], [48 * 3600, "15minutes", 900],
  [14 * 86400, "hour", 3600], [Infinity, "day", 86400],
];

function bucketFor(seconds) {
  const [, name, step] = BUCKETS.find(([limit]) => seconds <= limit);
  return { name, step };
}

function axis(window, step) {
  const first = Math.floor(window.start.getTime() / 1000 / step) * step;
  const last = window.end.getTime() / 1000;
  const x = [];
  for (let t = first; t < last; t += step) x.push(t);
  return x;
}

function seriesOf(x, rows, valueOf) {
  const at = new Map(x.map((t, index) => [t, index]));
  const values = x.map(() => 0);
  for (const row of rows) {
    const index = at.get(Date.parse(row.bucket) / 1000);
    if (index !== undefined) values[index] += valueOf(row);
  }
  return values;
}

function percentileSeries(x, rows, pick) {
  const at = new Map(rows.map((row) => [Date.parse(row.bucket) / 1000, row]));
  return x.map((t) => {
    const row = at.get(t);
    return row && row.calls ? pick(row) : null;
  });
}

function groupLabel(value) {
  return value === "" ? "(none)" : value;
}

function tiles(total) {
  const t = total.tokens;
  return h("div", { class: "tiles" },
    ui.tile("Calls", fmt.count(total.calls), null, "calls"),
    ui.tile("Errors", fmt.count(total.errors), total.calls ? `${fmt.percent(total.errors, total.calls)} of calls` : null, "errors"),
    ui.tile("Input tokens", fmt.tokens(t.input), `cache read ${fmt.tokens(t.cache_read)} · cache write ${fmt.tokens(t.cache_creation)}`, "input_tokens"),
    ui.tile("Output tokens", fmt.tokens(t.output), `reasoning ${fmt.tokens(t.reasoning)}`, "output_tokens"),
    ui.tile("Cost", fmt.cost(total.cost_usd), null, "cost"),
    ui.tile("Duration p50 / p95", `${fmt.duration(total.duration_ms.p50)} / ${fmt.duration(total.duration_ms.p95)}`, null, "duration"),
    ui.tile("First chunk p50 / p95", `${fmt.duration(total.time_to_first_chunk_ms.p50)} / ${fmt.duration(total.time_to_first_chunk_ms.p95)}`,
      "streamed calls", "ttfc"));
}

function splitTable(split, rows) {
  return ui.table([
    [split, (row) => groupLabel(row[split])],
    ["Calls", (row) => fmt.count(row.calls), { numeric: true }],
    ["Errors", (row) => fmt.count(row.errors), { numeric: true }],
    ["Input", (row) => fmt.tokens(row.tokens.input), { numeric: true }],
    ["Output", (row) => fmt.tokens(row.tokens.output), { numeric: true }],
    ["Cache read", (row) => fmt.tokens(row.tokens.cache_read), { numeric: true }],
    ["Reasoning", (row) => fmt.tokens(row.tokens.reasoning), { numeric: true }],
    ["Cost", (row) => fmt.cost(row.cost_usd), { numeric: true }],
    ["p50", (row) => fmt.duration(row.duration_ms.p50), { numeric: true }],
    ["p95", (row) => fmt.duration(row.duration_ms.p95), { numeric: true }],
    ["First chunk p50", (row) => fmt.duration(row.time_to_first_chunk_ms.p50), { numeric: true }],
  ], [...rows].sort((a, b) => b.calls - a.calls), { caption: `By ${split}` });
}

async function load(view, window, split, signal) {
  const seconds = (window.end - window.start) / 1000;
  const bucket = bucketFor(seconds);
  const base = window.params;
  const [totals, overTime, splitOverTime, splitTotals] = await Promise.all([
    get("/stats", base, { signal }),
    get("/stats", { ...base, bucket: bucket.name }, { signal }),
    get("/stats", { ...base, bucket: bucket.name, group_by: split }, { signal }),
    get("/stats", { ...base, group_by: split }, { signal }),
  ]);
  return { bucket, total: totals.rows[0], overTime: overTime.rows, splitOverTime: splitOverTime.rows, splitTotals: splitTotals.rows };
}

async function draw(container, charts, data, window, split) {
  const { lineChart } = await import("../charts.js");
  const x = axis(window, data.bucket.step);
  const ranked = [...data.splitTotals].sort((a, b) => b.calls - a.calls).map((row) => row[split]);
  const top = new Set(ranked.slice(0, TOP_GROUPS));
  const groups = [...top, ...(ranked.length > TOP_GROUPS ? [OTHER] : [])];
  const rowsOf = (group) => data.splitOverTime.filter((row) => (top.has(row[split]) ? row[split] === group : group === OTHER));
  const bySplit = (valueOf) => groups.map((group) => ({ label: groupLabel(group), values: seriesOf(x, rowsOf(group), valueOf) }));
  const made = [
    lineChart(`Calls by ${split}`, x, bySplit((row) => row.calls), (v) => fmt.count(v), { integer: true }),
    lineChart(`Tokens (input + output) by ${split}`, x, bySplit((row) => row.tokens.input + row.tokens.output), (v) => fmt.tokens(v)),
    lineChart(`Cost by ${split}`, x, bySplit((row) => row.cost_usd), (v) => fmt.cost(v)),
    lineChart("Errors", x, [{ label: "errors", values: seriesOf(x, data.overTime, (row) => row.errors), color: "#c92a2a" }], (v) => fmt.count(v), { integer: true }),
    lineChart("Duration", x, [
      { label: "p50", values: percentileSeries(x, data.overTime, (row) => row.duration_ms.p50) },
      { label: "p95", values: percentileSeries(x, data.overTime, (row) => row.duration_ms.p95), dash: [6, 4] },
    ], (v) => fmt.duration(v)),
    lineChart("Time to first chunk", x, [
      { label: "p50", values: percentileSeries(x, data.overTime, (row) => row.time_to_first_chunk_ms.p50) },
      { label: "p95", values: percentileSeries(x, data.overTime, (row) => row.time_to_first_chunk_ms.p95), dash: [6, 4] },
    ], (v) => fmt.duration(v)),
  ];
  for (const chart of charts.splice(0)) chart.destroy();
  charts.push(...made);
  fill(container,
    tiles(data.total),
    h("div", { class: "charts" }, made.map((chart) => chart.element)),
    splitTable(split, data.splitTotals));
}

export async function render(view) {
  const { main, query, about, signal } = view;
  const window = ui.timeWindow(query, "24h");
  const splits = SPLITS.filter(([name]) => !(name === "tenant" && about.key.tenant));
  const split = splits.some(([name]) => name === query.get("split")) ? query.get("split") : "model";
  const status = h("p", { class: "sub", role: "status" });
  main.append(
    ui.heading("Overview", about.key.tenant ? `Tenant ${about.key.tenant}` : null),
    ui.filterForm(view, [{ name: "split", label: "Split by", type: "select", options: splits }], { fallbackRange: "24h" }),
    status,
  );
  const container = h("div", { class: "overview" }, ui.loading());
  main.append(container);
  const charts = [];
  let data = await load(view, window, split, signal);
  if (!data.total.calls) {
    const anything = await get("/traces", { ...ui.timeWindow(new URLSearchParams("range=30d")).params, limit: 1 }, { signal });
    fill(container, anything.traces.length
      ? ui.empty("No LLM calls in this window", "There are traces in the last 30 days: widen the window, or open them under Traces.", about, { withIngest: false })
      : ui.empty("Nothing here yet", "This collector has stored no LLM call yet. Send some:", about));
    return undefined;
  }
  await draw(container, charts, data, window, split);
  status.textContent = `${fmt.time(window.start)} – ${window.live ? "now" : fmt.time(window.end)} · ${data.bucket.name} buckets`
    + (window.live ? ` · updates every ${REFRESH_MS / 1000} s` : "");
  let timer = null;
  if (window.live) {
    const refresh = async () => {
      if (!document.hidden) {
        try {
          const moved = ui.timeWindow(query, "24h");
          data = await load(view, moved, split, signal);
          if (signal.aborted) return;
          await draw(container, charts, data, moved, split);
          status.textContent = `${fmt.time(moved.start)} – now · ${data.bucket.name} buckets · updated ${fmt.clock(Date.now())}`;
        } catch (error) {
          if (signal.aborted) return;
          status.textContent = `Could not refresh: ${error.message}`;
        }
      }
      if (!signal.aborted) timer = setTimeout(refresh, REFRESH_MS);
    };
    timer = setTimeout(refresh, REFRESH_MS);
  }
  return () => {
    clearTimeout(timer);
    for (const chart of charts) chart.destroy();
  };
}
