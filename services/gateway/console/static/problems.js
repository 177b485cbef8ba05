// What the trainer found wrong in the data (a job's or a version's report, section "data"):
// rows dropped and why, with examples; labels the head will not know; warnings.

import { h } from "./dom.js";

// One example of a dropped row, as the trainer recorded it ({line, text, label, ...}).
function example(fields) {
  return Object.entries(fields).map(([name, value]) =>
    `${name} ${Array.isArray(value) ? value.join(", ") : typeof value === "string" ? `“${value}”` : value}`)
    .join(" · ");
}

export function dataProblems(data) {
  const dropped = Object.entries(data?.dropped ?? {});
  const labels = Object.entries(data?.dropped_labels ?? {});
  const warnings = data?.warnings ?? [];
  const section = h("section", { class: "card", id: "data-problems" }, h("h2", {}, "The data"),
    h("p", {}, `${data?.rows_used ?? "–"} of ${data?.rows_read ?? "–"} rows used, ` +
      `${data?.classes ?? "–"} labels, from the columns “${data?.text_column ?? "text"}” ` +
      `and “${data?.label_column ?? "label"}”.`));
  if (!dropped.length && !labels.length && !warnings.length) {
    section.append(h("p", { class: "muted" }, "No row was dropped."));
    return section;
  }
  if (dropped.length) {
    section.append(h("ul", { class: "dropped" }, dropped.map(([reason, info]) =>
      h("li", { "data-reason": reason },
        h("strong", {}, `${info.rows} ${info.rows === 1 ? "row" : "rows"} dropped: ${reason.replaceAll("_", " ")}`),
        h("ul", { class: "examples" }, info.examples.map((one) => h("li", {}, example(one))))))));
  }
  if (labels.length) {
    section.append(h("h3", {}, "Labels the model will not know"),
      h("ul", { class: "dropped-labels" }, labels.map(([label, why]) =>
        h("li", {}, h("strong", {}, label), `: ${why}`))));
  }
  warnings.forEach((text) => section.append(h("p", { class: "message warning" }, text)));
  return section;
}
