// Promotion, from a version's report: which version serves, what the trainer decided when
// this one was trained, and "Promote" (a version not in production) or "Roll back" (the one in
// production) through POST /v1/models/{name}/promote and .../rollback (the admin scope),
// each after a confirmation, the move then shown as the alias history records it.

import { api, part, session } from "./api.js";
import { h, message } from "./dom.js";

// An alias move ({model, from_version, to_version, action}) in words.
function moved(move) {
  if (move.action === "unchanged") return `v${move.to_version} is already in production; nothing changed.`;
  return `production: ${move.from_version ? `v${move.from_version}` : "none"} → v${move.to_version} ` +
         `(${move.action} by ${session.me().name})`;
}

// The model's state ({production_version}) from GET /v1/models/{name} (any key).
const current = (name) => api(`/v1/models/${part(name)}`);

export async function promotionCard(name, version, promotion) {
  const card = h("section", { class: "card", id: "production" });
  const result = h("div", { id: "move" });

  const render = (model) => {
    const serving = model.production_version;
    const live = serving === version;
    const actions = [!live && ["promote", "Promote", `Put v${version} in production` +
                       (serving ? ` instead of v${serving}` : "") + "?", { version }],
                     live && ["rollback", "Roll back", `Move production back from ` +
                       `v${serving} to the version before it?`, {}]].filter(Boolean);
    card.replaceChildren(h("h2", {}, "Production"),
      h("p", { id: "serving" }, live ? `v${version} is in production.`
        : serving ? `v${serving} is in production, not v${version}.` : "No version is in production."),
      promotion && h("p", { class: "muted" }, `When trained: ${promotion.reason}.`),
      h("p", {}, actions.map(([action, text, question, body]) => {
        const button = h("button", { type: "button", id: action }, text);
        button.addEventListener("click", () => confirm(action, text, question, body));
        return button;
      })),
      result);
  };

  const confirm = (action, text, question, body) => {
    const reason = h("input", { id: "reason", maxlength: 500, placeholder: "why (optional, kept in the history)",
                                "aria-label": "Reason" });
    const yes = h("button", { type: "submit", id: "confirm" }, `Yes, ${text.toLowerCase()}`);
    const no = h("button", { type: "button", class: "link", id: "cancel" }, "Cancel");
    const form = h("form", { class: "confirm" }, h("p", {}, question), reason, yes, " ", no);
    no.addEventListener("click", () => result.replaceChildren());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      yes.disabled = true;
      try {
        const move = await api(`/v1/models/${part(name)}/${action}`,
                               { method: "POST", body: { ...body, reason: reason.value } });
        render(await current(name));
        result.replaceChildren(h("p", { class: "message ok", role: "status" }, moved(move)));
      } catch (error) {
        result.replaceChildren(message(error.message));
      }
    });
    result.replaceChildren(form);
    reason.focus();
  };

  render(await current(name));
  return card;
}
