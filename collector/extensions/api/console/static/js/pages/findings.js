// Findings: security and loop findings by severity, detector, category, service and tenant; each links to its span.

import { get } from "../api.js";
import { h } from "../dom.js";
import * as fmt from "../format.js";
import * as ui from "../ui.js";

export async function render(view) {
  const { main, query, about, signal } = view;
  const bound = about.key.tenant;
  const window = ui.timeWindow(query, "24h");
  const services = await ui.serviceNames(view, window.params);
  main.append(ui.heading("Findings", "Secrets, personal data, prompt injection, agent loops and budgets, as the processors found them"),
    ui.filterForm(view, [
      { name: "min_severity", label: "Severity ≥", type: "select", options: [["", "any"], ...ui.SEVERITIES.map((s) => [s, s])] },
      { name: "detector", label: "Detector", placeholder: "repeated_tool_call" },
      { name: "category", label: "Category", placeholder: "secret" },
      { name: "service", label: "Service", options: services },
      bound ? null : { name: "tenant", label: "Tenant" },
    ].filter(Boolean), { fallbackRange: "24h" }));
  const results = h("section", { "aria-live": "polite" }, ui.loading());
  main.append(results);
  const params = { ...window.params, limit: 100, cursor: query.get("cursor") };
  for (const name of ["min_severity", "detector", "category", "service", "tenant"]) params[name] = query.get(name);
  const answer = await get("/findings", params, { signal });
  if (!answer.findings.length) {
    results.replaceChildren(h("section", { class: "panel empty" }, h("h2", null, "No findings in this window"),
      h("p", null, "Findings come from the genai_security processor (secrets, personal data, prompt injection in the "
        + "messages) and genai_loop_detection (agents repeating themselves, budgets). Both are in the shipped "
        + "pipeline; spans that arrive without message content can only get loop and budget findings.")));
    return;
  }
  const counts = new Map();
  for (const finding of answer.findings) counts.set(finding.severity, (counts.get(finding.severity) || 0) + 1);
  results.replaceChildren(
    h("p", { class: "count" }, `${fmt.counted(answer.findings.length, "finding")}${answer.next_cursor ? " on this page" : ""}: `,
      [...ui.SEVERITIES].reverse().filter((s) => counts.get(s)).map((s) => h("span", { class: "sev-count" }, ui.severityBadge(s), ` ${counts.get(s)} `))),
    ui.table([
      ["Detector", (f) => h("span", null, ui.severityBadge(f.severity), " ", f.detector)],
      ["Time", (f) => fmt.timeElement(f.time, h)],
      ["Category", (f) => f.category],
      ["Confidence", (f) => fmt.percent(f.confidence, 1), { numeric: true }],
      ["Service", (f) => f.service],
      bound ? null : ["Tenant", (f) => f.tenant || "–"],
      ["Where", (f) => f.attributes["gen_ai.security.location.attribute"] || f.attributes["gen_ai.security.loop.pattern"] || ""],
    ].filter(Boolean), answer.findings, { href: (f) => ui.traceUrl(f.trace_id, f.span_id) }),
    ui.pager(view, answer.next_cursor));
}
