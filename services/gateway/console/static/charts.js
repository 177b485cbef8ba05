// Charts drawn as SVG by hand (no library): horizontal bars, one row per item.

import { h, s } from "./dom.js";

const ROW = 20;        // pixels per row
const LABEL = 220;     // width of the label column
const BARS = 420;      // width of a bar at 1.0
const VALUE = 60;      // width of the value column

// bars(rows, series): one row per item of `rows` (in the order given), one thin bar per
// series [{key, name, colour}] with values in [0, 1]; the last series' value is written out.
export function bars(rows, series, { title = "" } = {}) {
  const band = (ROW - 4) / series.length;
  const svg = s("svg", {
    class: "bars", role: "img", "aria-label": title,
    width: LABEL + BARS + VALUE, height: rows.length * ROW,
    viewBox: `0 0 ${LABEL + BARS + VALUE} ${rows.length * ROW}`,
  });
  rows.forEach((row, i) => {
    const y = i * ROW;
    const group = s("g", { class: "row", "data-label": row.label },
      s("title", {}, `${row.label}: ` +
        series.map((one) => `${one.name} ${row[one.key].toFixed(3)}`).join(", ")),
      s("text", { x: LABEL - 8, y: y + ROW / 2 + 4, "text-anchor": "end", class: "label" },
        row.label.length > 30 ? `${row.label.slice(0, 29)}…` : row.label),
      s("rect", { x: LABEL, y: y + 1, width: BARS, height: ROW - 2, class: "track" }));
    series.forEach((one, j) => group.append(s("rect", {
      x: LABEL, y: y + 2 + j * band, height: band - 1, fill: one.colour,
      width: Math.max(0, Math.min(1, row[one.key])) * BARS, class: `bar ${one.key}`,
    })));
    const last = series[series.length - 1];
    group.append(s("text", { x: LABEL + BARS + 6, y: y + ROW / 2 + 4, class: "value" },
      row[last.key].toFixed(3)));
    svg.append(group);
  });
  return svg;
}

export function legend(series) {
  return h("p", { class: "legend" }, series.map((one) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = one.colour;  // CSSOM, allowed by the page's CSP
    return h("span", {}, swatch, one.name);
  }));
}
