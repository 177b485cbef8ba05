// The confusion matrix (report.confusion_matrix {labels, matrix}: rows the true label,
// columns the predicted one) as an SVG heatmap that stays readable at 150 labels: by default
// only the labels of the most confused pairs, the whole matrix on demand, in an order that
// puts labels mistaken for each other side by side. Mistakes are red, the diagonal a muted
// blue. Pointing at a cell (or moving to it with the arrow keys) says "true X predicted as Y:
// n"; clicking it (or Enter) shows that pair's example texts when the report keeps them.

import { h, s } from "./dom.js";

const PAIRS = 20;      // confused pairs shown by default
const LONGEST = 28;    // characters of a label shown (the readout has them whole)

// Every mistaken (true, predicted) pair of indices with its count, most frequent first.
export function mistakes(matrix) {
  const found = [];
  matrix.forEach((row, i) => row.forEach((n, j) => { if (i !== j && n > 0) found.push([i, j, n]); }));
  return found.sort((a, b) => b[2] - a[2] || a[0] - b[0] || a[1] - b[1]);
}

// `chosen` (label indices) in an order where confused labels sit together: a greedy chain
// from the most confused label, each step to the label most confused with the last one
// placed (else with any placed one, else the most confused left). O(n²): 150 labels in a few ms.
export function seriate(matrix, chosen) {
  const both = (a, b) => matrix[a][b] + matrix[b][a];
  const confusion = (a) => chosen.reduce((sum, b) => sum + (a === b ? 0 : both(a, b)), 0);
  const total = new Map(chosen.map((a) => [a, confusion(a)]));
  const left = new Set(chosen);
  const toPlaced = new Map(chosen.map((a) => [a, 0]));
  const order = [];
  const best = (score) => [...left].reduce((top, a) => (score(a) > score(top) ? a : top));
  while (left.size) {
    const last = order[order.length - 1];
    let next = last === undefined ? undefined : best((a) => both(last, a));
    if (next === undefined || both(last, next) === 0) next = best((a) => toPlaced.get(a));
    if (toPlaced.get(next) === 0) next = best((a) => total.get(a));
    order.push(next);
    left.delete(next);
    for (const a of left) toPlaced.set(a, Math.max(toPlaced.get(a), both(next, a)));
  }
  return order;
}

const short = (label, max) => (label.length > max ? `${label.slice(0, max - 1)}…` : label);
const rowTotal = (matrix, i) => matrix[i].reduce((a, b) => a + b, 0);

// The SVG of the rows and columns `order` (label indices); `point(i, j)` when the cursor is
// on a cell, `pick(i, j)` when it is chosen; `worst`: the largest count off the diagonal.
function draw({ labels, matrix, order, worst, point, pick }) {
  const n = order.length;
  const cell = Math.max(4, Math.min(22, Math.floor(660 / n)));
  const named = cell >= 9;  // below that, the labels are in the readout only
  // Room for the row labels and, rotated, the column labels (11px text: ~6.5px a character).
  const longest = Math.min(LONGEST, Math.max(...order.map((i) => labels[i].length)));
  const gutter = named ? 12 + 6.5 * longest : 8;
  const size = n * cell;
  const svg = s("svg", { class: "heatmap", tabindex: 0, width: gutter + size + 4,
    height: gutter + size + 4, viewBox: `0 0 ${gutter + size + 4} ${gutter + size + 4}`,
    "aria-label": `confusion matrix of ${n} labels; arrow keys move between cells` });
  const cells = s("g", { transform: `translate(${gutter} ${gutter})` },
    s("rect", { width: size, height: size, fill: "#fafbfc", stroke: "#d0d7de" }));
  order.forEach((i, row) => order.forEach((j, column) => {
    const count = matrix[i][j];
    if (!count) return;
    const mistake = i !== j;
    const strength = mistake ? 0.2 + 0.8 * Math.sqrt(count / worst)
                             : 0.1 + 0.25 * count / Math.max(1, rowTotal(matrix, i));
    cells.append(s("rect", { x: column * cell, y: row * cell, width: cell, height: cell,
      class: mistake ? "cell mistake" : "cell diagonal", "data-true": labels[i],
      "data-predicted": labels[j], fill: mistake ? "#c0392b" : "#2f6f9f",
      "fill-opacity": strength.toFixed(3) }));
  }));
  const cursor = s("rect", { class: "cursor", width: cell, height: cell, fill: "none",
                             stroke: "#1f2328", "stroke-width": 1.5, visibility: "hidden" });
  cells.append(cursor);
  if (named) {
    order.forEach((i, k) => {
      const middle = k * cell + cell / 2 + 4;
      cells.append(s("text", { x: -6, y: middle, "text-anchor": "end", "font-size": 11,
                               class: "row", "data-label": labels[i] }, short(labels[i], LONGEST)));
      cells.append(s("text", { transform: `translate(${middle} -6) rotate(-90)`, "font-size": 11,
                               class: "column" }, short(labels[i], LONGEST)));
    });
  }
  svg.append(cells);

  let at = null;  // [row, column] of the cursor, in `order` positions
  const move = (row, column) => {
    at = [Math.max(0, Math.min(n - 1, row)), Math.max(0, Math.min(n - 1, column))];
    cursor.setAttribute("x", at[1] * cell);
    cursor.setAttribute("y", at[0] * cell);
    cursor.setAttribute("visibility", "visible");
    point(order[at[0]], order[at[1]]);
  };
  const under = (event) => {
    const box = svg.getBoundingClientRect();
    const row = Math.floor((event.clientY - box.top - gutter) / cell);
    const column = Math.floor((event.clientX - box.left - gutter) / cell);
    return row >= 0 && row < n && column >= 0 && column < n ? [row, column] : null;
  };
  svg.addEventListener("mousemove", (event) => { const found = under(event); if (found) move(...found); });
  svg.addEventListener("click", (event) => {
    const found = under(event);
    if (found) { move(...found); pick(order[found[0]], order[found[1]]); }
  });
  const steps = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  svg.addEventListener("keydown", (event) => {
    if (steps[event.key]) {
      event.preventDefault();
      if (at) move(at[0] + steps[event.key][0], at[1] + steps[event.key][1]);
      else move(0, 0);
    } else if ((event.key === "Enter" || event.key === " ") && at) {
      event.preventDefault();
      pick(order[at[0]], order[at[1]]);
    }
  });
  return svg;
}

