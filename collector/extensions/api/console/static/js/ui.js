// Pieces every page uses: the time window, filter forms, tables whose rows are links, badges, pagers,
// and the empty state that tells a new user where to send data.

import { get } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
export const RANGES = { "15m": 15 * MINUTE, "1h": HOUR, "6h": 6 * HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY };
export const SEVERITIES = ["low", "medium", "high", "critical"];

/**
 * The time window a page's URL asks for: ?range=1h (the last hour, moving with now) or ?start=&end= (fixed).
 * {start, end} as Date, params for the API, and whether it follows now.
 */
export function timeWindow(query, fallback = "1h") {
  const start = query.get("start");
  const end = query.get("end");
  if (start) {
    const endDate = end ? new Date(end) : new Date();
    return { start: new Date(start), end: endDate, live: !end, range: null, params: { start, end: end || undefined } };
  }
  const range = RANGES[query.get("range")] ? query.get("range") : fallback;
  const now = new Date();
  const from = new Date(now.getTime() - RANGES[range]);
  return { start: from, end: now, live: true, range, params: { start: from.toISOString(), end: now.toISOString() } };
}

/** A query string from a URLSearchParams-like object, with changes (null or "" removes a name). */
export function withQuery(query, changes, path = location.pathname) {
  const next = new URLSearchParams(query);
  for (const [name, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === "") next.delete(name);
    else next.set(name, value);
  }
  const text = next.toString();
  return text ? `${path}?${text}` : path;
}

function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * MINUTE);
  return shifted.toISOString().slice(0, 16);
}

/**
 * A filter form: fields are {name, label, type: "text"|"select"|"datalist", options?, placeholder?}.
 * Submitting navigates to the same page with the fields in the query (the cursor dropped).
 */
export function filterForm(view, fields, { window: withWindow = true, fallbackRange = "1h" } = {}) {
  const query = view.query;
  const controls = fields.map((field) => {
    const id = `filter-${field.name}`;
    let control;
    if (field.type === "select") {
      control = h("select", { id, name: field.name },
        field.options.map(([value, label]) => h("option", { value, selected: query.get(field.name) === value }, label)));
    } else {
      control = h("input", {
        id, name: field.name, type: field.input || "text", value: query.get(field.name) || "",
        placeholder: field.placeholder || "", list: field.options ? `${id}-list` : undefined, autocomplete: "off",
        inputmode: field.inputmode,
      });
    }
    const list = field.options && field.type !== "select"
      ? h("datalist", { id: `${id}-list` }, field.options.map((value) => h("option", { value })))
      : null;
    return h("label", { class: "field", for: id }, h("span", null, field.label), control, list);
  });
  if (withWindow) {
    const chosen = query.get("start") ? "custom" : query.get("range") || fallbackRange;
    const current = timeWindow(query, fallbackRange);
    const range = h("select", { id: "filter-range", name: "range" },
      [...Object.keys(RANGES).map((name) => h("option", { value: name, selected: chosen === name }, `Last ${name}`)),
        h("option", { value: "custom", selected: chosen === "custom" }, "From … to …")]);
    const from = h("input", { type: "datetime-local", name: "from", value: localInput(current.start), "aria-label": "From" });
    const to = h("input", { type: "datetime-local", name: "to", value: query.get("end") ? localInput(current.end) : "", "aria-label": "To (empty: now)" });
    const custom = h("span", { class: "custom-range" }, from, to);
    custom.hidden = chosen !== "custom";
    range.addEventListener("change", () => { custom.hidden = range.value !== "custom"; });
    controls.unshift(h("label", { class: "field", for: "filter-range" }, h("span", null, `Time (${fmt.zone()})`), range, custom));
  }
  // On a phone the time and the first filter show; the rest fold behind a button (always shown when wider).
  const shown = withWindow ? 2 : 1;
  let folded = null;
  if (controls.length > shown + 1) {
    const rest = controls.splice(shown);
    const active = fields.slice(shown - (withWindow ? 1 : 0)).filter((field) => query.get(field.name)).length;
    folded = h("div", { class: "more-fields", id: "more-filters" }, rest);
    folded.hidden = active === 0;
    const toggle = h("button", { type: "button", class: "subtle more-toggle", "aria-controls": "more-filters", "aria-expanded": String(!folded.hidden) },
      active ? `More filters (${active} set)` : "More filters");
    toggle.addEventListener("click", () => {
      folded.hidden = !folded.hidden;
      toggle.setAttribute("aria-expanded", String(!folded.hidden));
    });
    controls.push(toggle);
  }
  const form = h("form", { class: "filters", role: "search" }, controls, folded, h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const [name, value] of data.entries()) {
      if (["range", "from", "to"].includes(name) || value === "") continue;
      next.set(name, value);
    }
    if (withWindow) {
      if (data.get("range") === "custom") {
        if (data.get("from")) next.set("start", new Date(data.get("from")).toISOString());
        if (data.get("to")) next.set("end", new Date(data.get("to")).toISOString());
      } else {
        next.set("range", data.get("range"));
      }
    }
    for (const keep of view.keepQuery || []) if (query.get(keep)) next.set(keep, query.get(keep));
    const text = next.toString();
    view.navigate(text ? `${location.pathname}?${text}` : location.pathname);
  });
  return form;
}

/** The page's title and a line under it. */
export function heading(title, ...details) {
  document.title = `${title} · genai-collector`;
  return h("div", { class: "heading" }, h("h1", null, title), details.length ? h("p", { class: "sub" }, details) : null);
}

