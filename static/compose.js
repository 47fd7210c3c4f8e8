// Mailroom webmail, compose: the rich-text editor, autosave of the draft, and address
// suggestions from the contacts. The form works without this file (plain text, Save draft).
"use strict";
(function () {
  var form = document.getElementById("compose-form");
  if (!form) return;
  var body = document.getElementById("body");
  var bodyHtml = document.getElementById("body-html");
  var mode = document.getElementById("mode");
  var draftRef = document.getElementById("draft-ref");
  var forwardOf = document.getElementById("forward-of");
  var kept = document.getElementById("kept");
  var files = document.getElementById("attachment");
  var savedAt = document.getElementById("saved-at");
  var PREF = "mailroom.compose.mode";

  // ---------------------------------------------------------------- text <-> HTML
  function escapeHtml(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  // Plain text as editor HTML: a line per <div>, "> " lines as nested <blockquote>s.
  function textToHtml(text) {
    var out = "", depth = 0;
    text.replace(/\r\n/g, "\n").split("\n").forEach(function (line) {
      var level = 0;
      while (line.charAt(0) === ">") { level++; line = line.slice(1); if (line.charAt(0) === " ") line = line.slice(1); }
      while (depth < level) { out += "<blockquote>"; depth++; }
      while (depth > level) { out += "</blockquote>"; depth--; }
      out += "<div>" + (line === "" ? "<br>" : escapeHtml(line)) + "</div>";
    });
    while (depth-- > 0) out += "</blockquote>";
    return out;
  }

  // The editor's content as plain text, by the same rules as the server's (rich.rs): lists as
  // "- " or "1. ", links as "text <url>", quotes as "> ".
  function htmlToText(root) {
    var lines = [], line = "", quote = 0, marker = "";
    function prefix() { return quote ? new Array(quote + 1).join(">") + " " : ""; }
    function breakLine(force) {
      if (line !== "" || force) lines.push((prefix() + marker + line).replace(/\s+$/, ""));
      line = ""; marker = "";
    }
    function walk(node, lists) {
      node.childNodes.forEach(function (n) {
        if (n.nodeType === 3) { line += n.nodeValue.replace(/\s+/g, " ").replace(/\u00a0/g, " "); return; }
        if (n.nodeType !== 1) return;
        var tag = n.tagName.toLowerCase();
        if (tag === "br") { breakLine(true); return; }
        var block = /^(div|p|h[1-6]|pre|table|tr|blockquote|ul|ol|li)$/.test(tag);
        if (block && line !== "") breakLine(false);
        if (tag === "blockquote") { quote++; walk(n, lists); breakLine(false); quote--; return; }
        if (tag === "ul" || tag === "ol") { walk(n, lists.concat([{ ordered: tag === "ol", n: 0 }])); return; }
        if (tag === "li") {
          var l = lists[lists.length - 1];
          var indent = new Array(Math.max(lists.length, 1)).join("  ");
          marker = indent + (l && l.ordered ? (++l.n) + ". " : "- ");
          walk(n, lists); breakLine(false); return;
        }
        if (tag === "a") {
          var before = line.length;
          walk(n, lists);
          var text = line.slice(before).trim(), href = n.getAttribute("href") || "";
          if (href && text !== href && text !== href.replace(/^mailto:/, "")) line += " <" + href + ">";
          return;
        }
        walk(n, lists);
        if (block) { breakLine(false); if (tag === "p") lines.push(prefix().trim()); }
      });
    }
    walk(root, []);
    breakLine(false);
    while (lines.length && lines[lines.length - 1] === "") lines.pop();
    return lines.join("\n");
  }

  // ---------------------------------------------------------------- rich-text editor
  var editor = document.createElement("div");
  editor.className = "editor";
  editor.id = "editor";
  editor.contentEditable = "true";
  editor.setAttribute("role", "textbox");
  editor.setAttribute("aria-multiline", "true");
  editor.setAttribute("aria-labelledby", "body-label");
  editor.hidden = true;
  // mail.js's one-letter shortcuts listen on the document: typing here is not a shortcut.
  editor.addEventListener("keydown", function (e) { e.stopPropagation(); });

  var tools = document.createElement("div");
  tools.className = "editor-tools";
  tools.setAttribute("role", "toolbar");
  tools.setAttribute("aria-label", "Formatting");
  function tool(label, title, id, action) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.title = title;
    // "B" and "I" say little to a screen reader; longer labels are their own name, so what is
    // read out matches what is seen (axe: label-content-name-mismatch).
    if (label.length === 1) b.setAttribute("aria-label", title);
    b.id = id;
    b.className = "rich-only";
    // Keep the editor's selection: act on mousedown, not after the button takes focus.
    b.addEventListener("mousedown", function (e) { e.preventDefault(); });
    b.addEventListener("click", function () { editor.focus(); action(); changed(); });
    tools.appendChild(b);
    return b;
  }
  function exec(command, value) { document.execCommand(command, false, value); }
  tool("B", "Bold", "tool-bold", function () { exec("bold"); });
  tool("I", "Italic", "tool-italic", function () { exec("italic"); });
  tool("• List", "Bulleted list", "tool-ul", function () { exec("insertUnorderedList"); });
  tool("1. List", "Numbered list", "tool-ol", function () { exec("insertOrderedList"); });
  tool("Link", "Link", "tool-link", function () {
    var url = window.prompt("Link to (https://…)", "https://");
    if (url && /^(https?:|mailto:)/i.test(url.trim())) exec("createLink", url.trim());
  });
  tool("Quote", "Quote", "tool-quote", function () { exec("formatBlock", "blockquote"); });
  var spacer = document.createElement("span");
  spacer.className = "spacer";
  tools.appendChild(spacer);
  var toggle = document.createElement("button");
  toggle.type = "button";
  toggle.id = "mode-toggle";
  toggle.addEventListener("click", function () {
    setMode(mode.value === "rich" ? "plain" : "rich");
    try { window.localStorage.setItem(PREF, mode.value); } catch (e) { /* private mode */ }
    changed();
  });
  tools.appendChild(toggle);
  body.parentNode.insertBefore(tools, body);
  body.parentNode.insertBefore(editor, body);

  function setMode(m) {
    var rich = m === "rich";
    if (rich && mode.value !== "rich") {
      // From the textarea when it was being edited; the server's HTML on first load.
      editor.innerHTML = started ? textToHtml(body.value) : (bodyHtml.value || textToHtml(body.value));
    } else if (!rich && mode.value === "rich") {
      body.value = htmlToText(editor);
    }
    mode.value = rich ? "rich" : "plain";
    editor.hidden = !rich;
    body.hidden = rich;
    tools.querySelectorAll(".rich-only").forEach(function (b) { b.hidden = !rich; });
    toggle.textContent = rich ? "Plain text" : "Rich text";
    toggle.title = rich ? "Write plain text (formatting is dropped)" : "Write with formatting";
    var label = document.getElementById("body-label");
    if (rich) label.removeAttribute("for"); else label.setAttribute("for", "body");
  }
  // The fields the server reads, from the editor.
  function sync() {
    if (mode.value === "rich") {
      bodyHtml.value = editor.innerHTML;
      body.value = htmlToText(editor);
    }
  }
  var started = false;
  var initial = mode.value;
  if (initial === "") {
    // A new message: the mode chosen last time (plain text until rich text is chosen once).
    var pref = "plain";
    try { pref = window.localStorage.getItem(PREF) || "plain"; } catch (e) { /* private mode */ }
    initial = pref;
  }
  mode.value = "plain";
  setMode(initial);
  started = true;

  // ---------------------------------------------------------------- autosave
  var url = form.getAttribute("data-autosave");
  var timer = null, inflight = null, dirty = false, generation = 0, submitting = false;

  function changed() {
    dirty = true;
    generation++;
    clearTimeout(timer);
    timer = setTimeout(function () { save(false); }, 3000);
  }
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  editor.addEventListener("input", changed);

  function showKept(list) {
    kept.querySelectorAll(".kept-file").forEach(function (l) { l.remove(); });
    list.forEach(function (a) {
      var label = document.createElement("label");
      label.className = "kept-file";
      var box = document.createElement("input");
      box.type = "checkbox";
      box.name = "keep";
      box.value = String(a.index);
      box.checked = true;
      var name = document.createElement("bdi");
      name.textContent = a.name;
      var size = document.createElement("small");
      size.textContent = a.size;
      label.appendChild(box);
      label.appendChild(document.createTextNode(" "));
      label.appendChild(name);
      label.appendChild(document.createTextNode(" "));
      label.appendChild(size);
      kept.appendChild(label);
    });
    kept.hidden = list.length === 0;
  }

  function time(unix) {
    return new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // Saves the draft; `leaving`: the page is going away (keepalive, and without the files,
  // which keepalive requests cannot carry).
  function save(leaving) {
    if (!dirty || submitting && !leaving) return inflight || Promise.resolve();
    if (inflight) {
      // After the save in flight, with what changed since.
      return inflight.then(function () { return save(leaving); });
    }
    clearTimeout(timer);
    sync();
    var data = new FormData(form);
    data.delete("action");
    var sentFiles = files.files.length > 0 && !leaving;
    if (!sentFiles) data.delete("attachment");
    var at = generation;
    inflight = fetch(url, { method: "POST", body: data, credentials: "same-origin", keepalive: leaving })
      .then(function (r) {
        return r.json().catch(function () { return { error: "The draft could not be saved (" + r.status + ")." }; })
          .then(function (j) { if (!r.ok && !j.error) j.error = "The draft could not be saved."; return j; });
      })
      .then(function (j) {
        if (j.error) { savedAt.textContent = j.error; return; }
        draftRef.value = j.draft;
        // The forwarded message and the files are the draft's attachments now.
        forwardOf.value = "";
        if (sentFiles) files.value = "";
        showKept(j.attachments || []);
        savedAt.textContent = "Saved at " + time(j.saved);
        if (generation === at) dirty = false;
      })
      .catch(function () { savedAt.textContent = "Not saved: the server could not be reached."; })
      .then(function () { inflight = null; });
    return inflight;
  }

  form.addEventListener("submit", function (e) {
    sync();
    if (inflight) {
      // The form must name the draft the save in flight is making, or Send would leave it
      // behind (and the files kept in it would be missing): submit once it is done.
      e.preventDefault();
      var button = e.submitter;
      inflight.then(function () { submitting = true; form.requestSubmit(button || undefined); });
      return;
    }
    submitting = true;
    clearTimeout(timer);
  });
  function leave() { if (dirty && !submitting) save(true); }
  window.addEventListener("pagehide", leave);
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") leave(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted) submitting = false; });

  // ---------------------------------------------------------------- address suggestions
  document.querySelectorAll("input[data-suggest]").forEach(function (input) {
    var list = document.createElement("ul");
    list.className = "suggestions";
    list.id = input.id + "-suggestions";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    input.parentNode.insertBefore(list, input.nextSibling);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);
    var items = [], active = -1, wait = null, asked = 0;

    // The address being typed: from the last separator before the caret.
    function token() {
      var caret = input.selectionStart == null ? input.value.length : input.selectionStart;
      var before = input.value.slice(0, caret);
      var start = Math.max(before.lastIndexOf(","), before.lastIndexOf(";")) + 1;
      var after = input.value.slice(caret);
      var end = after.search(/[,;]/);
      return { start: start, end: end < 0 ? input.value.length : caret + end, text: before.slice(start).trim() };
    }
    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function highlight(i) {
      active = i;
      list.querySelectorAll("li").forEach(function (li, n) { li.setAttribute("aria-selected", n === i ? "true" : "false"); });
      if (i >= 0) input.setAttribute("aria-activedescendant", list.id + "-" + i);
    }
    function pick(i) {
      var s = items[i];
      if (!s) return;
      var t = token();
      var head = input.value.slice(0, t.start).replace(/\s*$/, "");
      var tail = input.value.slice(t.end).replace(/^[,;]?\s*/, "");
      var value = (head ? head + " " : "") + s.value + ", ";
      input.value = value + tail;
      input.setSelectionRange(value.length, value.length);
      close();
      changed();
    }
    function show(found) {
      items = found;
      list.textContent = "";
      found.forEach(function (s, i) {
        var li = document.createElement("li");
        li.id = list.id + "-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        if (s.name) {
          var b = document.createElement("bdi");
          b.textContent = s.name;
          li.appendChild(b);
          li.appendChild(document.createTextNode(" "));
          var small = document.createElement("small");
          small.textContent = s.email;
          li.appendChild(small);
        } else {
          li.textContent = s.email;
        }
        li.addEventListener("mousedown", function (e) { e.preventDefault(); pick(i); });
        list.appendChild(li);
      });
      if (found.length) {
        list.hidden = false;
        input.setAttribute("aria-expanded", "true");
        highlight(-1);
      } else {
        close();
      }
    }
    input.addEventListener("input", function () {
      clearTimeout(wait);
      var t = token();
      if (t.text.length < 1 || t.text.indexOf("<") >= 0) { close(); return; }
      wait = setTimeout(function () {
        var n = ++asked;
        fetch("/mail/contacts/suggest?q=" + encodeURIComponent(t.text), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (found) { if (n === asked) show(found); })
          .catch(function () { close(); });
      }, 150);
    });
    input.addEventListener("keydown", function (e) {
      if (list.hidden) return;
      if (e.key === "ArrowDown") { e.preventDefault(); highlight((active + 1) % items.length); }
      else if (e.key === "ArrowUp") { e.preventDefault(); highlight(active <= 0 ? items.length - 1 : active - 1); }
      else if ((e.key === "Enter" || e.key === "Tab") && active >= 0) { e.preventDefault(); pick(active); }
      else if (e.key === "Escape") { e.preventDefault(); close(); }
    });
    input.addEventListener("blur", function () { setTimeout(close, 150); });
  });
})();
