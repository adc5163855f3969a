// The provider console: polls /voicecb-api/state, shows each call as a card with its deliveries;
// buttons script outcomes (/voicecb-api/script), decide held calls (/voicecb-api/decide) and redeliver
// (/voicecb-api/redeliver). textContent only.
(function () {
  "use strict";
  var base = location.pathname.replace(/console\/?$/, "");
  var token = new URLSearchParams(location.search).get("token") || "";
  var $ = function (id) { return document.getElementById(id); };
  var lastJson = "";
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }
  function post(name, body) {
    var headers = { "Content-Type": "application/json", "X-Voicecb-Token": token };
    return fetch(base + name, { method: "POST", headers: headers, body: JSON.stringify(body) })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { throw new Error(data.error || ("HTTP " + response.status)); }
          return data;
        });
      });
  }
  function script(outcome, number) {
    var body = { outcome: outcome, times: Number($("times").value) || 1 };
    if (number) { body.number = number; }
    if (outcome === "call_error" || outcome === "fail") { body.code = Number($("code").value) || 8; }
    if (outcome === "press") { body.keys = $("keys").value.split(/[ ,]+/).filter(Boolean); }
    return post("script", body).then(function () {
      $("scripted").textContent = "scripted: the next " + body.times + " call" + (body.times === 1 ? "" : "s") +
        (number ? " to " + number : "") + ": " + outcome.replace("_", " ");
    }).catch(function (error) { $("scripted").textContent = "not scripted: " + error.message; });
  }
  document.querySelectorAll("#panel button[data-outcome]").forEach(function (button) {
    button.addEventListener("click", function () { script(button.dataset.outcome, $("number").value.trim()); });
  });

  function render(state) {
    var byCall = {};
    state.deliveries.forEach(function (d) { (byCall[d.callid] = byCall[d.callid] || []).push(d); });
    var cards = $("cards");
    cards.textContent = "";
    state.calls.slice().reverse().forEach(function (call) {
      var card = el("div", null, "card");
      card.dataset.callid = call.callid;
      card.appendChild(el("h3", call.number + " \u00b7 " + call.action));
      card.appendChild(el("div", "callid " + call.callid, "mono"));
      card.appendChild(el("div", call.outcome, "outcome"));
      if (call.held) {
        card.classList.add("held");
        var decide = el("div", "decide now: ", "decide");
        ["answer", "no_answer", "call_error", "fail", "press", "hang_up"].forEach(function (outcome) {
          var button = el("button", outcome.replace("_", " ")); button.type = "button";
          button.dataset.decide = outcome;
          button.addEventListener("click", function () {
            var body = { callid: call.callid, outcome: outcome };
            if (outcome === "call_error" || outcome === "fail") { body.code = Number($("code").value) || 8; }
            if (outcome === "press") { body.keys = $("keys").value.split(/[ ,]+/).filter(Boolean); }
            button.disabled = true;
            post("decide", body).then(poll).catch(function (error) {
              button.disabled = false; decide.appendChild(el("div", "not decided: " + error.message, "why"));
            });
          });
          decide.appendChild(button); decide.appendChild(document.createTextNode(" "));
        });
        card.appendChild(decide);
      }
      (byCall[call.callid] || []).forEach(function (d) {
        var row = el("div", null, "delivery");
        row.dataset.seq = d.seq;
        row.appendChild(el("span", d.state, "state " + d.state));
        row.appendChild(document.createTextNode(" #" + d.seq + " " + d.name +
          (d.duplicate ? " (again)" : "") + " \u00b7 " + d.attempts.length + " attempt" + (d.attempts.length === 1 ? "" : "s") + " "));
        var last = d.attempts[d.attempts.length - 1];
        if (last) {
          row.appendChild(el("span", last.status === null ? ("no reply: " + (last.error || "")) :
            ("HTTP " + last.status + " " + (last.reply || "").slice(0, 80)), "mono"));
          if (last.problems.length) { row.appendChild(el("div", last.problems.join("; "), "why")); }
        }
        var again = el("button", "redeliver"); again.type = "button"; again.className = "redeliver";
        again.addEventListener("click", function () {
          post("redeliver", { seq: d.seq }).then(poll).catch(function (error) { again.textContent = error.message; });
        });
        row.appendChild(document.createTextNode(" "));
        row.appendChild(again);
        card.appendChild(row);
      });
      var next = el("div", "next call to this number: ", "next");
      ["answer", "no_answer", "call_error", "press"].forEach(function (outcome) {
        var button = el("button", outcome.replace("_", " ")); button.type = "button";
        button.addEventListener("click", function () { script(outcome, call.number); });
        next.appendChild(button); next.appendChild(document.createTextNode(" "));
      });
      card.appendChild(next);
      cards.appendChild(card);
    });
    state.sends.filter(function (send) { return !send.ok; }).reverse().forEach(function (send) {
      var card = el("div", null, "card refused");
      card.dataset.requestId = send.request_id;
      card.appendChild(el("h3", "refused \u00b7 " + send.api + " " + send.action));
      card.appendChild(el("div", send.error.code + ": " + send.error.message, "why"));
      card.appendChild(el("div", "RequestId " + send.request_id + " \u00b7 no call placed, no callback", "mono"));
      cards.appendChild(card);
    });
    $("empty").hidden = state.sends.length > 0;
  }

  var timer = null;
  function poll() {
    clearTimeout(timer);
    return fetch(base + "state", { headers: { "X-Voicecb-Token": token } }).then(function (response) { return response.json(); }).then(function (state) {
      var json = JSON.stringify([state.calls, state.deliveries, state.sends]);
      if (json !== lastJson) { lastJson = json; render(state); }
      var refused = state.sends.length - state.calls.length;
      $("status").textContent = state.calls.length + " call" + (state.calls.length === 1 ? "" : "s") + ", " +
        (refused > 0 ? refused + " refused send" + (refused === 1 ? "" : "s") + ", " : "") +
        state.deliveries.length + " deliver" + (state.deliveries.length === 1 ? "y" : "ies") + " \u00b7 live";
      $("status").dataset.live = "1";
    }).catch(function (error) {
      $("status").textContent = "not connected: " + error.message; $("status").dataset.live = "0";
    }).then(function () { timer = setTimeout(poll, 700); });
  }
  poll();
})();
