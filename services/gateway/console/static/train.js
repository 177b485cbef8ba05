// Train: a CSV file and a model name. The first rows and the detected columns are shown
// before anything is sent (read in the browser, csv.js); "Start" posts the file to
// POST /v1/jobs (multipart, the admin scope) and follows the job (job.js).

import { api } from "./api.js";
import { preview } from "./csv.js";
import { h, message, table } from "./dom.js";
import { followJob } from "./job.js";

const MODEL_NAME = "[a-z0-9][a-z0-9_.\\-]{0,99}";

function choice(id, text, options, chosen) {
  const select = h("select", { id, name: id },
    options.map(([value, words]) => h("option", { value }, words)));
  select.value = chosen;
  return h("label", {}, text, select);
}

// The column pickers, set to the columns named text and label when the file has them.
function columnChoices(columns) {
  const named = (wanted, fallback) =>
    columns.find((name) => name.toLowerCase() === wanted) ?? columns[fallback] ?? columns[0];
  const options = columns.map((name) => [name, name]);
  return h("div", { class: "columns" },
    choice("text_column", "Text column", options, named("text", 0)),
    choice("label_column", "Label column", options, named("label", 1)));
}

function previewOf(file, found) {
  const separator = found.delimiter === "\t" ? "tab" : `“${found.delimiter}”`;
  return h("div", { id: "preview" },
    h("p", {}, `${file.name}: ${found.columns.length} columns (${found.columns.join(", ")}), ` +
      `separated by ${separator}. The first rows:`),
    table(found.columns, found.rows.map((row) => found.columns.map((_, i) => row[i] ?? ""))),
    columnChoices(found.columns));
}

const OPTIONS = () => h("details", { class: "options" }, h("summary", {}, "Options"),
  choice("head", "Head", [["auto", "auto: the best of those tried"], ["logreg", "logistic regression"],
                          ["mlp", "small neural network (MLP)"], ["xgboost", "XGBoost"]], "auto"),
  choice("cv_folds", "Cross-validation folds", [2, 3, 5, 10].map((n) => [n, String(n)]), "5"),
  choice("promote", "Put in production", [["if_not_worse", "if not worse than production"],
                                           ["always", "always"], ["never", "never (promote by hand)"]],
         "if_not_worse"));

export function trainPage() {
  const file = h("input", { id: "file", name: "file", type: "file", accept: ".csv,text/csv", required: true,
                            "aria-label": "CSV file" });
  const name = h("input", { id: "name", name: "name", required: true, pattern: MODEL_NAME,
                            placeholder: "model name, e.g. intents", autocomplete: "off",
                            "aria-label": "Model name" });
  const found = h("div", { id: "found" });
  const start = h("button", { type: "submit", disabled: true }, "Start training");
  const form = h("form", { class: "card", id: "train" },
    h("p", { class: "muted" }, "A CSV with a column of texts and a column of labels (UTF-8)."),
    file, found, h("label", {}, "Model name", name), OPTIONS(), start);
  const job = h("div", { id: "job-area" });

  file.addEventListener("change", async () => {
    start.disabled = true;
    found.replaceChildren();
    if (!file.files.length) return;
    try {
      found.replaceChildren(previewOf(file.files[0], await preview(file.files[0])));
      start.disabled = false;
    } catch (error) {
      found.replaceChildren(message(error.message));
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    start.disabled = true;
    job.replaceChildren(h("p", { class: "muted" }, "Uploading…"));
    let created;
    try {
      created = await api("/v1/jobs", { method: "POST", body: new FormData(form) });
    } catch (error) {  // the trainer checks the file before queuing a job: say why not
      job.replaceChildren(message(`Not started: ${error.message}`));
      start.disabled = false;
      return;
    }
    try {
      await followJob(created, job);
    } catch (error) {
      job.append(message(error.message));
    }
    start.disabled = false;
  });
  return [h("p", {}, h("a", { href: "#/models" }, "← Models")), h("h1", {}, "Train a model"), form, job];
}
