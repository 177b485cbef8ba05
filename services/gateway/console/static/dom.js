// Building the page from API data without ever parsing it as HTML: every string becomes a
// text node, so a label or text from the API cannot inject markup or script.

const SVG = "http://www.w3.org/2000/svg";

function build(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value !== undefined && value !== null && value !== false) element.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// h("a", {href: "#/models"}, "Models"): an HTML element with attributes and children.
export const h = (tag, attributes, ...children) =>
  build(document.createElement(tag), attributes, children);

// s("rect", {x: 0, width: 10}): an SVG element.
export const s = (tag, attributes, ...children) =>
  build(document.createElementNS(SVG, tag), attributes, children);

export function show(...children) {
  document.getElementById("view").replaceChildren(...children);
}

export const message = (text, kind = "error") => h("p", { class: `message ${kind}`, role: "alert" }, text);

export const number = (value, digits = 3) =>
  typeof value === "number" ? value.toFixed(digits) : "–";

export const percent = (value) =>
  typeof value === "number" ? `${(value * 100).toFixed(1)}%` : "–";

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

export function table(headings, rows, attributes = {}) {
  return h("table", attributes,
    h("thead", {}, h("tr", {}, headings.map((text) => h("th", {}, text)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))));
}
