// One trace: its span waterfall, and for the chosen span its facts; for an LLM call the conversation as
// chat, parameters, tokens, cost and its source, time to first chunk and findings marked in the text.

import { get } from "../api.js";
import { chat, findingList, toolExchange } from "../chat.js";
import { facts, fill, h } from "../dom.js";
import * as fmt from "../format.js";
import { callFacts, parameters } from "../genai.js";
import { findingsOf, isModelCall, isToolCall, spansOf, treeOrder } from "../otlp.js";
import * as ui from "../ui.js";
import { waterfall } from "../waterfall.js";

function attributeTable(title, attrs) {
  const entries = Object.entries(attrs);
  if (!entries.length) return null;
  return h("details", { class: "attrs" }, h("summary", null, `${title} (${entries.length})`),
    h("dl", { class: "kvs" }, entries.map(([key, value]) => [h("dt", null, key),
      h("dd", null, typeof value === "string" ? value : JSON.stringify(value))])));
}

function spanDetail(span, traceId) {
  const findings = findingsOf(span);
  const other = span.events.filter((event) => event.name !== "gen_ai.security.finding");
  const exchange = isModelCall(span) ? chat(span) : isToolCall(span) ? toolExchange(span) : null;
  const params = parameters(span);
  return h("article", { class: "span-detail", "aria-label": `Span ${span.name}` },
    h("h2", null, span.name),
    h("p", { class: "sub" }, h("span", { class: "svc" }, span.service), ` · ${span.kind} · `,
      fmt.timeElement(span.start, h), ` · ${fmt.duration(span.end - span.start)} · `,
      span.status.code === "Error" ? h("span", { class: "badge error" }, `error${span.status.message ? ": " + span.status.message : ""}`)
        : h("span", { class: "badge ok" }, span.status.code.toLowerCase())),
    isModelCall(span) ? facts(callFacts(span)) : null,
    isToolCall(span) ? facts([["Tool", span.attrs["gen_ai.tool.name"]], ["Call id", span.attrs["gen_ai.tool.call.id"]]]) : null,
    params.length ? h("section", null, h("h3", null, "Parameters"), facts(params, "facts params")) : null,
    findings.length ? h("section", { class: "span-findings" }, h("h3", null, `Findings (${findings.length})`), findingList(findings)) : null,
    exchange ? h("section", null, h("h3", null, isModelCall(span) ? "Conversation" : "Call"), exchange)
      : isModelCall(span) ? h("p", { class: "muted" }, "No message content recorded for this call (content capture is off where it was made).") : null,
    other.length ? h("section", null, h("h3", null, "Events"), h("ul", { class: "events" }, other.map((event) =>
      h("li", null, fmt.timeElement(event.time, h), " ", h("strong", null, event.name), " ",
        Object.entries(event.attrs).map(([k, v]) => h("span", { class: "kv" }, h("span", { class: "k" }, k), " ", String(v))))))) : null,
    attributeTable("Span attributes", span.attrs),
    attributeTable("Resource attributes", span.resource),
    h("p", { class: "ids muted" }, `trace ${traceId} · span ${span.id}${span.parent ? ` · parent ${span.parent}` : ""}`));
}

function initialSpan(ordered, wanted) {
  return ordered.find((span) => span.id === wanted)
    || ordered.find((span) => isModelCall(span) && findingsOf(span).length)
    || ordered.find((span) => isModelCall(span))
    || ordered[0];
}

export async function render(view) {
  const { main, params, query, signal } = view;
  const traceId = params[0].toLowerCase();
  main.append(ui.loading());
  let answer;
  try {
    answer = await get(`/traces/${traceId}`, undefined, { signal });
  } catch (error) {
    if (error.status === 404) {
      fill(main, ui.heading("Trace not found"), h("section", { class: "panel empty" },
        h("p", null, `No span of trace ${traceId} is stored, or none is visible to this key.`),
        h("p", null, h("a", { href: "/traces" }, "Search traces"))));
      return;
    }
    throw error;
  }
  const summary = answer.summary;
  const ordered = treeOrder(spansOf(answer.trace));
  const hasAgent = ordered.some((span) => isToolCall(span)) || ordered.filter(isModelCall).length > 1;
  let selected = initialSpan(ordered, query.get("span"));
  const detail = h("div", { class: "detail-pane" });
  const hrefOf = (span) => `/traces/${traceId}?span=${span.id}`;
  const fall = waterfall(ordered, {
    selected: selected && selected.id,
    hrefOf,
    onSelect(span) {
      selected = span;
      history.replaceState(null, "", hrefOf(span));
      fall.select(span.id);
      fill(detail, spanDetail(span, traceId));
    },
  });
  fill(main,
    ui.heading(`${summary.root.service} · ${summary.root.name}`,
      fmt.timeElement(summary.start, h), ` · ${fmt.duration(summary.duration_ms)} · ${fmt.counted(summary.span_count, "span")}`),
    h("div", { class: "tiles compact" },
      ui.tile("LLM calls", fmt.count(summary.llm_calls), null, "llm_calls"),
      ui.tile("Tokens in / out", `${fmt.tokens(summary.tokens.input)} / ${fmt.tokens(summary.tokens.output)}`,
        summary.tokens.cache_read || summary.tokens.reasoning
          ? `cache read ${fmt.tokens(summary.tokens.cache_read)} · reasoning ${fmt.tokens(summary.tokens.reasoning)}` : null, "tokens"),
      ui.tile("Cost", fmt.cost(summary.cost_usd), null, "cost"),
      ui.tile("Findings", summary.finding_count ? h("span", null, fmt.count(summary.finding_count), " ", ui.severityBadge(summary.max_severity)) : "none", null, "findings"),
      ui.tile("Errors", fmt.count(summary.error_count), null, "errors")),
    h("nav", { class: "actions", "aria-label": "This trace" },
      hasAgent ? h("a", { href: `/traces/${traceId}/graph`, class: "button" }, "Agent graph") : null,
      summary.conversations.map((id) => h("a", { href: ui.conversationUrl(id, summary.start), class: "button" }, `Conversation ${id}`))),
    answer.truncated ? h("p", { class: "notice" }, `Only the first ${fmt.count(ordered.length)} spans are shown (limits.max_trace_spans).`) : null,
    h("div", { class: "trace-layout" }, h("div", { class: "waterfall-pane" }, fall.element), detail));
  if (selected) fill(detail, spanDetail(selected, traceId));
  const current = main.querySelector(`[data-span="${selected ? selected.id : ""}"]`);
  if (current && query.get("span")) current.scrollIntoView({ block: "center" });
}
