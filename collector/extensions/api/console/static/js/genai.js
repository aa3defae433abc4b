// What the GenAI conventions say about one span, as facts to show: model, tokens, cost and its source,
// time to first chunk, request parameters.

import { h } from "./dom.js";
import * as fmt from "./format.js";
import { conversationUrl } from "./ui.js";

const PARAMETER_PREFIX = "gen_ai.request.";
const NOT_PARAMETERS = new Set(["gen_ai.request.model"]);

function first(attrs, ...names) {
  for (const name of names) if (attrs[name] !== undefined && attrs[name] !== null && attrs[name] !== "") return attrs[name];
  return undefined;
}

function listText(value) {
  return Array.isArray(value) ? value.join(", ") : value;
}

/** [term, value] pairs of an LLM call span: the facts the trace view shows above its chat. */
export function callFacts(span) {
  const a = span.attrs;
  const amount = first(a, "gen_ai.usage.cost.amount", "gen_ai.usage.cost");
  const source = first(a, "gen_ai.usage.cost.source");
  const ttfc = first(a, "gen_ai.response.time_to_first_chunk");
  const conversation = first(a, "gen_ai.conversation.id");
  const tokens = (...names) => {
    const value = first(a, ...names);
    return value === undefined ? undefined : fmt.tokens(Number(value));
  };
  return [
    ["Operation", a["gen_ai.operation.name"]],
    ["Provider", a["gen_ai.provider.name"]],
    ["Model", first(a, "gen_ai.request.model")],
    ["Responding model", first(a, "gen_ai.response.model")],
    ["Input tokens", tokens("gen_ai.usage.input_tokens")],
    ["Output tokens", tokens("gen_ai.usage.output_tokens")],
    ["Cache read", tokens("gen_ai.usage.cache_read.input_tokens")],
    ["Cache write", tokens("gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens")],
    ["Reasoning tokens", tokens("gen_ai.usage.reasoning.output_tokens")],
    ["Cost", amount === undefined ? undefined : h("span", null, fmt.cost(Number(amount)),
      h("span", { class: "muted" }, ` · ${source ? costSource(source) : "source not recorded"}`))],
    ["Time to first chunk", ttfc === undefined ? undefined : fmt.duration(Number(ttfc) * 1000)],
    ["Finish", listText(first(a, "gen_ai.response.finish_reasons"))],
    ["Response id", first(a, "gen_ai.response.id")],
    ["Agent", first(a, "gen_ai.agent.name")],
    ["Conversation", conversation === undefined ? undefined : h("a", { href: conversationUrl(String(conversation), span.start) }, String(conversation))],
  ];
}

function costSource(source) {
  if (source === "provider") return "reported by the provider";
  if (source === "local") return "priced by genai_cost from the tokens";
  return `source: ${source}`;
}

/** The request's parameters (gen_ai.request.* but the model): temperature, max_tokens, top_p... */
export function parameters(span) {
  return Object.entries(span.attrs)
    .filter(([name]) => name.startsWith(PARAMETER_PREFIX) && !NOT_PARAMETERS.has(name))
    .map(([name, value]) => [name.slice(PARAMETER_PREFIX.length), Array.isArray(value) ? value.join(", ") : String(value)]);
}
