// The API key the console sends with every request (Authorization: Bearer <key>).
// Kept in sessionStorage (gone when the tab closes) unless the user asks to remember it on this browser
// (localStorage). Either way it is readable by scripts of this origin only; the Content-Security-Policy
// lets no other script run here. docs/security.md weighs the choice.

const NAME = "genai-collector.api-key";

export function currentKey() {
  return sessionStorage.getItem(NAME) || localStorage.getItem(NAME) || "";
}

export function isRemembered() {
  return Boolean(localStorage.getItem(NAME));
}

export function saveKey(key, remember) {
  forgetKey();
  (remember ? localStorage : sessionStorage).setItem(NAME, key);
}

export function forgetKey() {
  sessionStorage.removeItem(NAME);
  localStorage.removeItem(NAME);
}
