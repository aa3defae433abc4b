// The console's entry point: the router (every view has its own URL, so any page can be linked), the
// header with the key in use, keyboard shortcuts, and the page state the tests and the benchmark wait on
// (<html data-state="loading|ready|error">).

import { ApiError, get } from "./api.js";
import { fill, h } from "./dom.js";

const ROUTES = [
  [/^\/$/, "overview", "./pages/overview.js"],
  [/^\/traces$/, "traces", "./pages/traces.js"],
  [/^\/traces\/([0-9a-fA-F]{32})$/, "traces", "./pages/trace.js"],
  [/^\/traces\/([0-9a-fA-F]{32})\/graph$/, "traces", "./pages/graph.js"],
  [/^\/conversations$/, "conversations", "./pages/conversations.js"],
  [/^\/conversations\/(.+)$/, "conversations", "./pages/conversation.js"],
  [/^\/findings$/, "findings", "./pages/findings.js"],
  [/^\/evaluations$/, "evaluations", "./pages/evaluations.js"],
  [/^\/live$/, "live", "./pages/live.js"],
  [/^\/key$/, "key", "./pages/key.js"],
];

const main = document.getElementById("main");
let current = null; // {controller, cleanup}
let about = null; // GET /api/v1/about for the key in use

function setState(state) {
  document.documentElement.dataset.state = state;
  // The moment a view has its data on screen, for the benchmark (benchmarks/console.py) to read.
  if (state === "ready") performance.mark("console-ready");
}

/** Who the console is reading as; null until known. Pages call refreshAbout() after the key changes. */
export async function refreshAbout(signal) {
  try {
    about = await get("/about", undefined, { signal });
  } catch (error) {
    about = null;
    throw error;
  } finally {
    showWho();
  }
  return about;
}

function showWho() {
  const who = document.getElementById("who");
  if (!about) {
    fill(who, "Key");
    return;
  }
  const key = about.key;
  const label = key.anonymous ? "open (no key)" : `${key.role}${key.tenant ? " · " + key.tenant : ""}`;
  fill(who, h("span", { class: "who-label" }, label));
  who.title = key.anonymous
    ? "Reading without a key: this collector listens on loopback and no API key exists"
    : `Key ${key.id}: ${key.role}, ${key.tenant ? "tenant " + key.tenant + " only" : "every tenant"}`;
}

export function navigate(url, { replace = false } = {}) {
  const target = new URL(url, location.href);
  if (target.href !== location.href) {
    history[replace ? "replaceState" : "pushState"](null, "", target.pathname + target.search + target.hash);
  }
  render();
}

function showError(error) {
  const message = error instanceof ApiError ? `${error.message} (${error.code}, HTTP ${error.status})` : String(error);
  fill(main, h("section", { class: "panel error", role: "alert" }, h("h1", null, "Something went wrong"), h("p", null, message),
    h("p", null, h("a", { href: location.pathname + location.search }, "Try again"))));
}

async function render() {
  if (current) {
    current.controller.abort();
    if (current.cleanup) current.cleanup();
  }
  const controller = new AbortController();
  current = { controller, cleanup: null };
  setState("loading");
  const path = location.pathname;
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (route && link.dataset.nav === route[1]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!route) {
    document.title = "Not found · genai-collector";
    fill(main, h("section", { class: "panel" }, h("h1", null, "No such page"), h("p", null, h("a", { href: "/" }, "Overview"))));
    setState("ready");
    return;
  }
  const [pattern, , module] = route;
  const params = path.match(pattern).slice(1).map(decodeURIComponent);
  try {
    if (!about && route[1] !== "key") await refreshAbout(controller.signal);
    const page = await import(module);
    // Another view may have started while this one waited: then this one must not touch the page.
    if (controller.signal.aborted) return;
    const view = {
      main, params, query: new URLSearchParams(location.search), about, signal: controller.signal, navigate,
      refreshAbout,
    };
    fill(main);
    const cleanup = await page.render(view);
    if (controller.signal.aborted) return;
    current.cleanup = typeof cleanup === "function" ? cleanup : null;
    setState("ready");
  } catch (error) {
    if (controller.signal.aborted || error.name === "AbortError") return;
    if (error instanceof ApiError && error.status === 401 && route[1] !== "key") {
      navigate(`/key?next=${encodeURIComponent(path + location.search)}`, { replace: true });
      return;
    }
    showError(error);
    setState("error");
  }
}

// Links inside the app change the view without reloading the page.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  navigate(url.href);
});

window.addEventListener("popstate", render);

// Keyboard: g+letter goes to a page, / focuses the first filter, j/k move between rows, ? shows help.
const JUMPS = { o: "/", t: "/traces", c: "/conversations", f: "/findings", e: "/evaluations", l: "/live" };
let pendingG = false;
document.addEventListener("keydown", (event) => {
  if (event.metaKey || event.ctrlKey || event.altKey) return;
  const target = event.target;
  if (target.closest && target.closest("input, textarea, select, [contenteditable]")) {
    if (event.key === "Escape") target.blur();
    return;
  }
  if (pendingG) {
    pendingG = false;
    if (JUMPS[event.key]) {
      event.preventDefault();
      navigate(JUMPS[event.key]);
    }
    return;
  }
  if (event.key === "g") {
    pendingG = true;
    return;
  }
  if (event.key === "?") {
    document.getElementById("help").showModal();
  } else if (event.key === "/") {
    const first = main.querySelector("form input, form select");
    if (first) {
      event.preventDefault();
      first.focus();
    }
  } else if (event.key === "j" || event.key === "k") {
    const rows = [...main.querySelectorAll("[data-row]")];
    if (!rows.length) return;
    event.preventDefault();
    const at = rows.indexOf(document.activeElement);
    const next = at < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, at + (event.key === "j" ? 1 : -1)));
    rows[next].focus();
    rows[next].scrollIntoView({ block: "nearest" });
  }
});

render();
