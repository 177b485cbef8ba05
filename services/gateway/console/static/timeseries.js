// Time-series line charts, drawn by uPlot (vendored: uPlot.esm.js, uPlot.min.css and
// uPlot.LICENSE, MIT): time axis in the browser's time zone, a legend that reads out the
// values under the cursor, and gaps where a bucket has nothing to measure (null).

import uPlot from "./uPlot.esm.js";
import { h } from "./dom.js";

export const COLOURS = ["#2f6f9f", "#d1242f", "#1a7f37", "#bf8700", "#8250df", "#57606a"];
const WIDTH = 460;
const HEIGHT = 200;

// Axis and legend formats: a count, a share in percent, milliseconds, a plain number.
export const FORMATS = {
  count: (v) => (v == null ? "–" : Math.round(v).toLocaleString()),
  share: (v) => (v == null ? "–" : `${(v * 100).toFixed(1)}%`),
  ms: (v) => (v == null ? "–" : `${v.toFixed(v < 10 ? 1 : 0)} ms`),
  plain: (v) => (v == null ? "–" : v.toFixed(3)),
};

// The indices of values with no neighbour (a line cannot show them, so they get a dot).
function isolated(values) {
  const found = values.flatMap((v, i) =>
    v != null && values[i - 1] == null && values[i + 1] == null ? [i] : []);
  return found.length ? found : null;
}

// lineChart(buckets, series, options): one line per series [{name, values, colour, dash}]
// over `buckets` (ISO times); options: format (a FORMATS key), range ([min, max] or null:
// from the data, from 0), id. The chart's element says how many points it drew
// (data-points: non-null values of series that are not `reference` lines).
export function lineChart(buckets, series, { format = "plain", range = null, id } = {}) {
  const xs = buckets.map((iso) => Date.parse(iso) / 1000);
  const show = FORMATS[format];
  const element = h("div", { class: "timeseries", "data-chart": id });
  const points = series.filter((one) => !one.reference)
    .reduce((sum, one) => sum + one.values.filter((v) => v != null).length, 0);
  element.dataset.points = String(points);
  const options = {
    width: WIDTH, height: HEIGHT,
    cursor: { points: { size: 6 } },
    scales: { y: { range: range ? () => range : (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [{}, { size: 70, values: (u, ticks) => ticks.map(show) }],
    series: [{ label: "time" }, ...series.map((one, i) => ({
      label: one.name, stroke: one.colour ?? COLOURS[i % COLOURS.length], width: 2,
      dash: one.dash, value: (u, v) => show(v),
      points: one.reference ? { show: false }
        : { show: xs.length < 60, filter: (u, i, all) => (all ? null : isolated(one.values)) },
    }))],
  };
  // uPlot draws into the element now, detached; the page shows it when every chart is ready.
  new uPlot(options, [xs, ...series.map((one) => one.values)], element);
  return element;
}
