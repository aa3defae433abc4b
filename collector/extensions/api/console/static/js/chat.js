// An LLM call's conversation as chat: system instructions, the messages sent (user, assistant, tool calls
// with their arguments, tool results) and the reply, from the GenAI content attributes. Findings are marked
// where their offsets point, and values genai_security masked or hashed are shown as such. All of it text.

import { h } from "./dom.js";
import { content, findingsOf } from "./otlp.js";
import { severityBadge } from "./ui.js";

const SYSTEM = "gen_ai.system_instructions";
const INPUT = "gen_ai.input.messages";
const OUTPUT = "gen_ai.output.messages";
const MASKED = /\[(?:REDACTED:[^\]\s]+|HMAC:[^\]\s:]+:[0-9a-f]+)\]/g;
const LOCATION = "gen_ai.security.location.";

/** A JSON value written as Python's json.dumps writes it (", " and ": ", non-ASCII kept): the text genai_security
 *  scanned for an object-valued tool argument or result, so that finding offsets point into what is shown. */
export function pythonJson(value) {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(", ")}]`;
  if (typeof value === "object") {
    return `{${Object.entries(value).map(([key, item]) => `${pythonString(key)}: ${pythonJson(item)}`).join(", ")}}`;
  }
  if (typeof value === "string") return pythonString(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return "null";
}

function pythonString(text) {
  return JSON.stringify(text); // the same escapes as Python's with ensure_ascii=False
}

/** Marks on [start, end) code-point ranges of text, and masked values; text nodes otherwise. */
export function markedText(text, marks) {
  const points = Array.from(text);
  const boundaries = [];
  const firstMask = text.search(MASKED);
  const maskAt = firstMask < 0 ? Infinity : Array.from(text.slice(0, firstMask)).length;
  for (const mark of marks) {
    const start = Number(mark.start);
    const end = Number(mark.end);
    // Offsets point into the text as it was scanned: valid while no masked value before them changed its length.
    if (Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= points.length && end <= maskAt) {
      boundaries.push({ start, end, mark });
    }
  }
  boundaries.sort((a, b) => a.start - b.start);
  const nodes = [];
  let at = 0;
  for (const { start, end, mark } of boundaries) {
    if (start < at) continue; // overlapping marks: the first one wins
    nodes.push(...masked(points.slice(at, start).join("")));
    const label = `${mark.detector} (${mark.severity})`;
    nodes.push(h("mark", { class: `finding sev-${mark.severity}`, title: label, "data-detector": mark.detector },
      points.slice(start, end).join("")));
    at = end;
  }
  nodes.push(...masked(points.slice(at).join("")));
  return nodes;
}

function masked(text) {
  const nodes = [];
  let at = 0;
  for (const match of text.matchAll(MASKED)) {
    if (match.index > at) nodes.push(text.slice(at, match.index));
    nodes.push(h("span", { class: "masked", title: "masked by genai_security before it was stored" }, match[0]));
    at = match.index + match[0].length;
  }
  if (at < text.length) nodes.push(text.slice(at));
  return nodes;
}

function marksFor(findings, attribute, message, part) {
  return findings
    .filter((f) => f[LOCATION + "attribute"] === attribute && Number(f[LOCATION + "message"]) === message
      && Number(f[LOCATION + "part"]) === part)
    .filter((f) => !f["gen_ai.security.action"] || f["gen_ai.security.action"] === "keep")
    .map((f) => ({
      start: f[LOCATION + "start"], end: f[LOCATION + "end"],
      detector: f["gen_ai.security.detector.id"], severity: f["gen_ai.security.severity"],
    }));
}

function textOf(valueOrText) {
  return typeof valueOrText === "string" ? valueOrText : pythonJson(valueOrText);
}

function part(item, marks) {
  if (!item || typeof item !== "object") return h("div", { class: "part" }, textOf(item));
  const type = item.type || "";
  if (type === "text") return h("div", { class: "part text" }, markedText(textOf(item.content ?? ""), marks));
  if (type === "reasoning") {
    return h("details", { class: "part reasoning" }, h("summary", null, "Reasoning"),
      h("div", { class: "text" }, markedText(textOf(item.content ?? ""), marks)));
  }
  if (type === "tool_call") {
    return h("div", { class: "part tool-call" },
      h("div", { class: "tool-head" }, "→ calls ", h("code", null, item.name || "?"), item.id ? h("span", { class: "muted" }, ` ${item.id}`) : null),
      h("pre", { class: "args" }, markedText(textOf(item.arguments ?? ""), marks)));
  }
  if (type === "tool_call_response") {
    return h("div", { class: "part tool-result" },
      h("div", { class: "tool-head" }, "← result", item.id ? h("span", { class: "muted" }, ` ${item.id}`) : null),
      h("pre", { class: "args" }, markedText(textOf(item.response ?? ""), marks)));
  }
  return h("div", { class: "part other" }, h("span", { class: "muted" }, `${type || "part"}: `), pythonJson(item));
}

function bubble(role, parts, extra) {
  return h("li", { class: `message role-${/^[a-z_]+$/.test(role) ? role : "other"}` },
    h("div", { class: "role" }, role, extra ? h("span", { class: "muted" }, ` · ${extra}`) : null), parts);
}

function messages(document, attribute, findings, defaultRole) {
  if (document === null) return [];
  if (!Array.isArray(document)) return [bubble(defaultRole, h("div", { class: "part text" }, markedText(textOf(document), [])))];
  return document.map((message, index) => {
    if (!message || typeof message !== "object") return bubble(defaultRole, part(message, []));
    const role = String(message.role || defaultRole);
    const parts = Array.isArray(message.parts) ? message.parts : [];
    return bubble(role, parts.map((item, partIndex) => part(item, marksFor(findings, attribute, index, partIndex))),
      message.finish_reason ? `finish: ${message.finish_reason}` : null);
  });
}

/** The chat of an LLM call span, or null when it recorded no content. */
export function chat(span) {
  const findings = findingsOf(span);
  const system = content(span, SYSTEM);
  const input = content(span, INPUT);
  const output = content(span, OUTPUT);
  const dropped = span.attrs["gen_ai.security.content_dropped"];
  if (system === null && input === null && output === null && !dropped) return null;
  const items = [];
  if (system !== null) {
    const parts = Array.isArray(system) ? system : [system];
    items.push(bubble("system", parts.map((item, index) => part(typeof item === "string" ? { type: "text", content: item } : item,
      marksFor(findings, SYSTEM, 0, index)))));
  }
  items.push(...messages(input, INPUT, findings, "user"));
  if (output !== null) items.push(h("li", { class: "divider", role: "separator" }, "reply"));
  items.push(...messages(output, OUTPUT, findings, "assistant"));
  return h("div", { class: "chat" },
    dropped ? h("p", { class: "notice" }, `Content dropped by genai_security: ${[].concat(dropped).join(", ")}`) : null,
    h("ol", { class: "messages" }, items));
}

/** A tool span's call and result (gen_ai.tool.call.arguments, gen_ai.tool.call.result), or null. */
export function toolExchange(span) {
  const args = span.attrs["gen_ai.tool.call.arguments"];
  const result = span.attrs["gen_ai.tool.call.result"];
  if (args === undefined && result === undefined) return null;
  const items = [];
  if (args !== undefined) items.push(bubble("tool call", h("pre", { class: "args" }, markedText(textOf(args), []))));
  if (result !== undefined) items.push(bubble("tool result", h("pre", { class: "args" }, markedText(textOf(result), []))));
  return h("div", { class: "chat" }, h("ol", { class: "messages" }, items));
}

/** The span's findings as a list, each with its detector, severity, where it is and what else it says. */
export function findingList(findings) {
  return h("ul", { class: "findings" }, findings.map((f) => {
    const where = f[LOCATION + "attribute"]
      ? `${f[LOCATION + "attribute"]}${f[LOCATION + "message"] !== undefined ? ` message ${f[LOCATION + "message"]}, part ${f[LOCATION + "part"]}` : ""}`
        + (f[LOCATION + "start"] !== undefined ? `, characters ${f[LOCATION + "start"]}–${f[LOCATION + "end"]}` : "")
      : "";
    const details = Object.entries(f).filter(([key]) => ![
      "gen_ai.security.detector.id", "gen_ai.security.category", "gen_ai.security.severity", "gen_ai.security.confidence", "time",
    ].includes(key) && !key.startsWith(LOCATION));
    return h("li", { class: "finding-item", dataset: { detector: f["gen_ai.security.detector.id"] || "" } },
      severityBadge(f["gen_ai.security.severity"]), " ",
      h("strong", null, f["gen_ai.security.detector.id"] || "finding"), " ",
      h("span", { class: "muted" }, `${f["gen_ai.security.category"] || ""} · confidence ${f["gen_ai.security.confidence"] ?? "–"}`),
      where ? h("div", { class: "where" }, where) : null,
      details.length ? h("div", { class: "details" }, details.map(([key, value]) => h("span", { class: "kv" },
        h("span", { class: "k" }, key.replace(/^gen_ai\.security\./, "")), " ", textOf(value)))) : null);
  }));
}
