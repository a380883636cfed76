/**
 * The series table, updated in place: a row per series key is made once and
 * kept; an update only rewrites the cells whose text changed, and rows are
 * added, removed or reordered only when the set of series changes.
 */

import { formatValue } from "./format.js";

/** @param {import("../channel_state.js").Value | undefined} value */
export function valueText(value, unit = "") {
  if (value === undefined) return "–";
  if (typeof value === "number") return formatValue(value, unit);
  return `count ${value.count.toLocaleString("en")}, sum ${formatValue(value.sum, unit)}`;
}

/**
 * @typedef {object} Row
 * @property {HTMLTableRowElement} tr
 * @property {HTMLTableCellElement} value
 * @property {string} text
 */

export class SeriesTable {
  /** @param {HTMLTableSectionElement} body */
  constructor(body) {
    this.body = body;
    /** @type {Map<string, Row>} */
    this.rows = new Map();
    this.order = "";
  }

  /** @param {Array<import("../channel_state.js").Series & {value: import("../channel_state.js").Value | undefined}>} rows sorted */
  update(rows) {
    const order = rows.map((r) => r.key).join("\u0000");
    if (order !== this.order) {
      const keep = new Set(rows.map((r) => r.key));
      for (const key of this.rows.keys()) if (!keep.has(key)) this.rows.delete(key);
      const trs = rows.map((r) => (this.rows.get(r.key) ?? this.#make(r)).tr);
      this.body.replaceChildren(...trs);
      this.order = order;
    }
    for (const r of rows) {
      const row = /** @type {Row} */ (this.rows.get(r.key));
      const text = valueText(r.value, r.unit);
      if (text !== row.text) {
        row.value.textContent = text;
        row.text = text;
      }
      const raw = typeof r.value === "number" ? String(r.value) : null;
      if (raw === null) row.value.removeAttribute("data-raw");
      else if (row.value.dataset.raw !== raw) row.value.dataset.raw = raw;
    }
  }

  /** @param {import("../channel_state.js").Series} series */
  #make(series) {
    const tr = document.createElement("tr");
    tr.dataset.key = series.key;
    const name = document.createElement("td");
    name.className = "key";
    name.textContent = series.key;
    if (series.description) name.title = series.description;
    const value = document.createElement("td");
    value.className = "value";
    const unit = document.createElement("td");
    unit.textContent = series.unit;
    const kind = document.createElement("td");
    kind.textContent = series.kind;
    tr.append(name, value, unit, kind);
    /** @type {Row} */
    const row = { tr, value, text: "" };
    this.rows.set(series.key, row);
    return row;
  }

  clear() {
    this.rows.clear();
    this.order = "";
    this.body.replaceChildren();
  }
}
