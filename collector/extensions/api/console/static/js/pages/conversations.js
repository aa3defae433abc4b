// Conversations: each gen_ai.conversation.id with calls in the window, the latest first.

import { get } from "../api.js";
import { h } from "../dom.js";
import * as fmt from "../format.js";
import * as ui from "../ui.js";

export async function render(view) {
  const { main, query, about, signal } = view;
  const window = ui.timeWindow(query, "24h");
  const services = await ui.serviceNames(view, window.params);
  main.append(ui.heading("Conversations", "Calls that share a gen_ai.conversation.id, across traces"),
    ui.filterForm(view, [{ name: "service", label: "Service", options: services }], { fallbackRange: "24h" }));
  const results = h("section", { "aria-live": "polite" }, ui.loading());
  main.append(results);
  const answer = await get("/conversations", { ...window.params, service: query.get("service"), limit: 50, cursor: query.get("cursor") }, { signal });
  if (!answer.conversations.length) {
    results.replaceChildren(h("section", { class: "panel empty" }, h("h2", null, "No conversations in this window"),
      h("p", null, "A call belongs to a conversation when its span carries gen_ai.conversation.id. ",
        "The proxy sets it on calls that continue an earlier call's messages; instrumented apps set it themselves.")));
    return;
  }
  results.replaceChildren(ui.table([
    ["Conversation", (c) => c.conversation_id],
    ["Last call", (c) => fmt.timeElement(c.last, h)],
    ["Calls", (c) => fmt.count(c.calls), { numeric: true }],
    ["Traces", (c) => fmt.count(c.trace_count), { numeric: true }],
    ["Tokens in / out", (c) => `${fmt.tokens(c.tokens.input)} / ${fmt.tokens(c.tokens.output)}`, { numeric: true }],
    ["Cost", (c) => fmt.cost(c.cost_usd), { numeric: true }],
    ["Errors", (c) => fmt.count(c.errors), { numeric: true }],
    ["Models", (c) => c.models.join(", ")],
    ["Services", (c) => c.services.join(", ")],
  ], answer.conversations, { href: (c) => ui.conversationUrl(c.conversation_id, c.last) }), ui.pager(view, answer.next_cursor));
}
