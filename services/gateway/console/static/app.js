// The console's pages as #/ routes, the navigation, and signing in with an API key.

import { api, ApiError, session } from "./api.js";
import { h, message, show } from "./dom.js";
import { modelsPage } from "./models.js";
import { productionPage } from "./production.js";
import { reportPage } from "./report.js";
import { reviewPage } from "./review.js";
import { trainPage } from "./train.js";
import { tryPage } from "./try.js";

// Each route: a pattern over the hash, the scope it needs (null: any key), and the page.
const ROUTES = [
  [/^#\/models$/, null, () => modelsPage()],
  [/^#\/models\/([^/]+)\/versions\/(\d+)$/, "admin", ([name, version]) => reportPage(name, version)],
  [/^#\/models\/([^/]+)\/try$/, "predict", ([name]) => tryPage(name)],
  [/^#\/models\/([^/]+)\/production$/, "admin", ([name]) => productionPage(name)],
  [/^#\/models\/([^/]+)\/review$/, "admin", ([name]) => reviewPage(name)],
  [/^#\/train$/, "admin", () => trainPage()],
];

function signInPage(note) {
  const key = h("input", { id: "key", type: "password", autocomplete: "off", required: true,
                           placeholder: "ph_…", "aria-label": "API key" });
  const status = h("div", { id: "signin-status" }, note && message(note));
  const form = h("form", { id: "signin", class: "card" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "With an API key: the one polyhead up prints, or ",
      h("code", {}, "polyhead keys create NAME --scopes predict,admin"),
      ". It stays in this browser tab only."),
    key, h("button", { type: "submit" }, "Sign in"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren(h("p", { class: "muted" }, "Checking the key…"));
    try {
      const me = await api("/v1/me", { key: key.value.trim() });
      session.start(key.value.trim(), me);
      location.hash = "#/models";
    } catch (error) {
      status.replaceChildren(message(error.message));
    }
  });
  show(form);
  key.focus();
}

function navigation() {
  const me = session.me();
  const nav = document.getElementById("nav");
  if (!me) return nav.replaceChildren();
  const signOut = h("button", { id: "signout", class: "link" }, "Sign out");
  signOut.addEventListener("click", () => {
    session.end();
    location.hash = "#/signin";
  });
  nav.replaceChildren(
    h("a", { href: "#/models" }, "Models"),
    session.can("admin") && h("a", { href: "#/train", id: "train-link" }, "Train"),
    h("span", { class: "muted", id: "whoami" }, `${me.name} (${me.scopes.join(", ")})`),
    signOut);
}

// How many times route() has run: a page that finishes loading after the person has moved on
// to another one is not shown over it.
let opened = 0;

async function route() {
  const mine = ++opened;
  navigation();
  if (!session.key() || location.hash === "#/signin") return signInPage();
  const hash = location.hash || "#/models";
  for (const [pattern, scope, page] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    if (scope && !session.can(scope)) {
      return show(message(`This page needs a key with the ${scope} scope; ` +
                          `${session.me().name} has ${session.me().scopes.join(", ")}.`));
    }
    try {
      const content = await page(match.slice(1).map(decodeURIComponent));
      if (mine !== opened) return;
      show(...content);
      return document.querySelector("#view [data-focus]")?.focus();
    } catch (error) {
      if (mine !== opened) return;
      if (error instanceof ApiError && error.status === 401) {
        session.end();
        return signInPage(error.message);
      }
      return show(message(error.message));
    }
  }
  show(message("No such page."), h("a", { href: "#/models" }, "Models"));
}

window.addEventListener("hashchange", route);
route();
