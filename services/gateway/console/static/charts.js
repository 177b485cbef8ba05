// Charts drawn as SVG by hand (no library): horizontal bars, one row per item, and lines.

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

// A small line chart (for the report's calibration and trade-off curves). `lines`:
// [{key, name, colour, points: [[x, y], ...], note: (point) => text}] with y in [0, 1] and x
// in `x` [from, to]; `diagonal` draws y = x as a reference, `marker` {x, text} a dashed
// vertical line, `counts` [[from, to, n]] grey bars along the foot (how many rows a stretch
// of x holds, the tallest a fifth of the height).
export function lineChart(lines, { x: [from, to], xTitle, yTitle, title, diagonal, marker, counts }) {
  const [width, height, left, top, right, bottom] = [460, 250, 56, 20, 24, 34];
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const px = (value) => left + ((value - from) / (to - from || 1)) * plotWidth;
  const py = (value) => top + (1 - value) * plotHeight;
  const svg = s("svg", { class: "lines", role: "img", "aria-label": title, width, height,
                         viewBox: `0 0 ${width} ${height}`, "font-size": 11 });
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s("line", { x1: left, x2: left + plotWidth, y1: py(tick), y2: py(tick), stroke: "#eaeef2" }),
      s("text", { x: left - 6, y: py(tick) + 4, "text-anchor": "end" }, `${tick * 100}%`));
    const at = from + tick * (to - from);
    svg.append(s("text", { x: px(at), y: height - bottom + 16, "text-anchor": "middle" },
                 Math.abs(to - from) >= 10 ? at.toFixed(0) : at.toFixed(2)));
  }
  svg.append(s("text", { x: left + plotWidth / 2, y: height - 4, "text-anchor": "middle" }, xTitle),
    s("text", { transform: `translate(12 ${top + plotHeight / 2}) rotate(-90)`, "text-anchor": "middle" },
      yTitle));
  const most = Math.max(1, ...(counts ?? []).map(([, , n]) => n));
  for (const [start, end, n] of counts ?? []) {
    const tall = (n / most) * plotHeight * 0.2;
    svg.append(s("rect", { x: px(start) + 1, width: Math.max(1, px(end) - px(start) - 2), y: py(0) - tall,
                           height: tall, fill: "#d8dee4", class: "count" }, s("title", {}, `${n} rows`)));
  }
  if (diagonal) {
    svg.append(s("line", { x1: px(0), y1: py(0), x2: px(1), y2: py(1), stroke: "#8c959f",
                           "stroke-dasharray": "4 3", class: "diagonal" }));
  }
  if (marker) {
    svg.append(s("line", { x1: px(marker.x), x2: px(marker.x), y1: py(0), y2: py(1), stroke: "#1f2328",
                           "stroke-dasharray": "2 2", class: "marker" }),
      s("text", { x: px(marker.x), y: top - 6, "text-anchor": px(marker.x) < left + 60 ? "start"
        : px(marker.x) > left + plotWidth - 60 ? "end" : "middle" }, marker.text));
  }
  for (const line of lines) {
    const group = s("g", { class: `line ${line.key}` },
      s("polyline", { fill: "none", stroke: line.colour, "stroke-width": 2,
                      points: line.points.map(([a, b]) => `${px(a)},${py(b)}`).join(" ") }));
    for (const point of line.points) {
      group.append(s("circle", { cx: px(point[0]), cy: py(point[1]), r: 3, fill: line.colour, class: "point" },
        s("title", {}, line.note?.(point) ?? `${line.name}: ${point[1]}`)));
    }
    svg.append(group);
  }
  return svg;
}
