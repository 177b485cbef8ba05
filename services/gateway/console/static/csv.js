// The first rows of a CSV, read in the browser before anything is uploaded, the way the
// trainer reads it (services/trainer/dataset.py): UTF-8 with or without BOM, the delimiter
// that splits the header into the wanted columns (else the one the header has most of),
// double quotes around fields, "" inside them, and newlines inside quoted fields.

const DELIMITERS = [",", ";", "\t", "|"];
const PREVIEW_BYTES = 64 * 1024;

function delimiter(headerLine, wanted) {
  const split = (d) => headerLine.split(d).map((cell) => cell.trim().replace(/^"|"$/g, "").toLowerCase());
  const fits = DELIMITERS.find((d) => wanted.every((name) => split(d).includes(name)));
  if (fits) return fits;
  const count = (d) => headerLine.split(d).length - 1;
  return DELIMITERS.reduce((best, d) => (count(d) > count(best) ? d : best), ",");
}

// The records of `text` (an array of fields each); a record cut off by the end of `text`
// is left out when `complete` is false (the text is only the start of the file).
export function records(text, separator, complete) {
  const out = [];
  let row = [], field = "", quoted = false, i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') quoted = false; else field += c;
    } else if (c === '"' && field === "") {
      quoted = true;
    } else if (c === separator) {
      row.push(field); field = "";
    } else if (c === "\n" || c === "\r") {
      row.push(field); field = "";
      out.push(row); row = [];
      if (c === "\r" && text[i + 1] === "\n") i += 1;
    } else {
      field += c;
    }
    i += 1;
  }
  if (complete && (field !== "" || row.length)) out.push([...row, field]);
  return out.filter((cells) => cells.some((cell) => cell.trim() !== ""));
}

// {columns, rows (the first `limit` after the header), delimiter} of a File, reading at most
// its first 64 KiB; throws an Error saying what is wrong when there is nothing to preview.
export async function preview(file, { limit = 5, wanted = ["text", "label"] } = {}) {
  const complete = file.size <= PREVIEW_BYTES;
  const bytes = new Uint8Array(await file.slice(0, PREVIEW_BYTES).arrayBuffer());
  if (bytes.includes(0)) {
    throw new Error("This is not a CSV file: it holds binary data (a spreadsheet or an archive?). "
                    + "Save or export it as CSV (UTF-8) and choose that file.");
  }
  let text;
  try {  // as the trainer reads it; a character cut by the end of the slice is no error
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: !complete });
  } catch {
    throw new Error("This file is not UTF-8 text. Save it as CSV (UTF-8) and choose it again.");
  }
  if (text.startsWith("\ufeff")) text = text.slice(1);
  if (!text.trim()) throw new Error("The file is empty.");
  const separator = delimiter(text.split(/\r?\n/, 1)[0], wanted);
  const [header, ...rows] = records(text, separator, complete);
  return { columns: header.map((name) => name.trim()), rows: rows.slice(0, limit), delimiter: separator };
}
