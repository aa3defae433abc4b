// The REST API (/api/v1) as the console calls it: every request carries the user's key, errors come back
// as ApiError with the API's code, and the live stream is read from /api/v1/stream through fetch (which,
// unlike EventSource, can send the Authorization header).

import { currentKey } from "./keystore.js";

export const PREFIX = "/api/v1";

export class ApiError extends Error {
  constructor(status, code, message, parameter) {
    super(message);
    this.status = status;
    this.code = code;
    this.parameter = parameter;
  }
}

function headers(key) {
  const value = key === undefined ? currentKey() : key;
  return value ? { Authorization: `Bearer ${value}` } : {};
}

export function apiUrl(path, params) {
  const url = new URL(PREFIX + path, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(item));
  }
  return url;
}

async function failure(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = { error: `${response.status} ${response.statusText}` };
  }
  return new ApiError(response.status, body.code || "error", body.error || response.statusText, body.parameter);
}

/** GET path (under /api/v1) with params; the JSON answer. key: a key to try instead of the stored one. */
export async function get(path, params, { signal, key } = {}) {
  const response = await fetch(apiUrl(path, params), { headers: headers(key), signal, credentials: "omit" });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/**
 * Read the live stream until signal aborts: onEvent(kind, data) for each event, onOpen() once connected.
 * Resolves when the server ends the stream (or cuts the client), rejects on errors.
 */
export async function stream(params, { signal, onEvent, onOpen }) {
  const response = await fetch(apiUrl("/stream", params), {
    headers: { ...headers(), Accept: "text/event-stream" },
    signal,
    credentials: "omit",
  });
  if (!response.ok) throw await failure(response);
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let kind = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) onEvent(kind, JSON.parse(data.join("\n")));
    }
  }
}
