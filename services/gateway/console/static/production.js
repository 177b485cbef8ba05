// A model in production (the admin scope): over the last 24 h, 7 or 30 days, the window's
// headline figures (GET /v1/reports/models/{name}) and, per hour or day and per version, the
// same figures as line charts (GET /v1/reports/models/{name}/series).

import { api, part } from "./api.js";
import { h, message, number, percent, when } from "./dom.js";
import { COLOURS, lineChart } from "./timeseries.js";

const WINDOWS = [["24h", "Last 24 h", 1], ["7d", "Last 7 days", 7], ["30d", "Last 30 days", 30]];

function headline(report) {
  const latency = report.latency_ms;
  const drift = report.drift;
  const versions = Object.entries(report.versions).map(([v, n]) => `v${v}: ${n}`).join(" · ");
  const facts = [
    ["requests", report.volume.toLocaleString()],
    ["per version", versions || "–"],
    ["latency p50 / p95 / p99", [latency.p50, latency.p95, latency.p99]
      .map((ms) => (ms == null ? "–" : ms.toFixed(1))).join(" / ") + " ms"],
    ["abstain rate", percent(report.abstain_rate)],
    ["mean confidence", number(report.mean_confidence)],
    ["cache-hit rate", percent(report.cache_hit_rate)],
    [`accuracy on feedback (${report.feedback.rows} rows)`, percent(report.feedback.accuracy)],
    [drift ? `label drift PSI vs v${drift.against_version}` : "label drift PSI",
     drift ? h("span", { class: drift.alarm ? "badge alarm" : "" }, number(drift.psi)) : "–"],
  ];
  return h("dl", { class: "facts", id: "headline" },
    facts.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value))));
}

// One line per version with traffic (all versions together when none had any).
function perVersion(series, pick) {
  const versions = Object.entries(series.versions);
  if (!versions.length) return [{ name: "all versions", values: pick(series.all) }];
  return versions.map(([v, figures], i) => ({ name: `v${v}`, values: pick(figures),
                                               colour: COLOURS[i % COLOURS.length] }));
}

function chartCard(id, title, note, chart) {
  return h("section", { class: "card chart-card", id: `chart-${id}` },
    h("h2", {}, title), note && h("p", { class: "muted" }, note), chart);
}

function charts(series) {
  const x = series.buckets;
  const all = series.all;
  const volume = perVersion(series, (f) => f.volume);
  if (Object.keys(series.versions).length > 1) {
    volume.push({ name: "all", values: all.volume, colour: "#57606a", dash: [4, 4] });
  }
  const alarm = { name: `alarm (${series.drift_alarm})`, reference: true, colour: "#d1242f",
                  dash: [6, 4], values: x.map(() => series.drift_alarm) };
  return h("div", { class: "chart-grid" },
    chartCard("volume", "Requests", `per ${series.step}`, lineChart(x, volume, { format: "count", id: "volume" })),
    chartCard("latency", "Latency", "all versions, estimated from histogram buckets",
      lineChart(x, ["p50", "p95", "p99"].map((p, i) => ({
        name: p, values: all.latency_ms[p], colour: ["#1a7f37", "#bf8700", "#d1242f"][i] })),
      { format: "ms", id: "latency" })),
    chartCard("abstain", "Abstain rate", null,
      lineChart(x, perVersion(series, (f) => f.abstain_rate), { format: "share", id: "abstain" })),
    chartCard("confidence", "Mean confidence", null,
      lineChart(x, perVersion(series, (f) => f.mean_confidence), { range: [0, 1], id: "confidence" })),
    chartCard("cache", "Cache-hit rate", null,
      lineChart(x, perVersion(series, (f) => f.cache_hit_rate),
        { format: "share", range: [0, 1], id: "cache" })),
    chartCard("accuracy", "Accuracy on feedback", "where feedback was sent",
      lineChart(x, perVersion(series, (f) => f.feedback.accuracy),
        { format: "share", range: [0, 1], id: "accuracy" })),
    chartCard("drift", "Label drift (PSI)", "served labels against each version's training labels",
      lineChart(x, [...perVersion(series, (f) => f.drift_psi), alarm], { id: "drift" })));
}

async function windowContent(name, days) {
  const to = new Date();
  const from = new Date(to.getTime() - days * 86400e3);
  const query = `from=${part(from.toISOString())}&to=${part(to.toISOString())}`;
  const [report, series] = await Promise.all([
    api(`/v1/reports/models/${part(name)}?${query}`),
    api(`/v1/reports/models/${part(name)}/series?${query}`)]);
  return [
    h("p", { class: "muted", id: "window" },
      `${when(report.from)} – ${when(report.to)} · charts per ${series.step}`),
    headline(report),
    ...(report.volume ? [] : [h("p", { class: "muted", id: "no-traffic" }, "No request in this window.")]),
    charts(series)];
}

export async function productionPage(name) {
  const body = h("div", { id: "production-window" });
  let chosen = 0;  // the latest choice: a slower earlier one is not shown over it
  const buttons = WINDOWS.map(([key, label, days]) => {
    const button = h("button", { type: "button", class: "window", "data-window": key }, label);
    button.addEventListener("click", async () => {
      const mine = ++chosen;
      buttons.forEach((one) => one.setAttribute("aria-pressed", String(one === button)));
      body.replaceChildren(h("p", { class: "muted" }, "Loading…"));
      try {
        const content = await windowContent(name, days);
        if (mine === chosen) body.replaceChildren(...content);
      } catch (error) {
        if (mine === chosen) body.replaceChildren(message(error.message));
      }
    });
    return button;
  });
  buttons.forEach((one, i) => one.setAttribute("aria-pressed", String(i === 0)));
  body.replaceChildren(...await windowContent(name, WINDOWS[0][2]));
  return [
    h("p", {}, h("a", { href: "#/models" }, "← Models")),
    h("h1", {}, `${name} in production`),
    h("div", { class: "windows", role: "group", "aria-label": "window" }, buttons),
    body];
}
