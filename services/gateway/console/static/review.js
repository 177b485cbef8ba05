// Review: what a model abstained on or was unsure of, grouped by meaning into candidate new
// intents (GET /v1/models/{name}/review, the admin scope). Label ticked texts or a whole
// cluster (POST .../review/labels: feedback on every inference of each text), then retrain
// from the feedback (POST /v1/jobs/feedback), followed to the new version's report (job.js).

import { api, part } from "./api.js";
import { h, message, number, percent } from "./dom.js";
import { followJob } from "./job.js";

// What the person labels with: a label (the version's, offered) and whether it is new.
function labelControls(labels) {
  const input = h("input", { id: "review-label", list: "review-labels", autocomplete: "off",
                             placeholder: "a label, e.g. book_restaurant", "aria-label": "Label" });
  const isNew = h("input", { id: "new-label", type: "checkbox" });
  input.addEventListener("input", () => {
    isNew.checked = input.value.trim() !== "" && !labels.includes(input.value.trim());
  });
  const bar = h("div", { class: "card review-bar", id: "review-bar" },
    h("label", {}, "Label ", input),
    h("datalist", { id: "review-labels" }, labels.map((label) => h("option", { value: label }))),
    h("label", { class: "new-label" }, isNew, " new label (the model does not know it yet)"));
  return { bar, input, isNew };
}

function textRow(entry, boxes) {
  const box = h("input", { type: "checkbox", "aria-label": entry.text });
  boxes.set(box, entry);
  const answered = entry.abstained ? "abstained" : `${entry.label} ${percent(entry.probability)}`;
  const times = entry.inference_ids.length > 1 ? ` · ×${entry.inference_ids.length}` : "";
  return h("li", { class: "review-text" },
    h("label", {}, box, " ", h("span", { class: "text" }, entry.text),
      h("span", { class: "muted" }, ` ${answered}${times}`)));
}

function clusterCard(cluster, index, boxes, labelWith) {
  const all = h("button", { type: "button", class: "label-cluster" }, "Label whole cluster");
  const list = h("ul", { class: "review-texts" }, cluster.texts.map((entry) => textRow(entry, boxes)));
  all.addEventListener("click", () => labelWith(cluster.texts, all));
  const nearest = cluster.nearest_label === null ? "" :
    ` · nearest label ${cluster.nearest_label}` +
    (cluster.similarity === null ? "" : ` (${number(cluster.similarity, 2)})`);
  return h("section", { class: "card cluster", "data-cluster": index },
    h("h2", {}, `${cluster.proposed_label} · ${cluster.texts.length} texts · ` +
      `${cluster.inferences} inferences`),
    h("p", { class: "keywords" }, cluster.keywords.map((word) => h("span", { class: "chip" }, word))),
    h("p", { class: "muted nearest" }, `Candidate intent${nearest}`),
    list, all);
}

function listCard(id, title, note, entries, boxes) {
  return h("section", { class: "card cluster unclustered", id },
    h("h2", {}, title), note ? h("p", { class: "muted" }, note) : null,
    h("ul", { class: "review-texts" }, entries.map((entry) => textRow(entry, boxes))));
}

function retrainCard(name) {
  const button = h("button", { type: "button", id: "retrain" }, "Retrain with feedback");
  const area = h("div", { id: "job-area" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    area.replaceChildren(h("p", { class: "muted" }, "Starting…"));
    try {
      await followJob(await api("/v1/jobs/feedback", { method: "POST", body: { name } }), area);
    } catch (error) {
      area.replaceChildren(message(`Not started: ${error.message}`));
    }
    button.disabled = false;
  });
  return h("section", { class: "card", id: "retrain-card" },
    h("p", {}, "Labels go in as feedback. Retraining learns from the production version's " +
      "training data plus all the feedback, and puts the new version in production if it " +
      "is not worse."), button, area);
}

function summary(queue) {
  const read = queue.scanned >= queue.scan_limit
    ? ` Only the newest ${queue.scan_limit.toLocaleString()} inferences were read.` : "";
  return h("p", { class: "muted", id: "review-summary" },
    `${queue.texts} texts (${queue.inferences} inferences) that v${queue.version ?? "–"} ` +
    `abstained on or answered below ${percent(queue.max_confidence)} confidence since ` +
    `${new Date(queue.from).toLocaleDateString()}, with no feedback yet.${read}`);
}

