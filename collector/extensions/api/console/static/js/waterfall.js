// The span waterfall: one row per span in tree order, a bar for when it ran within the trace.

import { h } from "./dom.js";
import * as fmt from "./format.js";
import { findingsOf, isModelCall, isToolCall, operation } from "./otlp.js";

const MIN_BAR_PERCENT = 0.3;

function kindClass(span) {
  if (isModelCall(span)) return "llm";
  if (isToolCall(span)) return "tool";
  if (["invoke_agent", "invoke_workflow", "create_agent"].includes(operation(span))) return "agent";
  return "other";
}

/** The waterfall of ordered spans (otlp.treeOrder); onSelect(span) when a row is chosen. */
export function waterfall(ordered, { selected, onSelect, hrefOf }) {
  const start = Math.min(...ordered.map((span) => span.start));
  const end = Math.max(...ordered.map((span) => span.end));
  const total = Math.max(end - start, 1e-6);
  const rows = new Map();
  const list = h("ol", { class: "waterfall", "aria-label": "Spans" });
  const fragment = document.createDocumentFragment();
  for (const span of ordered) {
    const findings = findingsOf(span);
    const left = ((span.start - start) / total) * 100;
    const width = Math.max(((span.end - span.start) / total) * 100, MIN_BAR_PERCENT);
    const row = h("a", {
      href: hrefOf(span), class: ["span-row", kindClass(span), span.status.code === "Error" ? "is-error" : null],
      "data-row": "", "data-span": span.id, "aria-current": span.id === selected ? "true" : null,
    },
    h("span", { class: "span-name", style: { paddingLeft: `${Math.min(span.depth, 24) * 0.9}rem` } },
      findings.length ? h("span", { class: "dot", title: `${findings.length} finding(s)` }, "●") : null,
      h("span", { class: "svc" }, span.service), " ", span.name),
    h("span", { class: "span-track" }, h("span", { class: "bar", style: { left: `${left}%`, width: `${Math.min(width, 100 - left)}%` } })),
    h("span", { class: "span-dur" }, fmt.duration(span.end - span.start)));
    row.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
      event.preventDefault();
      onSelect(span);
    });
    rows.set(span.id, row);
    fragment.append(h("li", null, row));
  }
  list.append(fragment);
  return {
    element: list,
    select(id) {
      const before = list.querySelector(".span-row[aria-current]");
      if (before) before.removeAttribute("aria-current");
      const row = rows.get(id);
      if (row) row.setAttribute("aria-current", "true");
    },
  };
}
