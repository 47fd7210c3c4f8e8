// Mailroom webmail: progressive enhancements. Every page works without this file.
"use strict";
(function () {
  // Times in the reader's own time zone.
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) return;
    var now = new Date();
    if (t.hasAttribute("data-long")) {
      t.textContent = d.toLocaleString();
    } else if (d.toDateString() === now.toDateString()) {
      t.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    } else if (d.getFullYear() === now.getFullYear()) {
      t.textContent = d.toLocaleDateString([], { month: "short", day: "numeric" });
    } else {
      t.textContent = d.toLocaleDateString();
    }
  });

  // Undo after a move or delete: offered for a few seconds (the server refuses it later).
  var undoForm = document.getElementById("undo-form");
  if (undoForm) {
    var seconds = parseInt(undoForm.getAttribute("data-seconds"), 10) || 10;
    setTimeout(function () { undoForm.hidden = true; }, seconds * 1000);
    // The token is spent or stale once the page is reloaded: keep it out of the history.
    if (window.history && history.replaceState) {
      var url = new URL(window.location.href);
      url.searchParams.delete("undo");
      history.replaceState(null, "", url.pathname + url.search);
    }
  }

  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      document.querySelectorAll("#messages input[name=msg]").forEach(function (c) { c.checked = selectAll.checked; });
    });
  }

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Keyboard: j/k move, Enter or o opens, c compose, r reply, / search, x select, # delete.
  var rows = Array.prototype.slice.call(document.querySelectorAll("#messages li"));
  var cursor = -1;
  function focusRow(i) {
    if (!rows.length) return;
    cursor = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, n) { r.classList.toggle("cursor", n === cursor); });
    rows[cursor].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    var go = function (id) { var a = document.getElementById(id); if (a) { e.preventDefault(); a.click(); } };
    switch (e.key) {
      case "j": focusRow(cursor + 1); break;
      case "k": focusRow(cursor - 1); break;
      case "o": case "Enter": if (cursor >= 0) { e.preventDefault(); rows[cursor].querySelector("a").click(); } break;
      case "x": if (cursor >= 0) { var c = rows[cursor].querySelector("input"); c.checked = !c.checked; } break;
      case "c": e.preventDefault(); window.location = "/mail/compose"; break;
      case "r": go("reply"); break;
      case "/": e.preventDefault(); var s = document.getElementById("search-box"); if (s) s.focus(); break;
      case "#": go("delete"); break;
    }
  });

  // New mail and changes from elsewhere: refresh the list (not while the reader is choosing
  // messages). Without EventSource, or when it keeps failing, a slow periodic refresh.
  var live = document.getElementById("live");
  if (live) {
    var folder = live.getAttribute("data-folder");
    // Leaving the page (opening a message marks it read, which is itself a change) must not
    // turn into a reload of the list.
    var leaving = false;
    window.addEventListener("beforeunload", function () { leaving = true; });
    document.addEventListener("click", function (e) { if (e.target.closest("a[href], button")) leaving = true; });
    var busy = function () { return leaving || document.querySelector("#messages input[name=msg]:checked") !== null; };
    var timer = null;
    var refresh = function () {
      clearTimeout(timer);
      timer = setTimeout(function () { if (!busy()) window.location.reload(); }, 300);
    };
    if (window.EventSource) {
      var source = new EventSource("/mail/events");
      window.addEventListener("beforeunload", function () { source.close(); });
      var failures = 0;
      source.addEventListener("changed", function (e) {
        if (e.data === folder || e.data === "all" || e.data === "folders") refresh();
        else document.querySelectorAll("[data-folder='" + e.data + "']").forEach(function (a) { a.classList.add("changed"); });
      });
      source.onerror = function () { if (++failures > 5) { source.close(); setInterval(refresh, 60000); } };
    } else {
      setInterval(refresh, 60000);
    }
  }
})();