// Which inferences queue: the window (days back from now) and the confidence below which an
// answer counts as unsure; "Show" reloads the queue with them.
function filters(reload) {
  const days = h("select", { id: "review-days", "aria-label": "Window" },
    [["1", "last 24 h"], ["7", "last 7 days"], ["30", "last 30 days"]].map(([value, text]) =>
      h("option", { value, selected: value === "7" }, text)));
  const below = h("input", { id: "review-below", type: "number", min: 0, max: 1, step: "any",
                             value: 0.7, "aria-label": "Confidence below" });
  const form = h("form", { class: "filters", id: "review-filters" },
    h("label", {}, "Inferences of the ", days), " ",
    h("label", {}, " answered below confidence ", below), " ",
    h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    reload(Number(days.value), Number(below.value));
  });
  return form;
}

// The queue of the window and confidence given, as the page's content below the filters.
async function queuePart(name, days, below) {
  const since = new Date(Date.now() - days * 86400e3).toISOString();
  const queue = await api(`/v1/models/${part(name)}/review?from=${encodeURIComponent(since)}` +
                          `&max_confidence=${below}`);
  const head = [summary(queue)];
  if (!queue.clusters.length && !queue.unclustered.length && !queue.near_known.length) {
    return [...head, h("p", { id: "review-empty" }, "Nothing to review: the model was sure " +
      "of every answer in the window, or every unsure one has feedback."), retrainCard(name)];
  }
  const boxes = new Map();  // checkbox -> its text's entry
  const { bar, input, isNew } = labelControls(queue.labels);
  const note = h("div", { id: "label-note" });
  const selected = h("button", { type: "button", id: "label-selected" }, "Label selected");

  const labelWith = async (entries, button) => {
    const label = input.value.trim();
    if (!label) return note.replaceChildren(message("Type a label first."));
    if (!entries.length) return note.replaceChildren(message("Tick the texts to label first."));
    button.disabled = true;
    try {
      const done = await api(`/v1/models/${part(name)}/review/labels`, { method: "POST", body: {
        label, new_label: isNew.checked, inference_ids: entries.flatMap((e) => e.inference_ids) } });
      for (const [box, entry] of boxes) {
        if (entries.includes(entry)) {
          box.closest("li").remove();
          boxes.delete(box);
        }
      }
      document.querySelectorAll("#view .cluster").forEach((card) => {
        if (!card.querySelector("li")) card.remove();
      });
      const missing = done.not_found.length ? ` (${done.not_found.length} not found)` : "";
      note.replaceChildren(message(`Labelled ${done.labelled} inferences “${done.label}”${missing}.`, "ok"));
    } catch (error) {
      note.replaceChildren(message(error.message));
    }
    button.disabled = false;
  };
  selected.addEventListener("click", () => labelWith(
    [...boxes].filter(([box]) => box.checked).map(([, entry]) => entry), selected));
  bar.append(selected, note);

  return [...head, bar,
          h("div", { id: "clusters" },
            queue.clusters.map((cluster, i) => clusterCard(cluster, i, boxes, labelWith)),
            queue.unclustered.length ? listCard("unclustered",
              `${queue.unclustered.length} texts like no other`, "", queue.unclustered, boxes)
              : null,
            queue.near_known.length ? listCard("near-known",
              `${queue.near_known.length} texts like a known label's`, "Nearer the examples " +
              "of a label the model knows than any other text here: unsure answers to " +
              "correct, not new intents.", queue.near_known, boxes) : null),
          retrainCard(name)];
}

export async function reviewPage(name) {
  const content = h("div", { id: "review-queue" }, ...await queuePart(name, 7, 0.7));
  const reload = async (days, below) => {
    content.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      content.replaceChildren(...await queuePart(name, days, below));
    } catch (error) {
      content.replaceChildren(message(error.message));
    }
  };
  return [h("p", {}, h("a", { href: "#/models" }, "← Models")), h("h1", {}, `Review ${name}`),
          filters(reload), content];
}
