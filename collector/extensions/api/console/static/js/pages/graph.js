// The agent graph of one trace, with the findings of its steps and of the trace beside it.

import { get } from "../api.js";
import { buildGraph, renderGraph } from "../agentgraph.js";
import { findingList } from "../chat.js";
import { fill, h } from "../dom.js";
import * as fmt from "../format.js";
import { spansOf } from "../otlp.js";
import * as ui from "../ui.js";

export async function render(view) {
  const { main, params, signal } = view;
  const traceId = params[0].toLowerCase();
  main.append(ui.loading());
  let answer;
  try {
    answer = await get(`/traces/${traceId}`, undefined, { signal });
  } catch (error) {
    if (error.status !== 404) throw error;
    fill(main, ui.heading("Trace not found"), h("p", null, `No span of trace ${traceId} is visible to this key.`));
    return;
  }
  const summary = answer.summary;
  const graph = buildGraph(spansOf(answer.trace));
  const title = ui.heading(`Agent graph · ${summary.root.service} · ${summary.root.name}`,
    `${fmt.counted(graph.steps.length, "step")} in ${fmt.counted(graph.nodes.length, "node")} · `,
    h("a", { href: ui.traceUrl(traceId) }, "waterfall"));
  if (!graph.nodes.length) {
    fill(main, title, ui.empty("No agent steps in this trace", "The graph shows LLM calls and tool calls (gen_ai.operation.name chat, execute_tool...); this trace has none.", null, { withIngest: false }));
    return;
  }
  // Each finding with where it is: the node of its step, or (a finding on the agent's span) the span's name.
  const placed = [
    ...graph.nodes.flatMap((node) => node.findings.map((finding) => ({ finding, span: finding.span, where: node.title }))),
    ...graph.otherFindings.map((finding) => ({ finding, span: finding.span, where: finding.spanName })),
  ];
  const attributesOf = ({ finding }) => Object.fromEntries(Object.entries(finding).filter(([key]) => !["span", "spanName"].includes(key)));
  fill(main, title,
    h("p", { class: "legend" }, h("span", { class: "key llm" }, "LLM call"), h("span", { class: "key tool" }, "tool call"),
      h("span", { class: "key back" }, "back to an earlier step"), h("span", { class: "key loop" }, "loop with a finding"),
      "Identical steps are one node: ×n is how often it ran."),
    h("div", { class: "graph-layout" },
      renderGraph(graph, (node) => ui.traceUrl(traceId, node.spans[0].id)),
      h("aside", { class: "graph-findings", "aria-label": "Findings" }, h("h2", null, `Findings (${placed.length})`),
        placed.length ? findingList(placed.map(attributesOf)) : h("p", { class: "muted" }, "No findings on this trace."),
        placed.length ? h("ul", { class: "finding-links" }, placed.map((item) => h("li", null,
          h("a", { href: ui.traceUrl(traceId, item.span) }, `${item.finding["gen_ai.security.detector.id"]} on ${item.where}`)))) : null)));
}
