// Building the page: every element is made with createElement and every piece of text is a text node.
// Nothing here (nor anywhere in the app) turns a string into HTML: stored content (prompts, replies, tool
// arguments, attribute values, names) can only ever be shown as text. The Content-Security-Policy's
// Trusted Types requirement makes the browser refuse any attempt to do otherwise.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(element, attributes) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name === "style") {
      // CSSOM properties, never a style attribute string (the policy allows no inline style).
      Object.assign(element.style, value);
    } else if (name === "text") {
      element.textContent = String(value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h("a", {href: "/traces"}, "Traces"). Strings among the children become text nodes. */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  apply(element, attributes);
  append(element, children);
  return element;
}

/** An SVG element, as h. */
export function s(tag, attributes, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  apply(element, attributes);
  append(element, children);
  return element;
}

/** Replace the children of element with these. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A definition list of [term, description] pairs, skipping empty descriptions. */
export function facts(pairs, className = "facts") {
  return h("dl", { class: className }, pairs
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
}
