// The live console: polls the JSON API (one request at a time, so a slow browser never piles up
// requests), shows callbacks newest first, expands a row on click. Every value is set with
// textContent: nothing received is ever parsed as HTML.
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token") || "";
  var base = location.pathname.replace(/[^/]*$/, "");
  var rows = [];            // summaries, newest first
  var last = 0, epoch = -1, total = 0, newestKept = 0;
  var expanded = {};        // seq -> detail (or true while loading)
  var kinds = {};
  var SHOWN = 500, POLL_LIMIT = 200, POLL_MS = 600;
  var live = true;          // false while paging back through older callbacks
  var $ = function (id) { return document.getElementById(id); };

  function api(path, options) {
    options = options || {};
    options.headers = { "X-Voicecb-Token": token, "Content-Type": "application/json" };
    return fetch(base + "api/" + path, options).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.error || ("HTTP " + response.status)); }
        return data;
      });
    });
  }
  function filters() {
    return "&kind=" + encodeURIComponent($("f-kind").value) +
      "&callid=" + encodeURIComponent($("f-callid").value.trim()) +
      "&verdict=" + encodeURIComponent($("f-verdict").value);
  }
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }
  function latency(seconds) {
    if (seconds === null || seconds === undefined) { return "\u2026"; }
    return seconds < 1 ? (seconds * 1000).toFixed(1) + " ms" : seconds.toFixed(2) + " s";
  }
  function short(row) { return row.name || "(invalid)"; }  // the short kind name, as the CLI prints it

  // Live, the page shows the newest SHOWN callbacks (matching the filters) and prepends what arrives. It
  // always shows one unbroken run of callbacks: when more arrive between two polls than one poll brings,
  // the older rows are let go (never a silent hole), and "older" pages back to them. Paging ("older",
  // "newer") stops the live view until "newer" reaches now or "live" is pressed.
  function poll() {
    // Rows whose reply was not written yet (latency null) are asked for again, for up to 30 s.
    var after = last, now = Date.now(), waiting = {};
    if (live) {
      rows.slice(0, 200).forEach(function (row) {
        if (row.latency === null && now - row.seen < 30000) { after = Math.min(after, row.seq - 1); waiting[row.seq] = row; }
      });
    }
    api("callbacks?after=" + after + "&limit=" + POLL_LIMIT + filters()).then(function (data) {
      if (data.epoch !== epoch && epoch !== -1) { rows = []; expanded = {}; waiting = {}; live = true; }
      epoch = data.epoch; total = data.total; newestKept = data.last;
      if (!live) {  // paused: only the counts; moving "last" keeps these polls small
        if (data.items.length) { last = Math.max(last, data.items[0].seq); }
        pager(); return;
      }
      var fresh = [], changed = false;
      data.items.forEach(function (item) {
        var old = waiting[item.seq];
        if (old) {
          if (item.latency !== null) { old.latency = item.latency; changed = true; }
        } else if (item.seq > last) { item.fresh = true; item.seen = now; fresh.push(item); }
      });
      if (fresh.length) {
        var cut = data.items.length >= POLL_LIMIT && data.items[data.items.length - 1].seq > after + 1;
        last = Math.max(last, fresh[0].seq);
        rows = (cut ? fresh : fresh.concat(rows)).slice(0, SHOWN);
      }
      if (fresh.length || changed) { render(); } else { pager(); }
    }).catch(function (error) {
      $("status").textContent = "not connected: " + error.message;
      $("status").dataset.live = "0";
    }).then(function () { setTimeout(poll, POLL_MS); });
  }

  function pager() {
    var newest = rows.length ? rows[0].seq : 0;
    $("older").hidden = rows.length === 0 || rows[rows.length - 1].seq <= 1;
    $("newer").hidden = live;
    $("live").hidden = live;
    if (epoch === -1) { return; }  // not connected yet
    $("status").textContent = total + " callback" + (total === 1 ? "" : "s") + " kept \u00b7 " +
      (live ? "live, updated " + new Date().toISOString().slice(11, 19) + " UTC" :
        "paused on #" + (rows.length ? rows[rows.length - 1].seq + "\u2013#" + newest : "\u2013") +
        (newestKept > newest ? " \u00b7 " + (newestKept - newest) + " newer since" : ""));
    $("status").dataset.live = "1";
    $("status").dataset.mode = live ? "live" : "paged";
  }

  function page(query, going) {
    api("callbacks?" + query + "&limit=" + SHOWN + filters()).then(function (data) {
      if (!data.items.length && going === "older") { $("older").hidden = true; return; }
      if (going === "newer" && data.items.length < SHOWN) { goLive(); return; }
      rows = data.items; expanded = {}; live = false; render();
      window.scrollTo(0, 0);
    });
  }

  function goLive() { live = true; rows = []; last = 0; expanded = {}; render(); }

  function ordered() {
    if (!$("f-group").checked) { return rows.map(function (row) { return { row: row }; }); }
    var groups = [], byId = {};
    rows.forEach(function (row) {
      var key = row.callid || ("#" + row.seq);
      if (!byId[key]) { byId[key] = { key: key, callid: row.callid, items: [] }; groups.push(byId[key]); }
      byId[key].items.push(row);
    });
    var out = [];
    groups.forEach(function (group) {
      var worst = group.items.some(function (r) { return r.verdict === "fail"; }) ? "fail" :
        group.items.some(function (r) { return r.verdict === "warn"; }) ? "warn" : "pass";
      out.push({ group: group, worst: worst });
      group.items.slice().reverse().forEach(function (row) { out.push({ row: row }); });
    });
    return out;
  }

  function render() {
    var body = $("rows");
    body.textContent = "";
    ordered().forEach(function (entry) {
      if (entry.group) {
        var tr = el("tr", null, "group");
        var kindsSeen = {};
        entry.group.items.forEach(function (r) { kindsSeen[short(r)] = 1; });
        var td = el("td", (entry.group.callid ? "call " + entry.group.callid : "no callid") + " \u00b7 " +
          entry.group.items.length + " callback" + (entry.group.items.length === 1 ? "" : "s") + " \u00b7 " +
          Object.keys(kindsSeen).join(", ") + " \u00b7 " + entry.worst);
        td.colSpan = 8; tr.appendChild(td); body.appendChild(tr);
        return;
      }
      var row = entry.row;
      if (row.kind && !kinds[row.kind]) {
        kinds[row.kind] = 1;
        var option = el("option", short(row)); option.value = row.kind; $("f-kind").appendChild(option);
      }
      var tr = el("tr", null, "row" + (row.fresh ? " new" : ""));
      row.fresh = false;
      tr.dataset.seq = row.seq;
      tr.appendChild(el("td", row.seq, "mono"));
      tr.appendChild(el("td", (row.at || "").replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC"), "mono"));
      tr.appendChild(el("td", short(row)));
      tr.appendChild(el("td", row.callid || "", "mono callid"));
      tr.appendChild(el("td", row.number || "", "mono"));
      var verdict = el("td");
      verdict.appendChild(el("span", row.verdict, "badge " + row.verdict));
      if (row.why) { verdict.appendChild(el("span", row.why, "why")); }
      tr.appendChild(verdict);
      tr.appendChild(el("td", row.reply, "mono reply"));
      tr.appendChild(el("td", latency(row.latency), "mono latency"));
      tr.addEventListener("click", function () { toggle(row.seq); });
      body.appendChild(tr);
      if (expanded[row.seq]) { body.appendChild(detailRow(row.seq)); }
    });
    $("empty").hidden = rows.length > 0;
    pager();
  }

  function toggle(seq) {
    if (expanded[seq]) { delete expanded[seq]; render(); return; }
    expanded[seq] = true;
    render();
    api("callbacks/" + seq).then(function (detail) { expanded[seq] = detail; render(); })
      .catch(function (error) { expanded[seq] = { error: error.message }; render(); });
  }

  function section(parent, title, text, id) {
    parent.appendChild(el("h4", title));
    var pre = el("pre", text);
    if (id) { pre.id = id; }
    parent.appendChild(pre);
    return pre;
  }

  function detailRow(seq) {
    var detail = expanded[seq];
    var tr = el("tr", null, "detail");
    tr.dataset.detail = seq;
    var td = el("td", null, "detail"); td.colSpan = 8; tr.appendChild(td);
    if (detail === true) { td.textContent = "loading\u2026"; return tr; }
    if (detail.error) { td.textContent = detail.error; return tr; }
    if (detail.problems.length) { section(td, "problems", detail.problems.join("\n")); }
    section(td, detail.method + " " + detail.path + (detail.truncated ? " (the body never fully arrived)" : ""), detail.body);
    if (detail.body_hex) { section(td, "body (hex, first 512 bytes)", detail.body_hex); }
    section(td, "headers", detail.headers.map(function (h) { return h[0] + ": " + h[1]; }).join("\n"));
    var took = detail.latency === null ? " (not written yet)" : " after " + latency(detail.latency);
    if (detail.reply) {
      section(td, "reply: HTTP " + detail.reply.status + took, detail.reply.headers.map(function (h) {
        return h[0] + ": " + h[1]; }).join("\n") + "\n\n" + detail.reply.body);
    } else {
      section(td, "reply", "(none: the connection was dropped" + took + ")");
    }
    var title = el("h4", "reproduce ");
    var button = el("button", "copy", "copy"); button.type = "button";
    title.appendChild(button); td.appendChild(title);
    var pre = el("pre", detail.curl, "curl"); td.appendChild(pre);
    button.addEventListener("click", function (event) { event.stopPropagation(); copy(pre.textContent, button); });
    return tr;
  }

  function copy(text, button) {
    function done(ok) { button.textContent = ok ? "copied" : "select and copy"; button.dataset.copied = ok ? "1" : "0"; }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
    } else {
      var area = el("textarea"); area.value = text; document.body.appendChild(area); area.select();
      var ok = false; try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area); done(ok);
    }
  }

  document.querySelectorAll("#script button[data-reply]").forEach(function (button) {
    button.addEventListener("click", function () {
      var body = { reply: button.dataset.reply, times: Number($("times").value) || 1, delay: Number($("delay").value) || 0 };
      api("script", { method: "POST", body: JSON.stringify(body) })
        .then(function (data) { $("scripted").textContent = "scripted " + data.scripted; })
        .catch(function (error) { $("scripted").textContent = "not scripted: " + error.message; });
    });
  });
  $("clear").addEventListener("click", function () {
    api("clear", { method: "POST", body: "{}" }).then(goLive);
  });
  $("older").addEventListener("click", function () { page("before=" + rows[rows.length - 1].seq, "older"); });
  $("newer").addEventListener("click", function () { page("oldest=1&after=" + rows[0].seq, "newer"); });
  $("live").addEventListener("click", goLive);
  ["f-kind", "f-verdict"].forEach(function (id) { $(id).addEventListener("change", goLive); });
  $("f-group").addEventListener("change", render);
  var typing = null;
  $("f-callid").addEventListener("input", function () { clearTimeout(typing); typing = setTimeout(goLive, 250); });
  render();
  poll();
})();