// What the report keeps of a pair's mistakes ({true, predicted, count, examples}), by pair.
const key = (truth, predicted) => `${truth}\u0000${predicted}`;

export function confusionHeatmap(report) {
  const { labels = [], matrix = [] } = report.confusion_matrix ?? {};
  if (!labels.length) return null;
  const kept = new Map((report.confused_pairs ?? []).map((pair) => [key(pair.true, pair.predicted), pair]));
  const pairs = mistakes(matrix);
  const worst = pairs.length ? pairs[0][2] : 1;
  const readout = h("p", { id: "heatmap-cell", "aria-live": "polite" },
                    "Point at a cell (or focus the matrix and use the arrow keys).");
  const chosen = h("div", { id: "heatmap-pair" });
  const count = h("input", { id: "heatmap-pairs", type: "number", min: 1, max: Math.max(1, pairs.length),
                             value: Math.min(PAIRS, Math.max(1, pairs.length)), "aria-label": "pairs" });
  const whole = h("button", { type: "button", id: "heatmap-whole", class: "link" });
  const chart = h("div", { class: "chart" });
  let showWhole = !pairs.length;

  const point = (i, j) => {
    readout.textContent = `true ${labels[i]} predicted as ${labels[j]}: ${matrix[i][j]}` +
                          (i === j ? " (right)" : "");
  };
  const pick = (i, j) => {
    const pair = kept.get(key(labels[i], labels[j]));
    const said = i === j ? "The diagonal: held-out texts answered right."
      : !matrix[i][j] ? "Never: no held-out text of this label was taken for that one."
        : !pair && `The report keeps example texts for its ${kept.size} most confused pairs only.`;
    chosen.replaceChildren(
      h("h3", {}, `${labels[i]} taken for ${labels[j]}: ${matrix[i][j]} of ${rowTotal(matrix, i)}`),
      said ? h("p", { class: "muted" }, said)
        : h("ul", { class: "examples" }, pair.examples.map((text) => h("li", {}, text))));
  };
  const render = () => {
    const top = pairs.slice(0, Math.max(1, Number(count.value) || PAIRS));
    const subset = showWhole ? labels.map((_, i) => i) : [...new Set(top.flatMap(([i, j]) => [i, j]))];
    chart.replaceChildren(draw({ labels, matrix, order: seriate(matrix, subset), worst, point, pick }));
    whole.textContent = showWhole ? "Show the most confused pairs only"
                                  : `Show the whole matrix (${labels.length} labels)`;
    count.disabled = showWhole;
  };
  count.addEventListener("input", render);
  whole.addEventListener("click", () => { showWhole = !showWhole; render(); });
  render();
  return h("section", { class: "card", id: "heatmap" }, h("h2", {}, "Confusion matrix"),
    h("p", { class: "muted" }, pairs.length
      ? `${pairs.length} kinds of mistake on held-out texts. Rows: the true label; columns: ` +
        "what it was taken for; labels often confused sit side by side."
      : "No held-out text was taken for another label."),
    pairs.length > 0 && h("p", {}, h("label", {}, "The labels of the ", count, " most confused pairs"),
                          " · ", whole),
    chart, readout, chosen);
}
