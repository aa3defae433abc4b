// The agent graph of a trace: its LLM calls and tool calls as nodes, the order they ran in as edges.
// Identical steps are one node with a count (the same tool with the same arguments, the same agent calling
// the same model), so a loop shows as a cycle; edges back up the flow are drawn apart, and nodes whose spans
// carry findings (loops, budgets, security) are marked with the detector. The layout is layered: nodes in
// rows by the longest path of forward edges from the first step, ordered within a row by their predecessors.

import { h, s } from "./dom.js";
import { findingsOf, isModelCall, isToolCall, operation } from "./otlp.js";

const NODE_WIDTH = 250;
const NODE_HEIGHT = 58;
const GAP_X = 40;
const GAP_Y = 46;
const BACK_EDGE_OFFSET = 36;
const BACK_EDGE_SPREAD = 16;
const PREVIEW_CHARS = 33;
export const LOOP_CATEGORIES = new Set(["agent_loop", "agent_budget", "trace_analysis"]);

function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function argumentsOf(span) {
  const raw = span.attrs["gen_ai.tool.call.arguments"];
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "string") return canonical(raw);
  try {
    return canonical(JSON.parse(raw));
  } catch {
    return raw;
  }
}

function preview(text) {
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS - 1)}…` : text;
}

function agentOf(span, byId) {
  for (let at = span, hops = 0; at && hops < 64; at = byId.get(at.parent), hops += 1) {
    if (operation(at) === "invoke_agent") return String(at.attrs["gen_ai.agent.name"] || at.name);
  }
  return "";
}

/** The graph's nodes and edges from a trace's spans (otlp.spansOf). */
export function buildGraph(spans) {
  const byId = new Map(spans.map((span) => [span.id, span]));
  const steps = spans.filter((span) => isModelCall(span) || isToolCall(span)).sort((a, b) => a.start - b.start || a.end - b.end);
  const nodes = new Map();
  const nodeOf = new Map();
  for (const step of steps) {
    const agent = agentOf(step, byId);
    let key;
    let title;
    let detail;
    if (isToolCall(step)) {
      const name = String(step.attrs["gen_ai.tool.name"] || step.name);
      const args = argumentsOf(step);
      key = `tool\u0000${agent}\u0000${name}\u0000${args ?? ""}`;
      title = name;
      detail = args === null ? "arguments not recorded" : preview(args);
    } else {
      const model = String(step.attrs["gen_ai.request.model"] || step.attrs["gen_ai.response.model"] || step.name);
      key = `llm\u0000${agent}\u0000${operation(step)}\u0000${model}`;
      title = `${operation(step)} ${model}`;
      detail = agent ? `agent ${agent}` : "LLM call";
    }
    if (!nodes.has(key)) {
      nodes.set(key, { key, kind: isToolCall(step) ? "tool" : "llm", title, detail, spans: [], findings: [], order: nodes.size, errors: 0 });
    }
    const node = nodes.get(key);
    node.spans.push(step);
    node.findings.push(...findingsOf(step).map((finding) => ({ ...finding, span: step.id })));
    if (step.status.code === "Error") node.errors += 1;
    nodeOf.set(step.id, node);
  }
  const edges = new Map();
  const link = (from, to) => {
    const id = `${from.order}>${to.order}`;
    if (!edges.has(id)) edges.set(id, { from, to, count: 0 });
    edges.get(id).count += 1;
  };
  // Tool calls that overlap the tool call before them ran in parallel: they share its predecessors.
  let group = [];
  let groupPredecessors = [];
  let last = null;
  for (const step of steps) {
    const parallel = last && isToolCall(step) && isToolCall(last) && step.start < last.end;
    if (parallel) {
      group.push(step);
    } else {
      groupPredecessors = group;
      group = [step];
    }
    for (const before of groupPredecessors) link(nodeOf.get(before.id), nodeOf.get(step.id));
    last = step;
  }
  const stepIds = new Set(steps.map((step) => step.id));
  const otherFindings = spans.filter((span) => !stepIds.has(span.id))
    .flatMap((span) => findingsOf(span).map((finding) => ({ ...finding, span: span.id, spanName: span.name })));
  return { nodes: [...nodes.values()], edges: [...edges.values()], steps, otherFindings };
}

/** Positions: back edges found by depth-first search, rows by the longest forward path, order by predecessors. */
export function layout(graph) {
  const { nodes, edges } = graph;
  const outgoing = new Map(nodes.map((node) => [node, []]));
  for (const edge of edges) outgoing.get(edge.from).push(edge);
  const state = new Map();
  for (const root of nodes) {
    if (state.has(root)) continue;
    const stack = [[root, 0]];
    state.set(root, "open");
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [node, index] = top;
      const out = outgoing.get(node);
      if (index >= out.length) {
        state.set(node, "done");
        stack.pop();
        continue;
      }
      top[1] += 1;
      const edge = out[index];
      const seen = state.get(edge.to);
      if (seen === "open") edge.back = true;
      else if (!seen) {
        state.set(edge.to, "open");
        stack.push([edge.to, 0]);
      }
    }
  }
  const forward = edges.filter((edge) => !edge.back);
  const indegree = new Map(nodes.map((node) => [node, 0]));
  for (const edge of forward) indegree.set(edge.to, indegree.get(edge.to) + 1);
  const layer = new Map(nodes.map((node) => [node, 0]));
  const ready = nodes.filter((node) => indegree.get(node) === 0);
  while (ready.length) {
    const node = ready.shift();
    for (const edge of forward.filter((item) => item.from === node)) {
      layer.set(edge.to, Math.max(layer.get(edge.to), layer.get(node) + 1));
      indegree.set(edge.to, indegree.get(edge.to) - 1);
      if (indegree.get(edge.to) === 0) ready.push(edge.to);
    }
  }
  const rows = [];
  for (const node of nodes) {
    const row = layer.get(node);
    (rows[row] ||= []).push(node);
  }
  const position = new Map();
  rows.forEach((row, rowIndex) => {
    if (rowIndex > 0) {
      const centre = (node) => {
        const before = forward.filter((edge) => edge.to === node).map((edge) => position.get(edge.from));
        return before.length ? before.reduce((a, b) => a + b, 0) / before.length : node.order;
      };
      row.sort((a, b) => centre(a) - centre(b) || a.order - b.order);
    }
    row.forEach((node, index) => position.set(node, index));
  });
  const widest = Math.max(...rows.map((row) => row.length));
  const backCount = edges.filter((edge) => edge.back).length;
  const width = widest * NODE_WIDTH + (widest - 1) * GAP_X + 2 * (BACK_EDGE_OFFSET + backCount * BACK_EDGE_SPREAD) + 20;
  rows.forEach((row, rowIndex) => {
    const rowWidth = row.length * NODE_WIDTH + (row.length - 1) * GAP_X;
    const left = (widest * NODE_WIDTH + (widest - 1) * GAP_X - rowWidth) / 2 + 10;
    row.forEach((node, index) => {
      node.x = left + index * (NODE_WIDTH + GAP_X);
      node.y = 10 + rowIndex * (NODE_HEIGHT + GAP_Y);
    });
  });
  return { width, height: rows.length * (NODE_HEIGHT + GAP_Y) - GAP_Y + 40 };
}

function edgePath(edge, backIndex) {
  const { from, to } = edge;
  if (edge.back) {
    const offset = BACK_EDGE_OFFSET + backIndex * BACK_EDGE_SPREAD;
    const sx = from.x + NODE_WIDTH;
    const sy = from.y + NODE_HEIGHT * (from === to ? 0.3 : 0.6);
    const tx = to.x + NODE_WIDTH;
    const ty = to.y + NODE_HEIGHT * (from === to ? 0.7 : 0.4);
    if (from === to) return { d: `M ${sx} ${sy} C ${sx + offset} ${sy - 18}, ${tx + offset} ${ty + 18}, ${tx} ${ty}`, lx: sx + offset * 0.8, ly: (sy + ty) / 2 };
    const bend = Math.max(sx, tx) + offset;
    return { d: `M ${sx} ${sy} C ${bend} ${sy}, ${bend} ${ty}, ${tx} ${ty}`, lx: bend - 6, ly: (sy + ty) / 2 };
  }
  const sx = from.x + NODE_WIDTH / 2;
  const sy = from.y + NODE_HEIGHT;
  const tx = to.x + NODE_WIDTH / 2;
  const ty = to.y;
  const mid = (sy + ty) / 2;
  return { d: `M ${sx} ${sy} C ${sx} ${mid}, ${tx} ${mid}, ${tx} ${ty}`, lx: (sx + tx) / 2 + 6, ly: mid };
}

function worst(findings) {
  const rank = { low: 1, medium: 2, high: 3, critical: 4 };
  return findings.reduce((top, f) => (rank[f["gen_ai.security.severity"]] > (rank[top] || 0) ? f["gen_ai.security.severity"] : top), null);
}

/** The graph as an SVG element; nodeHref(node) links each node to its first span. */
export function renderGraph(graph, nodeHref) {
  const size = layout(graph);
  const svg = s("svg", {
    class: "agent-graph", viewBox: `0 0 ${size.width} ${size.height}`, width: size.width, height: size.height,
    role: "img", "aria-label": `Agent graph: ${graph.nodes.length} steps`,
  });
  svg.append(s("defs", null,
    s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" })),
    s("marker", { id: "arrow-loop", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow loop" }))));
  let backIndex = 0;
  for (const edge of graph.edges) {
    const looping = edge.back && [edge.from, edge.to].some((node) => node.findings.some((f) => LOOP_CATEGORIES.has(f["gen_ai.security.category"])));
    const path = edgePath(edge, edge.back ? backIndex++ : 0);
    const cls = ["edge", edge.back ? "back" : null, looping ? "loop" : null].filter(Boolean).join(" ");
    svg.append(s("g", { class: cls, "data-from": edge.from.title, "data-to": edge.to.title, "data-count": edge.count },
      s("path", { d: path.d, "marker-end": looping ? "url(#arrow-loop)" : "url(#arrow)" }),
      edge.count > 1 ? s("text", { x: path.lx, y: path.ly, class: "edge-count" }, `×${edge.count}`) : null));
  }
  for (const node of graph.nodes) {
    const severity = worst(node.findings);
    const detectors = [...new Set(node.findings.map((f) => f["gen_ai.security.detector.id"]))];
    const cls = ["node", node.kind, severity ? `has-finding sev-${severity}` : null, node.errors ? "has-error" : null].filter(Boolean).join(" ");
    const anchor = s("a", {
      href: nodeHref(node), class: cls, "data-row": "", "data-node": node.title, "data-count": node.spans.length,
      "aria-label": `${node.title}, ${node.spans.length} time${node.spans.length === 1 ? "" : "s"}${detectors.length ? ", findings: " + detectors.join(", ") : ""}`,
    },
    s("rect", { x: node.x, y: node.y, width: NODE_WIDTH, height: NODE_HEIGHT, rx: 8 }),
    s("text", { x: node.x + 10, y: node.y + 19, class: "node-title" }, preview(node.title)),
    s("text", { x: node.x + 10, y: node.y + 36, class: "node-detail" }, node.detail),
    node.spans.length > 1 ? s("text", { x: node.x + NODE_WIDTH - 10, y: node.y + 20, class: "node-count", "text-anchor": "end" }, `×${node.spans.length}`) : null,
    detectors.length
      ? s("text", { x: node.x + 10, y: node.y + 51, class: "node-finding" }, `⚠ ${preview(detectors.join(", "))}`)
      : s("text", { x: node.x + 10, y: node.y + 51, class: "node-kind" }, node.kind === "tool" ? "tool call" : "LLM call"));
    svg.append(anchor);
  }
  return h("div", { class: "graph-wrap" }, svg);
}
