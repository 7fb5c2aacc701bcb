// corral admin pages: plain script, no build step, nothing from the
// network but this corral. Pages work for viewing without it; the GGUF
// upload needs it, because the API takes the file as the raw body and
// answers with Server-Sent Events.
"use strict";

(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const form = document.getElementById("import-form");
  if (form) {
    setupImport(form, csrf);
  }
  // Live parts: the server sends the part again whenever it changes.
  document.querySelectorAll("[data-live]").forEach(function (el) {
    const es = new EventSource(el.dataset.live);
    es.onmessage = function (ev) { el.innerHTML = ev.data; };
  });
  // A log that follows: new lines are added at the end, and the view
  // stays at the end unless the reader scrolled up.
  document.querySelectorAll("[data-follow]").forEach(function (el) {
    el.scrollTop = el.scrollHeight;
    const es = new EventSource(el.dataset.follow);
    // The stream starts with the same last lines the page shows.
    es.onopen = function () { el.textContent = ""; };
    es.onmessage = function (ev) {
      const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < 30;
      el.append(ev.data + "\n");
      if (atEnd) {
        el.scrollTop = el.scrollHeight;
      }
    };
  });
  const pull = document.getElementById("pull-form");
  if (pull) {
    setupPull(pull, csrf);
  }
  // Copy buttons: data-copy names the element whose text they copy.
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      const el = document.querySelector(b.dataset.copy);
      navigator.clipboard.writeText(el.textContent.trim()).then(
        function () { b.textContent = "Copied"; },
        function () { b.textContent = "Select it and copy"; });
    });
  });
})();

// showResult shows an outcome ("ok" or "error") in the form's result box.
function showResult(el, kind, text) {
  el.className = "alert " + kind;
  el.textContent = text;
  el.hidden = false;
}

function mb(n) {
  if (n < 1e4) {
    return n + " bytes";
  }
  return (n / 1e6).toFixed(n < 1e7 ? 2 : 1) + " MB";
}

// checkName applies the server's rule (the pattern and hint come from it)
// and words a failure as the API does.
function checkName(form, name) {
  if (name === "") {
    return "name is required: the model's name, such as tiny:latest";
  }
  if (!new RegExp(form.dataset.namePattern).test(name)) {
    return "model name " + JSON.stringify(name) + " is not valid: " + form.dataset.nameHint;
  }
  return "";
}

function paramLines(text) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") {
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) {
      return { error: "parameter " + JSON.stringify(line) + ": use key=value, such as temperature=0.7 or stop=</s>" };
    }
    out.push(line);
  }
  return { params: out };
}

function setupImport(form, csrf) {
  const box = document.getElementById("import-progress");
  const bar = document.getElementById("import-bar");
  const bytes = document.getElementById("import-bytes");
  const steps = document.getElementById("import-steps");
  const result = document.getElementById("import-result");
  const submit = document.getElementById("import-submit");

  function step(text) {
    const last = steps.lastElementChild;
    if (last && last.dataset.text === text) {
      return;
    }
    if (last) {
      last.className = "done";
    }
    const li = document.createElement("li");
    li.dataset.text = text;
    li.textContent = text;
    li.className = "current";
    steps.appendChild(li);
  }

  function finish(ok, text) {
    const last = steps.lastElementChild;
    if (last) {
      last.className = ok ? "done" : "failed";
    }
    showResult(result, ok ? "ok" : "error", text);
    submit.disabled = false;
    submit.textContent = "Import";
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    result.hidden = true;
    const name = form.elements.name.value.trim();
    const file = form.elements.file.files[0];
    const p = paramLines(form.elements.params.value);
    const problem = checkName(form, name) || (file ? "" : "choose a GGUF file to import") || p.error || "";
    if (problem) {
      box.hidden = true;
      showResult(result, "error", problem);
      return;
    }
    const q = new URLSearchParams({ name: name, file: file.name });
    for (const key of ["template", "system"]) {
      const v = form.elements[key].value;
      if (v.trim() !== "") {
        q.set(key, v);
      }
    }
    for (const kv of p.params) {
      q.append("param", kv);
    }

    steps.replaceChildren();
    bar.value = 0;
    bytes.textContent = "0% · 0 of " + mb(file.size);
    box.hidden = false;
    submit.disabled = true;
    submit.textContent = "Importing…";
    step("uploading " + file.name + " to corral");

    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/models/import?" + q.toString());
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.onprogress = function (ev) {
      const total = ev.lengthComputable ? ev.total : file.size;
      const pct = total > 0 ? Math.floor((100 * ev.loaded) / total) : 100;
      bar.value = pct;
      bytes.textContent = pct + "% · " + mb(ev.loaded) + " of " + mb(total);
    };
    xhr.upload.onload = function () {
      bar.value = 100;
      bytes.textContent = "100% · " + mb(file.size) + " sent";
    };

    // The response is SSE: "data: {event}\n\n", read as it arrives.
    let seen = 0;
    let ended = false;
    function drain() {
      const text = xhr.responseText;
      const got = sseSplit(text.slice(seen));
      seen = text.length - got.rest.length;
      for (const ev of got.events) {
        if (ended) {
          break;
        }
        if (ev.error) {
          ended = true;
          finish(false, ev.error);
        } else if (ev.status === "success") {
          ended = true;
          step("verifying on every instance");
          finish(true, ev.model + " imported: it is on " + (ev.instances || []).join(", ") + ".");
          form.reset();
          refreshTable(ev.model);
        } else if (ev.status) {
          step(ev.status);
        }
      }
    }
    xhr.onprogress = function () {
      if (xhr.status === 200) {
        drain();
      }
    };
    xhr.onload = function () {
      if (xhr.status !== 200) {
        finish(false, apiError(xhr));
        return;
      }
      drain();
      if (!ended) {
        finish(false, "the connection ended before the import finished: see corral's log");
      }
    };
    xhr.onerror = function () {
      finish(false, "the upload failed: the connection to corral was lost");
    };
    xhr.send(file);
  });
}

