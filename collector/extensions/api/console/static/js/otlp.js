// A trace as GET /api/v1/traces/{id} answers it (OTLP/JSON) made into plain span objects, its span tree,
// and what the GenAI conventions say about a span (operation, findings, content).

export const FINDING_EVENT = "gen_ai.security.finding";
export const MODEL_CALLS = new Set(["chat", "text_completion", "generate_content", "embeddings"]);
const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const STATUS = ["Unset", "Ok", "Error"];

/** An OTLP AnyValue as a JavaScript value (64-bit integers as numbers: attribute values are small). */
export function value(any) {
  if (!any) return null;
  if ("stringValue" in any) return any.stringValue;
  if ("intValue" in any) return Number(any.intValue);
  if ("doubleValue" in any) return any.doubleValue;
  if ("boolValue" in any) return any.boolValue;
  if ("arrayValue" in any) return (any.arrayValue.values || []).map(value);
  if ("kvlistValue" in any) return attributes(any.kvlistValue.values);
  if ("bytesValue" in any) return any.bytesValue;
  return null;
}

export function attributes(list) {
  const result = {};
  for (const pair of list || []) result[pair.key] = value(pair.value);
  return result;
}

function millis(nanos) {
  return nanos ? Number(BigInt(nanos)) / 1e6 : 0;
}

/** Every span of the trace: {id, parent, name, kind, start, end (ms since epoch), attrs, events, status...}. */
export function spansOf(trace) {
  const spans = [];
  for (const resourceSpans of trace.resourceSpans || []) {
    const resource = attributes(resourceSpans.resource && resourceSpans.resource.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans || []) {
      for (const span of scopeSpans.spans || []) {
        const start = millis(span.startTimeUnixNano);
        const end = millis(span.endTimeUnixNano);
        spans.push({
          id: span.spanId,
          parent: span.parentSpanId || "",
          name: span.name,
          kind: KINDS[span.kind || 0],
          start,
          end: Math.max(start, end),
          attrs: attributes(span.attributes),
          events: (span.events || []).map((event) => ({ name: event.name, time: millis(event.timeUnixNano), attrs: attributes(event.attributes) })),
          links: span.links || [],
          status: { code: STATUS[(span.status && span.status.code) || 0], message: (span.status && span.status.message) || "" },
          service: resource["service.name"] || "",
          resource,
          scope: scopeSpans.scope || {},
        });
      }
    }
  }
  return spans;
}

/** The spans in tree order (each after its parent, siblings by start), each with its depth. */
export function treeOrder(spans) {
  const byId = new Map(spans.map((span) => [span.id, span]));
  const children = new Map();
  const roots = [];
  for (const span of spans) {
    if (span.parent && byId.has(span.parent) && span.parent !== span.id) {
      if (!children.has(span.parent)) children.set(span.parent, []);
      children.get(span.parent).push(span);
    } else {
      roots.push(span);
    }
  }
  const byStart = (a, b) => a.start - b.start || a.name.localeCompare(b.name);
  const ordered = [];
  const stack = roots.sort(byStart).reverse().map((span) => [span, 0]);
  const seen = new Set();
  while (stack.length) {
    const [span, depth] = stack.pop();
    if (seen.has(span.id)) continue;
    seen.add(span.id);
    span.depth = depth;
    ordered.push(span);
    const kids = (children.get(span.id) || []).sort(byStart);
    for (let i = kids.length - 1; i >= 0; i -= 1) stack.push([kids[i], depth + 1]);
  }
  return ordered;
}

export function operation(span) {
  return span.attrs["gen_ai.operation.name"] || "";
}

export function isModelCall(span) {
  return MODEL_CALLS.has(operation(span));
}

export function isToolCall(span) {
  return operation(span) === "execute_tool";
}

/** The span's findings: the attributes of its gen_ai.security.finding events. */
export function findingsOf(span) {
  return span.events.filter((event) => event.name === FINDING_EVENT).map((event) => ({ ...event.attrs, time: event.time }));
}

/** A content attribute (gen_ai.input.messages...) decoded; null when absent or not JSON. */
export function content(span, name) {
  const raw = span.attrs[name];
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "string") return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
