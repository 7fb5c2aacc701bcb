// Opens a websocket to /ws on this origin (ws: or wss: as the page), sends one message and shows
// the echo; the status element's data-state ends as "echoed" or "error".
(function () {
  "use strict";
  var status = document.getElementById("ws-status");
  var sent = document.getElementById("ws-sent");
  var echo = document.getElementById("ws-echo");
  function set(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    document.body.dataset.ws = state;
  }
  var scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // "ws" beside the page: /ws when the page is served at /.
  var u = new URL("ws", location.href);
  u.protocol = scheme;
  var url = u.href;
  var message = "hello from the " + document.getElementById("role").textContent + " stand-in";
  var ws;
  try {
    ws = new WebSocket(url);
  } catch (e) {
    set("error", "error: " + e.message);
    return;
  }
  ws.onopen = function () {
    set("open", "open");
    sent.textContent = message;
    ws.send(message);
  };
  ws.onmessage = function (ev) {
    echo.textContent = ev.data;
    set(ev.data === message ? "echoed" : "error", ev.data === message ? "echoed via " + scheme : "unexpected echo");
    ws.close(1000);
  };
  ws.onerror = function () {
    if (status.dataset.state !== "echoed") set("error", "error: could not reach " + url);
  };
})();
