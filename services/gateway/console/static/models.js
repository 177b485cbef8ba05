// Models: every model, its versions, which one is in production or on trial, and each
// version's headline figures (from GET /v1/models, any key); "Try it" for predict keys,
// report links for admin keys.

import { api, part, session } from "./api.js";
import { h, number, percent, table, when } from "./dom.js";

// What a version is doing now: production, the shadow or canary, or its registry status.
function role(model, version) {
  if (version.version === model.production_version) return "production";
  const trial = model.candidate;
  if (trial && trial.version === version.version) return `${trial.mode} ${percent(trial.share)}`;
  return version.status;
}

function versionRow(model, version) {
  const cv = version.metrics?.cv ?? {};
  const threshold = version.metrics?.threshold;
  const report = session.can("admin")
    ? h("a", { href: `#/models/${part(model.name)}/versions/${version.version}`,
               class: "report-link" }, "report")
    : "";
  return [
    `v${version.version}`,
    h("span", { class: `badge ${role(model, version).split(" ")[0]}` }, role(model, version)),
    version.head_type,
    String(version.num_classes),
    String(version.train_rows),
    number(cv.weighted_f1 ?? version.weighted_f1),
    number(cv.macro_f1),
    number(cv.accuracy),
    threshold ? percent(threshold.in_scope_abstain_rate) : "never",
    when(version.created_at),
    report,
  ];
}

function modelCard(model) {
  const versions = [...model.versions].sort((a, b) => b.version - a.version);
  const trial = model.candidate
    ? ` · ${model.candidate.mode} v${model.candidate.version} (${percent(model.candidate.share)})`
    : "";
  const production = model.production_version ? `production v${model.production_version}`
                                              : "no production version";
  return h("section", { class: "card model", "data-model": model.name },
    h("h2", {}, model.name, " ",
      session.can("predict") && h("a", { href: `#/models/${part(model.name)}/try`, class: "try-link" },
                                  "Try it"),
      session.can("admin") && h("a", { href: `#/models/${part(model.name)}/production`,
                                        class: "production-link" }, "Production"),
      session.can("admin") && h("a", { href: `#/models/${part(model.name)}/review`,
                                        class: "review-link" }, "Review")),
    h("p", { class: "muted" }, `${production}${trial} · updated ${when(model.updated_at)}`),
    table(["version", "role", "head", "labels", "rows", "weighted F1", "macro F1", "accuracy",
           "abstains", "created", ""],
          versions.map((version) => versionRow(model, version)), { class: "versions" }));
}

export async function modelsPage() {
  const { data } = await api("/v1/models");
  if (!data.length) {
    return [h("h1", {}, "Models"), h("p", { class: "muted" }, "No model yet: ",
      session.can("admin") ? h("a", { href: "#/train" }, "train one") : "train one with POST /v1/jobs",
      ".")];
  }
  return [h("h1", {}, "Models"), h("div", { id: "models" }, data.map(modelCard))];
}
