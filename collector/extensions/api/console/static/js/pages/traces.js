// Traces: search by service, model, tenant, conversation, findings, errors, duration and time; newest first.

import { get } from "../api.js";
import { h } from "../dom.js";
import * as fmt from "../format.js";
import * as ui from "../ui.js";

const PAGE_SIZE = 50;
export const FILTERS = ["service", "model", "provider", "tenant", "conversation", "has_findings", "min_severity", "error",
  "min_duration", "max_duration"];

export function traceColumns() {
  return [
    ["Trace", (t) => h("span", { class: "root" }, h("span", { class: "svc" }, t.root.service), " ", t.root.name)],
    ["Start", (t) => fmt.timeElement(t.start, h)],
    ["Duration", (t) => fmt.duration(t.duration_ms), { numeric: true }],
    ["Spans", (t) => fmt.count(t.span_count), { numeric: true }],
    ["LLM calls", (t) => fmt.count(t.llm_calls), { numeric: true }],
    ["Tokens in / out", (t) => `${fmt.tokens(t.tokens.input)} / ${fmt.tokens(t.tokens.output)}`, { numeric: true }],
    ["Cost", (t) => fmt.cost(t.cost_usd), { numeric: true }],
    ["Findings", (t) => t.finding_count ? h("span", null, fmt.count(t.finding_count), " ", ui.severityBadge(t.max_severity)) : "–"],
    ["Status", (t) => ui.statusBadge(t.error)],
  ];
}

export async function render(view) {
  const { main, query, about, signal } = view;
  const bound = about.key.tenant;
  const services = await ui.serviceNames(view, ui.timeWindow(query).params);
  const fields = [
    { name: "service", label: "Service", options: services },
    { name: "model", label: "Model", placeholder: "gpt-4o" },
    { name: "provider", label: "Provider", placeholder: "openai" },
    bound ? null : { name: "tenant", label: "Tenant" },
    { name: "conversation", label: "Conversation" },
    { name: "has_findings", label: "Findings", type: "select", options: [["", "any"], ["true", "with findings"], ["false", "without"]] },
    { name: "min_severity", label: "Severity ≥", type: "select", options: [["", "any"], ...ui.SEVERITIES.map((s) => [s, s])] },
    { name: "error", label: "Status", type: "select", options: [["", "any"], ["true", "errors"], ["false", "no errors"]] },
    { name: "min_duration", label: "Longer than", placeholder: "1.5s" },
    { name: "max_duration", label: "Shorter than", placeholder: "30s" },
  ].filter(Boolean);
  const window = ui.timeWindow(query);
  const params = { ...window.params, limit: PAGE_SIZE, cursor: query.get("cursor") };
  for (const name of FILTERS) params[name] = query.get(name);
  main.append(ui.heading("Traces", bound ? `Tenant ${bound}` : null), ui.filterForm(view, fields));
  const results = h("section", { "aria-live": "polite" }, ui.loading());
  main.append(results);
  const answer = await get("/traces", params, { signal });
  const filtered = FILTERS.some((name) => query.get(name));
  if (!answer.traces.length) {
    results.replaceChildren(filtered || query.get("cursor")
      ? ui.empty("No trace matches", "Widen the time window or remove a filter.", about, { withIngest: false })
      : ui.empty("No traces in this window", "Nothing was stored in this time window. To send traces:", about));
    return;
  }
  results.replaceChildren(
    h("p", { class: "count" }, `${fmt.counted(answer.traces.length, "trace")}${answer.next_cursor ? " on this page" : ""}, `,
      `${fmt.time(answer.start)} – ${fmt.time(answer.end)}`),
    ui.table(traceColumns(), answer.traces, {
      href: (t) => ui.traceUrl(t.trace_id), rowClass: (t) => (t.error ? "has-error" : null),
    }),
    ui.pager(view, answer.next_cursor),
  );
}
