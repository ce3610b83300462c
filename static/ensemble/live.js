// Live pages: follow a process or the dashboard over a websocket and update in place.
// The server sends what changed, rendered from the page's own templates.
(function () {
  "use strict";
  var root = document.querySelector("[data-live]");
  if (!root || !("WebSocket" in window)) {
    return;
  }
  var note = document.getElementById("live-state");
  var retryIn = 500;

  function say(text) {
    if (note) {
      note.textContent = text;
    }
  }

  function address() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var query = [];
    if (root.dataset.after) {
      query.push("after=" + encodeURIComponent(root.dataset.after));
    }
    // The status shown: a process that moved on without a new entry is sent again.
    var badge = document.querySelector("[data-status]");
    if (badge) {
      query.push("status=" + encodeURIComponent(badge.getAttribute("data-status")));
    }
    var search = query.length ? "?" + query.join("&") : "";
    return scheme + "//" + location.host + root.dataset.live + search;
  }

  function replace(id, html) {
    var element = document.getElementById(id);
    if (element && typeof html === "string") {
      element.innerHTML = html;
    }
  }

  function applyProcess(update) {
    var badge = document.querySelector("[data-status]");
    if (badge && update.status) {
      badge.setAttribute("data-status", update.status);
      badge.textContent = update.status;
      badge.className = "status status-" + update.status;
    }
    var rows = document.getElementById("trace-rows");
    if (rows && update.rows) {
      rows.insertAdjacentHTML("beforeend", update.rows);
    }
    replace("trace-diagram", update.diagram);
    replace("process-work", update.work);
    replace("process-finished", update.finished);
    root.dataset.after = String(update.last_seq);
  }

  function connect() {
    var socket = new WebSocket(address());
    socket.addEventListener("open", function () {
      retryIn = 500;
      say("Live: this page updates by itself as things move.");
    });
    socket.addEventListener("message", function (event) {
      var update = JSON.parse(event.data);
      if (update.type === "process") {
        applyProcess(update);
      } else if (update.type === "dashboard") {
        replace("dashboard-figures", update.html);
      }
    });
    socket.addEventListener("close", function (event) {
      if (event.code === 4403) {
        say("Live updates are not available to you: reload the page to see changes.");
        return;
      }
      say("Live updates interrupted; reconnecting…");
      window.setTimeout(connect, retryIn);
      retryIn = Math.min(retryIn * 2, 10000);
    });
  }

  connect();
})();
