// A version's training report (GET /v1/models/{name}/versions/{v}/report, the admin scope):
// promote or roll back, the data it learned from, per-label scores as sorted bars, the most
// confused pairs and the confusion matrix as a heatmap, what abstaining costs (the trade-off
// curve) and how well its confidence is calibrated (the reliability curve).

import { api, part } from "./api.js";
import { bars, legend, lineChart } from "./charts.js";
import { h, number, percent, table } from "./dom.js";
import { confusionHeatmap } from "./heatmap.js";
import { dataProblems } from "./problems.js";
import { promotionCard } from "./promotion.js";

const TRADEOFF = [
  { key: "in_scope_accuracy", name: "in-scope accuracy", colour: "#2f6f9f" },
  { key: "abstain_rate", name: "in-scope abstains", colour: "#d4a72c" },
  { key: "oos_recall", name: "out-of-scope caught", colour: "#2da44e" },
];

const SCORES = [
  { key: "precision", name: "precision", colour: "#7aa6c2" },
  { key: "recall", name: "recall", colour: "#9cc48b" },
  { key: "f1", name: "F1", colour: "#2f6f9f" },
];

function headline(report) {
  const data = report.data ?? {};
  const facts = [
    ["head", report.head_type],
    ["weighted F1 (CV)", number(report.cv?.weighted_f1)],
    ["macro F1 (CV)", number(report.cv?.macro_f1)],
    ["accuracy (CV)", number(report.cv?.accuracy)],
    ["labels", String(report.per_class?.length ?? "–")],
    ["rows used", `${data.rows_used ?? "–"} of ${data.rows_read ?? "–"} read`],
    ["calibration error (ECE)", number(report.calibration?.ece)],
  ];
  return h("dl", { class: "facts" },
    facts.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value))));
}

function perLabel(report) {
  const rows = [...(report.per_class ?? [])]
    .sort((a, b) => a.f1 - b.f1 || a.label.localeCompare(b.label));
  return h("section", { class: "card", id: "per-label" },
    h("h2", {}, "Per label, worst F1 first"),
    legend(SCORES),
    h("div", { class: "chart" }, bars(rows, SCORES, { title: "precision, recall and F1 per label" })));
}

function confusedPairs(report) {
  const pairs = report.confused_pairs ?? [];
  return h("section", { class: "card", id: "confused" },
    h("h2", {}, "Most confused pairs"),
    pairs.length
      ? table(["true label", "predicted as", "times", "examples"], pairs.map((pair) => [
          pair.true, pair.predicted, String(pair.count),
          h("ul", { class: "examples" }, pair.examples.map((text) => h("li", {}, text))),
        ]))
      : h("p", { class: "muted" }, "No held-out text was mistaken for another label."));
}

function abstaining(report) {
  const chosen = report.threshold;
  const curve = report.tradeoff_curve ?? [];
  const section = h("section", { class: "card", id: "abstain" }, h("h2", {}, "Abstaining"));
  if (!chosen) {
    section.append(h("p", {}, "This version never abstains: it always answers a label."));
    if (curve.length) section.append(tradeoffChart(curve));
    return section;
  }
  const drop = chosen.in_scope_accuracy_without - chosen.in_scope_accuracy;
  section.append(h("p", {},
    `Below a score of ${number(chosen.threshold)} the model abstains (label null). On held-out ` +
    `in-scope texts it abstains on ${percent(chosen.in_scope_abstain_rate)}, which costs ` +
    `${percent(drop)} of accuracy (${percent(chosen.in_scope_accuracy_without)} answering ` +
    `everything, ${percent(chosen.in_scope_accuracy)} with abstentions counted as errors)` +
    (chosen.oos_recall !== undefined
      ? `; it catches ${percent(chosen.oos_recall)} of ${chosen.oos_rows} out-of-scope texts.`
      : ".")));
  if (curve.length) section.append(tradeoffChart(curve, chosen.threshold));
  const nearest = curve.reduce((best, point, i) =>
    Math.abs(point.threshold - chosen.threshold) < Math.abs(curve[best].threshold - chosen.threshold)
      ? i : best, 0);
  const withOos = curve.some((point) => point.oos_recall !== undefined);
  const rows = curve.map((point) => [number(point.threshold), percent(point.in_scope_accuracy),
    percent(point.abstain_rate), ...(withOos ? [percent(point.oos_recall)] : [])]);
  const trade = table(["threshold", "in-scope accuracy", "abstains", ...(withOos ? ["out-of-scope caught"] : [])],
                      rows, { class: "tradeoff" });
  trade.tBodies[0].rows[nearest]?.classList.add("chosen");
  section.append(h("details", {}, h("summary", {}, "Each threshold: what it keeps and costs"), trade));
  return section;
}

// The trade-off curve: per threshold, in-scope accuracy (abstentions count as errors), the
// in-scope abstain rate and, with out-of-scope rows, the share of them caught; the chosen
// threshold marked when there is one.
function tradeoffChart(curve, threshold) {
  const lines = TRADEOFF.filter((line) => curve.every((point) => point[line.key] !== undefined))
    .map((line) => ({ ...line, points: curve.map((point) => [point.threshold, point[line.key]]),
                      note: ([at, value]) => `threshold ${number(at)}: ${line.name} ${percent(value)}` }));
  const xs = curve.map((point) => point.threshold);
  return h("div", { class: "chart", id: "tradeoff-chart" }, legend(lines),
    lineChart(lines, { x: [Math.min(...xs), Math.max(...xs)], xTitle: "abstain below this score",
                       yTitle: "share of texts", title: "the out-of-scope trade-off curve",
                       marker: threshold !== undefined && { x: threshold, text: `chosen ${number(threshold)}` } }));
}

function calibrationCurve(report) {
  const bins = report.calibration?.reliability ?? [];
  if (!bins.length) return null;
  const line = { key: "accuracy", name: "accuracy", colour: "#2f6f9f",
    points: bins.map((bin) => [bin.confidence, bin.accuracy, bin]),
    note: ([, , bin]) => `confidence ${number(bin.from, 1)}–${number(bin.to, 1)}: ${bin.count} texts, ` +
                        `mean confidence ${percent(bin.confidence)}, right ${percent(bin.accuracy)}` };
  return h("section", { class: "card", id: "calibration" }, h("h2", {}, "Calibration"),
    h("p", {}, `When this version says it is p sure, is it right p of the time? Each point is a ` +
      `band of held-out texts by top probability: its mean confidence against how often it was ` +
      `right; on the dashed line they agree. The grey bars: texts per band. Expected ` +
      `calibration error ${number(report.calibration.ece)}.`),
    h("div", { class: "chart" }, lineChart([line], {
      x: [0, 1], xTitle: "confidence (top probability)", yTitle: "right", diagonal: true,
      title: "the reliability curve", counts: bins.map((bin) => [bin.from, bin.to, bin.count]) })));
}

export async function reportPage(name, version) {
  const report = await api(`/v1/models/${part(name)}/versions/${part(version)}/report`);
  return [
    h("p", {}, h("a", { href: "#/models" }, "← Models")),
    h("h1", {}, `${name} v${version}`),
    headline(report),
    await promotionCard(name, Number(version), report.promotion),
    dataProblems(report.data),
    perLabel(report),
    confusedPairs(report),
    confusionHeatmap(report),
    abstaining(report),
    calibrationCurve(report)].filter(Boolean);
}