export function severityBadge(severity) {
  if (!severity) return h("span", { class: "muted" }, "–");
  return h("span", { class: `badge sev-${SEVERITIES.includes(severity) ? severity : "low"}` }, severity);
}

export function statusBadge(isError) {
  return isError ? h("span", { class: "badge error" }, "error") : h("span", { class: "badge ok" }, "ok");
}

/**
 * A table: columns are [label, cell(row), {numeric}?]; href(row) makes each row a link (focusable, j/k, Enter).
 */
export function table(columns, rows, { href, caption, rowClass } = {}) {
  const head = h("thead", null, h("tr", null, columns.map(([label, , options]) =>
    h("th", { scope: "col", class: options && options.numeric ? "num" : null }, label))));
  const body = h("tbody", null, rows.map((row) => {
    const link = href ? href(row) : null;
    const cells = columns.map(([, cell, options], index) => {
      const content = cell(row);
      const inner = link && index === 0 ? h("a", { href: link, "data-row": "", class: "row-link" }, content) : content;
      return h("td", { class: options && options.numeric ? "num" : null }, inner);
    });
    return h("tr", { class: rowClass ? rowClass(row) : null }, cells);
  }));
  return h("div", { class: "table-wrap" }, h("table", null, caption ? h("caption", null, caption) : null, head, body));
}

/** "Older" link to the next page (next_cursor), and one back to the first page. */
export function pager(view, nextCursor) {
  const query = view.query;
  return h("nav", { class: "pager", "aria-label": "Pages" },
    query.get("cursor") ? h("a", { href: withQuery(query, { cursor: null }) }, "← Newest") : null,
    nextCursor ? h("a", { href: withQuery(query, { cursor: nextCursor }), rel: "next" }, "Older →") : null);
}

function address(endpoint) {
  const wildcard = ["0.0.0.0", "::", ""].includes(endpoint.host);
  const host = wildcard ? location.hostname : endpoint.host;
  return `${host.includes(":") ? `[${host}]` : host}:${endpoint.port}`;
}

/** Where to send data, from GET /api/v1/about: the OTLP endpoints and the proxy's base URLs, with examples. */
export function ingestHelp(about) {
  const endpoints = (about && about.ingest) || [];
  const http = endpoints.find((item) => item.protocol === "otlp_http");
  const grpc = endpoints.find((item) => item.protocol === "otlp_grpc");
  const proxy = endpoints.find((item) => item.protocol === "genai_proxy");
  const steps = [];
  if (proxy) {
    const base = `http://${address(proxy)}`;
    steps.push(h("li", null, h("strong", null, "Call your LLM through the proxy: "), "point the SDK's base URL at it.",
      h("pre", { class: "code" },
        `# OpenAI SDK\nOPENAI_BASE_URL=${base}/v1\n# Anthropic SDK\nANTHROPIC_BASE_URL=${base}\n\n` +
        `client = OpenAI(base_url="${base}/v1")`)));
  }
  if (http || grpc) {
    const lines = [];
    if (http) lines.push(`OTEL_EXPORTER_OTLP_ENDPOINT=http://${address(http)}\nOTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`);
    if (grpc) lines.push(`# or over gRPC\nOTEL_EXPORTER_OTLP_ENDPOINT=http://${address(grpc)}\nOTEL_EXPORTER_OTLP_PROTOCOL=grpc`);
    steps.push(h("li", null, h("strong", null, "Or send traces with OpenTelemetry: "),
      "any SDK or GenAI instrumentation (OpenLLMetry, OpenInference, the OpenTelemetry GenAI instrumentations) exports here.",
      h("pre", { class: "code" }, lines.join("\n\n"))));
  }
  if (!steps.length) steps.push(h("li", null, "This collector has no receiver configured: add the otlp receiver or genai_proxy to its pipeline."));
  return h("ol", { class: "steps" }, steps);
}

/** The empty state of a page: what is missing and what to do next. */
export function empty(title, text, about, { withIngest = true } = {}) {
  return h("section", { class: "panel empty" }, h("h2", null, title), h("p", null, text),
    withIngest ? ingestHelp(about) : null);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

/** A labelled number: the overview's tiles. */
export function tile(label, value, detail, name) {
  return h("div", { class: "tile", dataset: name ? { kpi: name } : undefined },
    h("div", { class: "tile-label" }, label), h("div", { class: "tile-value" }, value),
    detail ? h("div", { class: "tile-detail" }, detail) : null);
}

export function traceUrl(traceId, spanId) {
  return spanId ? `/traces/${traceId}?span=${spanId}` : `/traces/${traceId}`;
}

const CONVERSATION_WINDOW_MS = 31 * DAY - 1000; // the API's max_time_window by default

/** A conversation's page; around: a time (ms or RFC 3339) it had a call at, so the link finds it however old. */
export function conversationUrl(id, around) {
  const path = `/conversations/${encodeURIComponent(id)}`;
  if (around === undefined) return path;
  const at = new Date(around).getTime();
  const end = Math.min(at + CONVERSATION_WINDOW_MS / 2, Date.now());
  const start = end - CONVERSATION_WINDOW_MS;
  return `${path}?start=${new Date(start).toISOString()}&end=${new Date(end).toISOString()}`;
}

/** The services with spans in the window, for the service filter's suggestions ([] when they cannot be had). */
export async function serviceNames(view, params) {
  try {
    const answer = await get("/services", params, { signal: view.signal });
    return answer.services.map((service) => service.name);
  } catch (error) {
    if (view.signal.aborted) throw error; // the view was left: stop here
    return [];
  }
}
