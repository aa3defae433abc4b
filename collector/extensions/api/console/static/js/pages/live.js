// Live tail: calls and findings as they pass the pipeline (GET /api/v1/stream), newest on top.

import { stream } from "../api.js";
import { h } from "../dom.js";
import * as fmt from "../format.js";
import * as ui from "../ui.js";

const MAX_ROWS = 500;
const RETRY_MS = [1000, 2000, 5000, 10000];

function callRow(call) {
  return h("tr", { class: ["live-row", "call", call.status === "Error" ? "has-error" : null].filter(Boolean).join(" ") },
    h("td", null, h("a", { href: ui.traceUrl(call.trace_id, call.span_id), "data-row": "", class: "row-link" }, fmt.clock(call.time))),
    h("td", null, h("span", { class: "badge kind" }, "call")),
    h("td", null, call.service),
    h("td", null, call.request_model || call.response_model, call.provider ? h("span", { class: "muted" }, ` · ${call.provider}`) : null),
    h("td", { class: "num" }, `${fmt.tokens(call.tokens.input)} / ${fmt.tokens(call.tokens.output)}`),
    h("td", { class: "num" }, fmt.cost(call.cost_usd)),
    h("td", { class: "num" }, fmt.duration(call.duration_ms)),
    h("td", null, call.finding_count ? `${call.finding_count} finding(s)` : ui.statusBadge(call.status === "Error")));
}

function findingRow(finding) {
  return h("tr", { class: "live-row finding" },
    h("td", null, h("a", { href: ui.traceUrl(finding.trace_id, finding.span_id), "data-row": "", class: "row-link" }, fmt.clock(finding.time))),
    h("td", null, ui.severityBadge(finding.severity)),
    h("td", null, finding.service),
    h("td", { colspan: 4 }, h("strong", null, finding.detector), h("span", { class: "muted" }, ` · ${finding.category}`)),
    h("td", null, finding.tenant || ""));
}

export async function render(view) {
  const { main, query, about, signal } = view;
  const kinds = query.get("kind") || "call,finding";
  main.append(ui.heading("Live tail", "Calls and findings as the collector takes them in"),
    ui.filterForm(view, [
      { name: "kind", label: "Show", type: "select", options: [["call,finding", "calls and findings"], ["call", "calls"], ["finding", "findings"]] },
      { name: "service", label: "Service" },
      { name: "model", label: "Model" },
      { name: "min_severity", label: "Findings ≥", type: "select", options: [["", "any"], ...ui.SEVERITIES.map((s) => [s, s])] },
    ], { window: false }));
  const status = h("p", { class: "live-status", role: "status" }, "Connecting…");
  const body = h("tbody", { "aria-live": "polite" });
  const waiting = ui.empty("Waiting for data", "Nothing arrived since this page opened. Calls show up here as they are made:", about);
  const tableWrap = h("div", { class: "table-wrap" }, h("table", { class: "live" },
    h("thead", null, h("tr", null, ["Time", "Kind", "Service", "Model / detector", "Tokens in / out", "Cost", "Duration", "Status"]
      .map((label, index) => h("th", { scope: "col", class: index >= 4 && index <= 6 ? "num" : null }, label)))), body));
  tableWrap.hidden = true;
  main.append(status, tableWrap, waiting);
  let received = 0;
  const add = (kind, data) => {
    if (kind !== "call" && kind !== "finding") return;
    received += 1;
    tableWrap.hidden = false;
    waiting.remove();
    body.prepend(kind === "call" ? callRow(data) : findingRow(data));
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
    status.textContent = `Connected · ${fmt.counted(received, "event")} since ${fmt.clock(opened)}`;
  };
  const opened = Date.now();
  const params = { kind: kinds, service: query.get("service"), model: query.get("model"), min_severity: query.get("min_severity") };
  (async () => {
    for (let attempt = 0; !signal.aborted; attempt += 1) {
      try {
        await stream(params, {
          signal,
          onOpen() {
            attempt = 0;
            status.textContent = received ? `Connected · ${fmt.counted(received, "event")}` : "Connected · waiting for calls…";
            status.dataset.connected = "true";
          },
          onEvent: add,
        });
      } catch (error) {
        if (signal.aborted) return;
        status.dataset.connected = "false";
        if (error.status === 401) {
          status.textContent = "The key is no longer accepted.";
          return;
        }
        const wait = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
        status.textContent = `Disconnected (${error.message}); trying again in ${wait / 1000} s`;
        await new Promise((resolve) => setTimeout(resolve, wait));
        continue;
      }
      status.dataset.connected = "false";
      status.textContent = "The stream ended; reconnecting…";
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS[0]));
    }
  })();
}
