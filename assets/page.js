// The folder page's uploads: a tus 1.0.0 client (creation, core, termination)
// with progress, pause, cancel and automatic resume: after a network error or
// a 5xx/409/423 (HEAD the upload, continue from its Upload-Offset, with
// back-off), and after a reload or a browser restart (the upload URL is kept
// in localStorage per folder, file name, size and mtime). Plain script, no
// dependencies; CSP-safe (no eval, no inline handlers); names only ever
// reach the page as textContent.
(function () {
  "use strict";
  var CHUNK = 64 * 1048576; // bytes per PATCH at most: passes proxies' body limits
  var PARALLEL = 2; // files uploading at once
  var STALL = 60000; // ms without progress before a request is abandoned
  var sec = document.getElementById("up");
  if (!sec) return;
  var token = sec.getAttribute("data-token");
  var list = sec.querySelector("ul");
  var input = sec.querySelector("input");
  var live = el("p", "");
  var ups = [];
  var refreshTimer;
  live.className = "sr";
  live.setAttribute("aria-live", "polite");
  sec.appendChild(live);
  sec.hidden = false;

  function el(tag, text) {
    var e = document.createElement(tag);
    e.textContent = text;
    return e;
  }

  function bytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < 4) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }

  function duration(s) {
    s = Math.ceil(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.round(s % 3600 / 60) + " min";
  }

  // tus Upload-Metadata values are base64 of bytes: encode the name as
  // UTF-8 first (btoa alone throws on characters beyond Latin-1).
  function base64(text) {
    var bytes = new TextEncoder().encode(text), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin);
  }

  // localStorage may be missing or full (private windows): uploads still
  // work, they just do not survive a reload.
  function store(key, url) {
    try {
      if (url) localStorage.setItem(key, url);
      else localStorage.removeItem(key);
    } catch (e) {}
  }
  function stored(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }

  // One request; resolves with the XHR on 2xx, rejects with it (status 0
  // for a network error or a stall) otherwise.
  function request(u, method, url, headers, body) {
    return new Promise(function (resolve, reject) {
      var x = new XMLHttpRequest(), timer;
      function end(settle, value) {
        clearTimeout(timer);
        if (u.xhr === x) u.xhr = null;
        settle(value);
      }
      function arm() {
        clearTimeout(timer);
        timer = setTimeout(function () { end(reject, { status: 0 }); x.abort(); }, STALL);
      }
      u.xhr = x;
      x.open(method, url);
      x.setRequestHeader("Tus-Resumable", "1.0.0");
      for (var h in headers) x.setRequestHeader(h, headers[h]);
      x.onload = function () { end(x.status < 300 ? resolve : reject, x); };
      x.onerror = x.onabort = function () { end(reject, { status: 0 }); };
      if (body) x.upload.onprogress = function (e) { arm(); progress(u, e.loaded); };
      arm();
      x.send(body || null);
    });
  }

  function offsetOf(x) {
    var v = x.getResponseHeader("Upload-Offset");
    return v !== null && /^\d+$/.test(v) ? Number(v) : NaN;
  }

  // Brings u.offset to u.file.size; throws an XHR-like {status} on failure.
  async function attempt(u) {
    if (!u.url) u.url = stored(u.key);
    if (u.url && u.offset === null) {
      var h = await request(u, "HEAD", u.url, {}).catch(function (x) {
        if (x.status === 404 || x.status === 410) return null;
        throw x;
      });
      var length = h && h.getResponseHeader("Upload-Length");
      if (!h || (length !== null && Number(length) !== u.file.size)) {
        store(u.key, (u.url = null)); // expired, ended, or another file's
      } else {
        var o = offsetOf(h);
        if (!(o <= u.file.size)) throw { status: 502 };
        if (o > u.confirmed) u.tries = 0;
        u.offset = u.confirmed = o;
      }
    }
    if (!u.url) {
      var c = await request(u, "POST", location.pathname + (token ? "?token=" + encodeURIComponent(token) : ""), {
        "Upload-Length": String(u.file.size),
        "Upload-Metadata": "filename " + base64(u.file.name)
      });
      var loc = c.getResponseHeader("Location");
      if (!loc) throw { status: 502 };
      u.url = new URL(loc, location.href).href;
      store(u.key, u.url);
      u.offset = u.confirmed = 0;
    }
    u.mark = { t: Date.now(), n: u.offset };
    progress(u, 0); // where the server stands: a resumed bar starts there
    while (u.offset < u.file.size) {
      var end = Math.min(u.offset + CHUNK, u.file.size);
      var p = await request(u, "PATCH", u.url, {
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": String(u.offset)
      }, u.file.slice(u.offset, end)).catch(function (x) {
        // Expired or ended on the server: start again from byte 0.
        if (x.status === 404 || x.status === 410) {
          store(u.key, (u.url = null));
          throw { status: 0 };
        }
        throw x;
      });
      var next = offsetOf(p);
      if (!(next > u.offset && next <= u.file.size)) throw { status: 502 };
      u.offset = u.confirmed = next;
      u.tries = 0;
    }
  }

  function retryable(s) {
    return s === 0 || s === 409 || s === 423 || s === 429 ||
      (s >= 500 && s !== 501 && s !== 505 && s !== 507);
  }

  function reason(x) {
    var s = x.status;
    // A page opened through a link has no log-in to offer: the link ended.
    if (s === 401 && token) return "This link no longer allows uploads (401)";
    if (s === 401) return "Not logged in (401): reload the page and log in";
    if (s === 403) return "Not allowed to upload here (403)";
    if (s === 413) return "Too large for this server (413)";
    if (s === 507) return "Not enough space on the server (507)";
    var text = (x.responseText || "").split("\n")[0].slice(0, 200);
    return "Failed: " + s + (text ? " " + text : "");
  }

  async function run(u) {
    var gen = ++u.gen;
    for (;;) {
      try {
        await attempt(u);
        if (u.gen === gen) finish(u);
        return;
      } catch (x) {
        if (u.gen !== gen) return; // paused or cancelled meanwhile
        if (!retryable(x.status)) return fail(u, reason(x));
        u.offset = null; // ask the server where to continue
        await backoff(u, gen);
        if (u.gen !== gen) return;
      }
    }
  }

  // 1, 2, 4 … 30 s, for as long as the page is open; u.wake() ends it early.
  function backoff(u, gen) {
    var left = Math.min(30, 1 << Math.min(u.tries++, 5)), timer;
    return new Promise(function (done) {
      function tick() {
        clearTimeout(timer);
        if (u.gen !== gen || left <= 0) {
          u.wake = null;
          return done();
        }
        u.status.textContent = "Connection lost, retrying in " + left-- + " s";
        timer = setTimeout(tick, 1000);
      }
      u.wake = function () { left = 0; tick(); };
      tick();
    });
  }

  function progress(u, sent) {
    var now = Date.now(), done = u.offset + sent, size = u.file.size;
    if (now - u.mark.t >= 1000) {
      var v = (done - u.mark.n) * 1000 / (now - u.mark.t);
      u.speed = u.speed ? 0.7 * u.speed + 0.3 * v : v;
      u.mark = { t: now, n: done };
    }
    var pct = size ? Math.floor(done * 100 / size) : 100;
    u.bar.value = pct;
    u.status.textContent = pct + "%" + (u.speed ? " · " + bytes(u.speed) + "/s · " +
      duration((size - done) / u.speed) + " left" : "");
  }

  function setState(u, state, text) {
    u.state = state;
    u.li.className = state;
    if (text !== undefined) u.status.textContent = text;
    u.pause.textContent = state === "pause" ? "Resume" : state === "fail" ? "Retry" : "Pause";
    u.pause.setAttribute("aria-label", u.pause.textContent + " " + u.file.name);
    u.pause.hidden = u.cancel.hidden = state === "done";
  }

  function finish(u) {
    store(u.key, null);
    u.bar.value = 100;
    setState(u, "done", "Done · " + bytes(u.file.size));
    live.textContent = u.file.name + ": uploaded";
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 300);
    pump();
  }

  function fail(u, text) {
    setState(u, "fail", text);
    live.textContent = u.file.name + ": " + text;
    pump();
  }

  function stop(u) {
    u.gen++;
    if (u.wake) u.wake();
    if (u.xhr) u.xhr.abort();
  }

  function pump() {
    var busy = ups.filter(function (u) { return u.state === "run"; }).length;
    ups.forEach(function (u) {
      if (busy < PARALLEL && u.state === "queue") {
        busy++;
        setState(u, "run", "Starting");
        u.offset = null;
        run(u);
      }
    });
  }

  // The new files appear in the table: fetch this page again and swap the
  // table body for the server's (the same escaping, sort and links).
  async function refresh() {
    try {
      var r = await fetch(location.href, { cache: "no-store" });
      var doc = new DOMParser().parseFromString(await r.text(), "text/html");
      var fresh = doc.querySelector("tbody"), old = document.querySelector("tbody");
      if (r.ok && fresh && old) old.replaceWith(document.adoptNode(fresh));
    } catch (e) {}
  }

  function add(file) {
    var key = "ranged-upload " + location.pathname + "\n" + file.name + "\n" + file.size + "\n" + file.lastModified;
    if (ups.some(function (u) { return u.key === key && u.state !== "done"; })) return;
    var u = {
      file: file, key: key, url: null, offset: null, confirmed: 0, gen: 0, tries: 0,
      speed: 0, li: el("li", ""), bar: el("progress", ""), status: el("small", ""),
      pause: el("button", ""), cancel: el("button", "Cancel")
    };
    u.bar.max = 100;
    u.bar.value = 0;
    u.bar.setAttribute("aria-label", "Upload of " + file.name);
    u.pause.type = u.cancel.type = "button";
    u.cancel.setAttribute("aria-label", "Cancel " + file.name);
    u.li.append(el("span", file.name), u.pause, u.cancel, u.bar, u.status);
    list.appendChild(u.li);
    u.pause.addEventListener("click", function () {
      if (u.state === "run" || u.state === "queue") {
        stop(u);
        setState(u, "pause", "Paused");
        // Bytes handed to the network are not bytes stored: ask the server.
        if (u.url) request({}, "HEAD", u.url, {}).then(function (h) {
          var o = offsetOf(h);
          if (u.state !== "pause" || !(o <= u.file.size)) return;
          u.bar.value = Math.floor(o * 100 / (u.file.size || 1));
          u.status.textContent = "Paused at " + u.bar.value + "% · " + bytes(o);
        }, function () {});
      } else {
        setState(u, "queue", "Waiting");
      }
      pump();
    });
    u.cancel.addEventListener("click", function () {
      stop(u);
      // tus termination (§ Termination): the server frees the bytes.
      if (u.url) request({}, "DELETE", u.url, {}).catch(function () {});
      store(u.key, null);
      ups.splice(ups.indexOf(u), 1);
      u.li.remove();
      live.textContent = file.name + ": cancelled";
      pump();
    });
    ups.push(u);
    setState(u, "queue", "Waiting");
  }

  function addAll(files) {
    for (var i = 0; i < files.length; i++) add(files[i]);
    pump();
  }

  input.addEventListener("change", function () {
    addAll(input.files);
    input.value = "";
  });

  function dragsFiles(e) {
    return e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types, "Files") >= 0;
  }
  document.addEventListener("dragover", function (e) {
    if (!dragsFiles(e)) return;
    e.preventDefault();
    document.body.classList.add("drag");
  });
  document.addEventListener("dragleave", function (e) {
    if (!e.relatedTarget) document.body.classList.remove("drag");
  });
  document.addEventListener("drop", function (e) {
    if (!dragsFiles(e)) return;
    e.preventDefault();
    document.body.classList.remove("drag");
    var files = [], items = e.dataTransfer.items || [];
    for (var i = 0; i < items.length; i++) {
      var entry = items[i].webkitGetAsEntry && items[i].webkitGetAsEntry();
      if (entry && entry.isDirectory) live.textContent = entry.name + ": folders cannot be uploaded, only files";
      else if (items[i].kind === "file") files.push(items[i].getAsFile());
    }
    addAll(items.length ? files : e.dataTransfer.files);
  });

  // Back online: retry now rather than at the end of the back-off.
  addEventListener("online", function () {
    ups.forEach(function (u) { if (u.wake) u.wake(); });
  });
  addEventListener("beforeunload", function (e) {
    if (ups.some(function (u) { return u.state === "run"; })) e.preventDefault();
  });
})();
