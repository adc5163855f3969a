// The example service's data, in a directory of JSON files (DATA_DIR, default ./data):
//   calls.jsonl        the calls this service placed, one JSON line each ({"callid", "number", "placed_at"});
//                      appended by the sender (another process) and by POST /_test/prepare
//   escalations.json   the escalations the handler made (it alone writes it; replaced atomically)
"use strict";

const fs = require("fs");
const path = require("path");

const dataDir = path.resolve(process.env.DATA_DIR || path.join(__dirname, "data"));

function file(name) {
  fs.mkdirSync(dataDir, { recursive: true });
  return path.join(dataDir, name);
}

// One line per call, appended in one write (O_APPEND): the sender and the handler never overwrite each other.
function recordCall(callid, number) {
  const line = JSON.stringify({ callid, number, placed_at: new Date().toISOString() }) + "\n";
  fs.appendFileSync(file("calls.jsonl"), line);
}

function placedCall(callid) {
  let text = "";
  try {
    text = fs.readFileSync(file("calls.jsonl"), "utf8");
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
  for (const line of text.split("\n")) {
    if (!line) continue;
    const call = JSON.parse(line);
    if (call.callid === callid) return call;
  }
  return null;
}

function escalations() {
  try {
    return JSON.parse(fs.readFileSync(file("escalations.json"), "utf8"));
  } catch (err) {
    if (err.code === "ENOENT") return [];
    throw err;
  }
}

// Written to a temporary file and renamed over the old one, so a crash never leaves half a file.
function saveEscalations(rows) {
  const target = file("escalations.json");
  const temporary = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(rows, null, 2));
  fs.renameSync(temporary, target);
}

module.exports = { dataDir, recordCall, placedCall, escalations, saveEscalations };
