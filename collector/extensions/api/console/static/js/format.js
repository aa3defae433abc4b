// Numbers with their units, and times in the browser's own time zone.

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const zoneName = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" });

export function count(value) {
  return value === null || value === undefined ? "–" : integer.format(value);
}

/** A count with its unit: "1,234 calls", "1 call". */
export function counted(value, unit) {
  return `${count(value)} ${value === 1 ? unit : unit + "s"}`;
}

export function tokens(value) {
  if (value === null || value === undefined) return "–";
  return `${value >= 100000 ? compact.format(value) : integer.format(value)} tok`;
}

/** US dollars with enough digits for sub-cent calls: $0.0125, $12.34, $1,234. */
export function cost(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  const digits = abs === 0 ? 2 : abs < 0.01 ? 5 : abs < 1 ? 4 : abs < 1000 ? 2 : 0;
  return "$" + value.toLocaleString(undefined, { minimumFractionDigits: Math.min(digits, 2), maximumFractionDigits: digits });
}

/** A duration given in milliseconds: 850 ms, 1.25 s, 3 min 5 s. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1) return `${ms.toLocaleString(undefined, { maximumFractionDigits: 3 })} ms`;
  if (ms < 1000) return `${ms.toLocaleString(undefined, { maximumFractionDigits: ms < 10 ? 1 : 0 })} ms`;
  if (ms < 60000) return `${(ms / 1000).toLocaleString(undefined, { maximumFractionDigits: 2 })} s`;
  const minutes = Math.floor(ms / 60000);
  const seconds = Math.round((ms % 60000) / 1000);
  if (minutes < 60) return `${minutes} min ${seconds} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function percent(part, whole) {
  if (!whole) return "–";
  return `${((100 * part) / whole).toLocaleString(undefined, { maximumFractionDigits: 1 })} %`;
}

export function bytes(value) {
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

/** An RFC 3339 time (or milliseconds since the epoch) in the browser's zone. */
export function time(value) {
  if (value === null || value === undefined || value === "") return "–";
  return dateTime.format(new Date(value));
}

export function clock(value) {
  return timeOnly.format(new Date(value));
}

/** The browser's zone, as the times on the page are written in it: "UTC+5:30", "CEST". */
export function zone() {
  const part = zoneName.formatToParts(new Date()).find((item) => item.type === "timeZoneName");
  return part ? part.value : "";
}

/** A <time> element: the local time as text, the exact UTC time as its datetime and tooltip. */
export function timeElement(value, h) {
  const date = new Date(value);
  return h("time", { datetime: date.toISOString(), title: date.toISOString() }, time(value));
}
