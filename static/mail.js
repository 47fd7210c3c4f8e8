// Mailroom webmail: progressive enhancements. Every page works without this file.
"use strict";
(function () {
  // Times in the reader's own time zone.
  function localTimes(root) {
  root.querySelectorAll("time[datetime]").forEach(function (t) {
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
  }
  localTimes(document);

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

  // Folders collapse on narrow screens (the page sends them open, for use without script).
  var folderMenu = document.getElementById("folder-menu");
  if (folderMenu && window.matchMedia("(max-width: 48rem)").matches) folderMenu.open = false;

  // The reading pane (wide screens): a message opened from the list shows beside it; the
  // link still works as a link (new tab, no script, narrow screens).
  var split = document.getElementById("list-and-pane");
  var pane = document.getElementById("pane");
  var wide = window.matchMedia("(min-width: 1100px)");
  // Opt-in (remembered by this browser): with it off, a row's link is a plain link.
  var paneToggle = document.getElementById("pane-toggle");
  var paneWanted = false;
  try { paneWanted = window.localStorage.getItem("mailroom-pane") === "1"; } catch (e) { /* storage off */ }
  var paneOn = function () { return split && pane && wide.matches && paneWanted; };
  function syncToggle() {
    if (!paneToggle) return;
    paneToggle.hidden = !wide.matches;
    paneToggle.setAttribute("aria-pressed", paneWanted ? "true" : "false");
    if (!paneOn() && split) { split.classList.remove("pane-on"); pane.hidden = true; }
  }
  if (paneToggle) {
    paneToggle.addEventListener("click", function () {
      paneWanted = !paneWanted;
      try { window.localStorage.setItem("mailroom-pane", paneWanted ? "1" : "0"); } catch (e) { /* storage off */ }
      syncToggle();
    });
    wide.addEventListener("change", syncToggle);
    syncToggle();
  }
  var loadToken = 0;
  function showInPane(row) {
    var link = row && row.querySelector("a.msg-link");
    if (!link || !paneOn()) return false;
    var token = ++loadToken;
    split.classList.add("pane-on");
    pane.hidden = false;
    rows.forEach(function (r) { r.classList.toggle("shown", r === row); });
    fetch(link.href, { credentials: "same-origin" }).then(function (res) {
      if (!res.ok) throw new Error(res.status);
      return res.text();
    }).then(function (html) {
      if (token !== loadToken) return;
      var doc = new DOMParser().parseFromString(html, "text/html");
      var article = doc.querySelector("section.main article");
      if (!article) throw new Error("no message");
      pane.replaceChildren(document.importNode(article, true));
      pane.scrollTop = 0;
      row.classList.remove("unread");
      localTimes(pane);
    }).catch(function () { if (token === loadToken) window.location = link.href; });
    return true;
  }
  if (split) {
    split.addEventListener("click", function (e) {
      var link = e.target.closest("#messages a.msg-link");
      if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      var row = link.closest("li");
      if (showInPane(row)) {
        e.preventDefault();
        cursor = rows.indexOf(row);
        rows.forEach(function (r, n) { r.classList.toggle("cursor", n === cursor); });
      }
    });
  }

  // Keyboard: j/k move (and show in the pane), Enter or o opens, u back to the list,
  // c compose, r reply, / search, x select, # delete.
  var rows = Array.prototype.slice.call(document.querySelectorAll("#messages li"));
  var cursor = -1;
  function focusRow(i) {
    if (!rows.length) return;
    cursor = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, n) { r.classList.toggle("cursor", n === cursor); });
    rows[cursor].scrollIntoView({ block: "nearest" });
    showInPane(rows[cursor]);
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    var go = function (id) { var a = document.getElementById(id); if (a) { e.preventDefault(); a.click(); } };
    switch (e.key) {
      case "j": focusRow(cursor + 1); break;
      case "k": focusRow(cursor - 1); break;
      case "o": case "Enter":
        if (cursor >= 0 && rows[cursor]) { e.preventDefault(); window.location = rows[cursor].querySelector("a.msg-link").href; }
        break;
      case "u":
        var back = document.querySelector(".crumbs a");
        if (back && !document.getElementById("messages")) { e.preventDefault(); window.location = back.href; }
        break;
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
    // Not while choosing messages, nor while Undo is offered (a reload would lose it).
    var busy = function () {
      return leaving || document.querySelector("#messages input[name=msg]:checked, #messages input[name=conv]:checked") !== null ||
        (undoForm !== null && !undoForm.hidden);
    };
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