function apiError(xhr) {
  let msg = "";
  try {
    msg = JSON.parse(xhr.responseText).error || "";
  } catch (err) {
    msg = xhr.responseText.trim();
  }
  if (xhr.status === 401) {
    return "your session has ended: reload the page and sign in again";
  }
  return msg || "corral answered " + xhr.status + " " + xhr.statusText;
}

// refreshTable swaps in the server-rendered table, without a full reload.
function refreshTable(model) {
  fetch("/models/table", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : Promise.reject(new Error(r.statusText))))
    .then((html) => {
      const holder = document.getElementById("models-table");
      holder.innerHTML = html;
      for (const tr of holder.querySelectorAll("tr[data-model]")) {
        if (tr.dataset.model === model) {
          tr.classList.add("fresh");
        }
      }
    })
    .catch(() => window.location.reload());
}

// setupPull runs a pull through the API, whose answer is SSE: one event
// per step, with bytes for each layer; the bar shows all layers together.
function setupPull(form, csrf) {
  const box = document.getElementById("pull-progress");
  const bar = document.getElementById("pull-bar");
  const bytes = document.getElementById("pull-bytes");
  const result = document.getElementById("pull-result");
  const submit = document.getElementById("pull-submit");
  function finish(kind, text) {
    showResult(result, kind, text);
    submit.disabled = false;
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const model = form.elements.model.value.trim();
    result.hidden = true;
    if (model === "") {
      finish("error", "name the model to pull, such as llama3.2:1b");
      return;
    }
    const layers = {};
    bar.value = 0;
    bytes.textContent = "starting";
    box.hidden = false;
    submit.disabled = true;
    fetch("/api/v1/models/pull", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ model: model }),
    }).then(function (resp) {
      if (!resp.ok) {
        return resp.json().then(function (j) { finish("error", j.error || resp.statusText); },
          function () { finish("error", "corral answered " + resp.status); });
      }
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      let ended = false;
      function onEvent(ev) {
        if (ev.error) {
          ended = true;
          finish("error", ev.error);
          return;
        }
        if (ev.digest && ev.total) {
          layers[ev.digest] = { total: ev.total, done: ev.completed || 0 };
        }
        let total = 0;
        let done = 0;
        for (const k in layers) {
          total += layers[k].total;
          done += layers[k].done;
        }
        if (ev.status === "success") {
          ended = true;
          bar.value = 100;
          bytes.textContent = "100% · " + mb(total);
          finish("ok", ev.model + " is pulled: it is on " + (ev.instances || []).join(", ") + ".");
          refreshTable(ev.model);
          return;
        }
        if (total > 0) {
          const pct = Math.floor((100 * done) / total);
          bar.value = pct;
          bytes.textContent = pct + "% · " + mb(done) + " of " + mb(total) + " · " + ev.status;
        } else {
          bytes.textContent = ev.status;
        }
      }
      function read() {
        return reader.read().then(function (r) {
          if (r.done) {
            if (!ended) {
              finish("error", "the connection ended before the pull finished: the pull goes on in corral; reload to see it");
            }
            return;
          }
          const got = sseSplit(buf + dec.decode(r.value, { stream: true }));
          buf = got.rest;
          got.events.forEach(onEvent);
          return read();
        });
      }
      return read();
    }).catch(function () {
      finish("error", "the connection to corral was lost");
    });
  });
}

// sseSplit takes the whole events off the front of text (Server-Sent
// Events whose data is JSON): the parsed events, and the rest, which waits
// for more.
function sseSplit(text) {
  const events = [];
  let end;
  while ((end = text.indexOf("\n\n")) >= 0) {
    const chunk = text.slice(0, end);
    text = text.slice(end + 2);
    const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
    if (data === "") {
      continue;
    }
    try {
      events.push(JSON.parse(data));
    } catch (err) {
      // not an event of ours
    }
  }
  return { events: events, rest: text };
}
