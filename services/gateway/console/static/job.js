// A training job followed live (GET /v1/jobs/{id} every half second, the admin scope): its
// stage and progress, the problems found in the data, then the new version's report or the
// job's error.

import { api, ApiError, part } from "./api.js";
import { h, message } from "./dom.js";
import { dataProblems } from "./problems.js";

const POLL_MS = 500;
const ENDED = ["succeeded", "failed"];

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follows `job` (the answer of POST /v1/jobs) inside `area` until it ends or the person
// leaves the page; on success opens the new version's report.
export async function followJob(job, area) {
  const stage = h("p", { id: "job-stage" });
  const bar = h("progress", { id: "job-progress", max: 1, value: 0 });
  const stages = h("ol", { id: "stages", class: "stages" });
  const note = h("div", { id: "job-note" });
  const problems = h("div", {}, job.report?.data && dataProblems(job.report.data));
  area.replaceChildren(
    h("section", { class: "card", id: "job" }, h("h2", {}, `Job ${job.id.slice(0, 8)}`),
      stage, bar, stages, note),
    problems);

  const seen = new Set();
  const update = (current) => {
    const what = current.status === current.stage ? current.stage : `${current.status}: ${current.stage}`;
    stage.textContent = `${what} (${Math.round(current.progress * 100)}%)`;
    bar.value = current.progress;
    if (!seen.has(current.stage)) {
      seen.add(current.stage);
      stages.append(h("li", {}, current.stage));
    }
  };
  update(job);
  while (!ENDED.includes(job.status)) {
    await pause(POLL_MS);
    if (!area.isConnected) return;  // the person went to another page
    try {
      job = await api(`/v1/jobs/${part(job.id)}`);
      note.replaceChildren();
    } catch (error) {
      if (!(error instanceof ApiError) || ![0, 502, 503].includes(error.status)) throw error;
      note.replaceChildren(h("p", { class: "muted" }, `${error.message} (still trying)`));
      continue;
    }
    update(job);
  }
  if (job.status === "failed") {
    note.replaceChildren(message(`The job failed: ${job.error}`));
    if (job.report?.data) problems.replaceChildren(dataProblems(job.report.data));
    return;
  }
  location.hash = `#/models/${part(job.model_name)}/versions/${job.model.version}`;
}
