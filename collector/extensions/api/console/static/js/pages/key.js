// The key the console reads with: enter it, keep it for this tab or on this browser, forget it.

import { ApiError, get } from "../api.js";
import { fill, h } from "../dom.js";
import { currentKey, forgetKey, isRemembered, saveKey } from "../keystore.js";
import * as ui from "../ui.js";

function safeNext(query) {
  const next = query.get("next") || "/";
  // Only a path of this app: never another origin.
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export async function render(view) {
  const { main, query, signal } = view;
  let about = null;
  let problem = null;
  try {
    about = await view.refreshAbout(signal);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    problem = currentKey() ? "The key stored in this browser is not accepted (revoked, or for another collector)." : null;
  }
  const input = h("input", { id: "api-key", name: "key", type: "password", autocomplete: "off", spellcheck: "false", required: true, placeholder: "gca_…" });
  const remember = h("input", { id: "remember", name: "remember", type: "checkbox", checked: isRemembered() });
  const message = h("p", { class: "form-message", role: "alert" }, problem || "");
  const form = h("form", { class: "key-form" },
    h("label", { class: "field wide", for: "api-key" }, h("span", null, "API key"), input),
    h("label", { class: "check", for: "remember" }, remember, " Remember on this browser (otherwise only until this tab closes)"),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Use this key"),
      currentKey() ? h("button", { type: "button", class: "subtle", onclick: () => { forgetKey(); view.navigate("/key", { replace: true }); } }, "Forget the stored key") : null),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    try {
      await get("/about", undefined, { key });
    } catch (error) {
      fill(message, error.status === 401 ? "This key is not accepted here." : `Could not check the key: ${error.message}`);
      return;
    }
    saveKey(key, remember.checked);
    await view.refreshAbout();
    view.navigate(safeNext(query));
  });
  const current = about
    ? h("p", { class: "sub" }, about.key.anonymous
      ? "No key is needed right now: this collector listens on loopback and no API key exists. Anyone on this machine can read."
      : `Reading with key ${about.key.id}: ${about.key.role}, ${about.key.tenant ? `tenant ${about.key.tenant} only` : "every tenant"}.`)
    : null;
  main.append(ui.heading("API key", "The console sends it with every request to this collector's API"), current, form,
    h("section", { class: "panel" }, h("h2", null, "Getting a key"),
      h("pre", { class: "code" }, "genai-collector keys create --role viewer                 # every tenant\ngenai-collector keys create --role viewer --tenant acme   # acme only"),
      h("p", null, "A key bound to a tenant sees only that tenant's traces, calls, findings and live events.")));
  if (!about) input.focus();
}
