// The public API, called as scripts call it: `Authorization: Bearer <key>`.
// The key and what /v1/me said about it live in this tab's sessionStorage only.

const KEY = "polyhead.key";
const ME = "polyhead.me";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  me: () => JSON.parse(sessionStorage.getItem(ME) || "null"),
  can: (scope) => (session.me()?.scopes ?? []).includes(scope),
  start(key, me) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(ME, JSON.stringify(me));
  },
  end() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(ME);
  },
};

// What a person should read for each failure the API documents.
const MEANING = {
  401: "This API key is unknown or revoked. Check it, or make one with polyhead keys create, " +
       "and sign in again.",
  403: "This key's scopes do not allow that.",
};

export async function api(path, { method = "GET", body, key = session.key() } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  // A FormData body goes as multipart/form-data (the browser writes the boundary).
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, cache: "no-store",
      body: body === undefined || form ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "The gateway cannot be reached. Is polyhead running?");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const said = data?.error?.message;
    throw new ApiError(response.status, MEANING[response.status] ?? said ?? `HTTP ${response.status}`);
  }
  return data;
}

// A path segment from data (a model name), safe inside a URL.
export const part = (value) => encodeURIComponent(String(value));
