// Try: a text through the production model (POST .../predict, the predict scope), with the
// words that drove the answer (POST .../explain) coloured by how much each one moved it.

import { api, part } from "./api.js";
import { h, message, percent, table } from "./dom.js";

const TOP = 5;

// The text as it was sent, each word tinted: green supports the label, red argues against.
function colouredWords(text, explanation) {
  const strongest = Math.max(...explanation.words.map((word) => Math.abs(word.delta)), 1e-9);
  const out = h("p", { class: "words", id: "words" });
  let at = 0;
  for (const word of explanation.words) {
    out.append(text.slice(at, word.start));
    const sign = word.delta >= 0 ? "pos" : "neg";
    const span = h("span", { class: `word ${sign}`, title: `${word.delta >= 0 ? "+" : ""}${word.delta.toFixed(3)}` },
      text.slice(word.start, word.end));
    const strength = 0.1 + 0.7 * Math.abs(word.delta) / strongest;
    span.style.backgroundColor = sign === "pos"  // CSSOM, allowed by the page's CSP
      ? `rgba(46, 160, 67, ${strength})` : `rgba(207, 34, 46, ${strength})`;
    out.append(span);
    at = word.end;
  }
  out.append(text.slice(at));
  return h("section", { class: "card" },
    h("h2", {}, `Which words moved p(${explanation.explained_label})`),
    out,
    h("p", { class: "muted" }, "Green words support the label, red ones argue against it; " +
      "the stronger the colour, the more leaving the word out changes the probability."));
}

function answer(prediction, version) {
  const label = prediction.abstained
    ? h("span", { class: "label abstained" }, "abstained (out of scope)")
    : h("span", { class: "label" }, prediction.label);
  return h("section", { class: "card", id: "prediction" },
    h("h2", {}, "Answer"),
    h("p", { class: "answer" }, label, ` · ${percent(prediction.probability)} · v${version}`),
    h("p", {}, `abstained: ${prediction.abstained ? "yes" : "no"}`),
    h("ol", { class: "top" }, prediction.top.map((one) => {
      const bar = h("span", { class: "meter" });
      bar.style.width = `${Math.round(one.probability * 200)}px`;
      return h("li", {}, h("span", { class: "top-label" }, one.label), bar, percent(one.probability));
    })));
}

// Several texts at once: one row each, its label (or the abstention) and probability.
function answers(texts, predicted) {
  const rows = predicted.predictions.map((prediction, i) => [
    texts[i], prediction.abstained ? "abstained (out of scope)" : prediction.label,
    percent(prediction.probability)]);
  return h("section", { class: "card", id: "predictions" },
    h("h2", {}, `Answers (v${predicted.version})`), table(["text", "label", "probability"], rows),
    h("p", { class: "muted" }, "One text per line; a single line also shows which words moved it."));
}

export function tryPage(name) {
  const text = h("textarea", { id: "text", rows: 3, required: true, "aria-label": "Text", "data-focus": true,
                               placeholder: "type what a user might write… (one text per line)" });
  const results = h("div", { id: "results" });
  const form = h("form", { class: "card", id: "try" }, text, h("button", { type: "submit" }, "Try"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const lines = text.value.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
    results.replaceChildren(h("p", { class: "muted" }, "Asking the model…"));
    if (lines.length > 1) {
      try {
        const predicted = await api(`/v1/models/${part(name)}/predict`,
                                    { method: "POST", body: { texts: lines, top_k: TOP } });
        results.replaceChildren(answers(lines, predicted));
      } catch (error) {
        results.replaceChildren(message(error.message));
      }
      return;
    }
    const sent = lines[0] ?? text.value;
    const [predicted, explained] = await Promise.allSettled([
      api(`/v1/models/${part(name)}/predict`, { method: "POST", body: { text: sent, top_k: TOP } }),
      api(`/v1/models/${part(name)}/explain`, { method: "POST", body: { text: sent } }),
    ]);
    results.replaceChildren(
      predicted.status === "fulfilled"
        ? answer(predicted.value.predictions[0], predicted.value.version)
        : message(predicted.reason.message),
      explained.status === "fulfilled"
        ? colouredWords(sent, explained.value)
        : message(`No explanation: ${explained.reason.message}`));
  });
  return [h("p", {}, h("a", { href: "#/models" }, "← Models")), h("h1", {}, `Try ${name}`), form, results];
}
