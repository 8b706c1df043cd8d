/*! bookchat widget — grounded answers about this documentation site.
 *
 * One self-contained script: no build step, no external requests. Include it with
 *   <script src="https://chat.example.com/widget.js" defer data-title="Ask the docs"></script>
 * or, on Docusaurus, with the `docusaurus-plugin-bookchat` package (clients/ in the bookchat repo).
 * Options (data-* on the script tag, or window.BookchatConfig = {...}, which wins):
 *   apiUrl (data-api-url)           API origin; default: the origin this script was served from
 *   title (data-title)              panel heading
 *   placeholder (data-placeholder)  input placeholder
 *   launcherLabel (data-launcher-label)  text on the launcher button; default "Ask AI"
 *   accentColor (data-accent-color) any CSS color; default: the site's --ifm-color-primary
 *   position (data-position)        "bottom-right" (default) or "bottom-left"
 *   greeting (data-greeting)        first line shown in an empty conversation
 *   suggestedQuestions (data-suggested-questions)  questions offered on an empty conversation:
 *                                   an array, or in the attribute a JSON array or "one|two|three"
 *   shortcut (data-shortcut)        key that opens/closes the chat: "mod+i" (default: ⌘I on Apple
 *                                   systems, Ctrl+I elsewhere, as Mintlify's assistant), any
 *                                   "ctrl+shift+k"-style chord, or "false" for none. Ctrl/⌘+K is
 *                                   left to the site's search (Docusaurus' DocSearch owns it).
 *   selectionButton (data-selection-button)  "false" hides the "Ask about this" button
 * Everything the server sends is text: it is escaped before any markup is added.
 */
(function () {
  "use strict";

  var VERSION = "0.2.4";
  if (window.Bookchat && window.Bookchat.version) return; // included twice: keep the first

  var STORAGE_KEY = "bookchat:session";
  var FEEDBACK_KEY = "bookchat:feedback";
  var POLL_WAIT_S = 25;
  var MAX_SELECTION = 4000;
  var MAX_SUGGESTIONS = 6;
  var IS_APPLE = /Mac|iPhone|iPad|iPod/.test((navigator.userAgentData && navigator.userAgentData.platform) ||
    navigator.platform || "");

  // ---------------------------------------------------------------- configuration

  function findOwnScript() {
    if (document.currentScript) return document.currentScript;
    var scripts = document.getElementsByTagName("script");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/widget(\/[^/?#]+)?\.js(\?|#|$)/.test(scripts[i].src || "")) return scripts[i];
    }
    return null;
  }

  function readConfig(script) {
    var data = (script && script.dataset) || {};
    var fromWindow = window.BookchatConfig || {};
    var origin = location.origin;
    if (script && script.src) {
      try { origin = new URL(script.src, location.href).origin; } catch (e) { /* keep page origin */ }
    }
    function pick(name, fallback) {
      if (fromWindow[name] !== undefined && fromWindow[name] !== null) return fromWindow[name];
      if (data[name] !== undefined && data[name] !== "") return data[name];
      return fallback;
    }
    var position = String(pick("position", "bottom-right"));
    return {
      apiUrl: String(pick("apiUrl", origin)).replace(/\/+$/, ""),
      title: String(pick("title", "Ask the docs")),
      placeholder: String(pick("placeholder", "Ask a question about the docs…")),
      launcherLabel: String(pick("launcherLabel", "Ask AI")),
      accentColor: pick("accentColor", ""),
      position: position === "bottom-left" ? "bottom-left" : "bottom-right",
      greeting: String(pick("greeting",
        "Hi! Ask me anything about these docs. I answer only from the documentation and link to the pages I used.")),
      suggestedQuestions: readQuestions(pick("suggestedQuestions", [])),
      shortcut: parseShortcut(pick("shortcut", "mod+i")),
      selectionButton: String(pick("selectionButton", "true")) !== "false"
    };
  }

  /** An array, a JSON array string, or "one|two": at most MAX_SUGGESTIONS non-empty strings. */
  function readQuestions(value) {
    if (typeof value === "string") {
      var text = value.trim();
      if (text.charAt(0) === "[") {
        try { value = JSON.parse(text); } catch (e) { value = []; }
      } else value = text ? text.split("|") : [];
    }
    if (!Array.isArray(value)) return [];
    return value.map(function (q) { return String(q == null ? "" : q).trim(); })
      .filter(Boolean).slice(0, MAX_SUGGESTIONS);
  }

  /** "mod+i", "ctrl+shift+k", "/" → {key, ctrl, meta, shift, alt, label, aria}; null for none. */
  function parseShortcut(value) {
    var text = String(value == null ? "" : value).trim().toLowerCase();
    if (!text || text === "false" || text === "none") return null;
    var parts = text === "+" ? ["+"] : text.split("+");
    var key = parts.pop();
    if (!key) return null;
    var s = { key: key, ctrl: false, meta: false, shift: false, alt: false };
    parts.forEach(function (p) {
      if (p === "mod") { if (IS_APPLE) s.meta = true; else s.ctrl = true; }
      else if (p === "ctrl" || p === "control") s.ctrl = true;
      else if (p === "cmd" || p === "meta" || p === "command") s.meta = true;
      else if (p === "shift") s.shift = true;
      else if (p === "alt" || p === "option") s.alt = true;
    });
    var shown = key.length === 1 ? key.toUpperCase() : key.charAt(0).toUpperCase() + key.slice(1);
    var label = [], aria = [];
    if (s.ctrl) { label.push(IS_APPLE ? "⌃" : "Ctrl+"); aria.push("Control"); }
    if (s.alt) { label.push(IS_APPLE ? "⌥" : "Alt+"); aria.push("Alt"); }
    if (s.shift) { label.push(IS_APPLE ? "⇧" : "Shift+"); aria.push("Shift"); }
    if (s.meta) { label.push(IS_APPLE ? "⌘" : "Meta+"); aria.push("Meta"); }
    s.label = label.join("") + shown;
    aria.push(shown);
    s.aria = aria.join("+");
    return s;
  }

  var config = readConfig(findOwnScript());
  // ---------------------------------------------------------------- small utilities

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  /** Only http(s) links (and same-page relative ones) ever become hrefs. */
  function safeUrl(url) {
    if (typeof url !== "string" || !url) return null;
    try {
      var parsed = new URL(url, location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function apiUrl(pathOrUrl) {
    return new URL(pathOrUrl, config.apiUrl + "/").href;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, key) || attrs[key] == null) continue;
        if (key === "text") node.textContent = attrs[key];
        else if (key === "className") node.className = attrs[key];
        else node.setAttribute(key, attrs[key]);
      }
    }
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function storageGet(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function storageSet(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* private mode: the session simply does not persist */ }
  }

  function retryAfterSeconds(response) {
    var header = response.headers.get("Retry-After");
    if (!header) return null;
    var seconds = Number(header);
    if (!isNaN(seconds)) return Math.max(1, Math.ceil(seconds));
    var date = Date.parse(header);
    return isNaN(date) ? null : Math.max(1, Math.ceil((date - Date.now()) / 1000));
  }

  function nextFrame(fn) {
    return window.requestAnimationFrame ? window.requestAnimationFrame(fn) : setTimeout(fn, 16);
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(36).slice(2);
  }

  // ---------------------------------------------------------------- Markdown, safely

  var MARKERS_ONLY = /^\s*(\[\d{1,3}\]\s*)+$/;

  /**
   * A deliberately tiny Markdown renderer. Every piece of source text is HTML-escaped
   * first; markup is only added around escaped text. Supports paragraphs, line breaks,
   * `code`, fenced code (with a language label and a copy button), **bold**, *emphasis*,
   * bullet and numbered lists, headings (as bold lines), http(s) links, and [n] citation
   * markers: `citationHref(n)` returns {href, label, n} (n: the number shown, which is the
   * source's place in the sources list) or null (then the marker is plain text).
   * A line holding only markers belongs to the block above it (the extractive model cites a
   * code block on the line after it): it is attached there instead of standing alone.
   */
  function renderMarkdown(source, citationHref) {
    var codes = []; // code spans (HTML) and fenced blocks ({code, lang, cites[]}), by placeholder
    var text = swapOutCode(String(source || ""), codes);
    var lines = text.split("\n");
    var blocks = []; // strings, or {code, lang, cites[]} for fenced code
    var paragraph = [];
    var list = null; // {type: "ul"|"ol", items: []}

    function flushParagraph() {
      if (paragraph.length) {
        blocks.push("<p>" + paragraph.map(function (l) { return inline(l, citationHref); }).join("<br>") + "</p>");
        paragraph = [];
      }
    }
    function flushList() {
      if (list) {
        blocks.push("<" + list.type + ">" + list.items.map(function (item) {
          return "<li>" + inline(item, citationHref) + "</li>";
        }).join("") + "</" + list.type + ">");
        list = null;
      }
    }
    function attachMarkers(line) {
      var markers = line.trim();
      if (paragraph.length) { paragraph[paragraph.length - 1] += " " + markers; return true; }
      if (list) { list.items[list.items.length - 1] += " " + markers; return true; }
      var last = blocks[blocks.length - 1];
      if (last && typeof last === "object") { last.cites.push(inline(markers, citationHref)); return true; }
      if (typeof last === "string") {
        var close = /(<\/li><\/[ou]l>|<\/strong><\/p>|<\/p>)$/.exec(last);
        if (close) {
          blocks[blocks.length - 1] = last.slice(0, close.index) + " " + inline(markers, citationHref) + close[1];
          return true;
        }
      }
      return false;
    }

    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      var fenced = /^\u0001(\d+)\u0001$/.exec(line);
      if (fenced) {
        flushParagraph(); flushList();
        blocks.push(codes[Number(fenced[1])]);
        continue;
      }
      if (!line.trim()) { flushParagraph(); flushList(); continue; }
      if (MARKERS_ONLY.test(line) && attachMarkers(line)) continue;
      var bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
      var numbered = /^\s*\d{1,3}[.)]\s+(.*)$/.exec(line);
      if (bullet || numbered) {
        var type = bullet ? "ul" : "ol";
        flushParagraph();
        if (list && list.type !== type) flushList();
        if (!list) list = { type: type, items: [] };
        list.items.push((bullet || numbered)[1]);
        continue;
      }
      if (list && /^\s{2,}\S/.test(line)) { // continuation of a list item
        list.items[list.items.length - 1] += " " + line.trim();
        continue;
      }
      flushList();
      var heading = /^\s*#{1,6}\s+(.*)$/.exec(line);
      if (heading) {
        flushParagraph();
        blocks.push('<p class="heading"><strong>' + inline(heading[1], citationHref) + "</strong></p>");
        continue;
      }
      paragraph.push(line);
    }
    flushParagraph(); flushList();
    return blocks.map(function (block) {
      if (typeof block === "string") return block;
      return '<div class="code"><div class="code-bar"><span class="lang">' + escapeHtml(block.lang || "text") +
        "</span>" + (block.cites.length ? '<span class="code-cites">' + block.cites.join(" ") + "</span>" : "") +
        '<button class="copy-code" type="button" aria-label="Copy code">Copy</button></div>' +
        "<pre><code>" + escapeHtml(block.code) + "</code></pre></div>";
    }).join("").replace(/\u0000(\d+)\u0000/g, function (_, n) { return codes[Number(n)]; });
  }

  // What is code, decided exactly as the server's link policy decides it (shared/link_syntax.py:
  // CODE read left to right, then CODE_TAIL after the last code) on the text exactly as sent:
  // the server leaves links inside code as written, so what it reads as code is shown as code
  // here, never as a link (issue 30). tests/unit/test_widget_code.py runs both on one corpus.
  var CODE_FENCE = /[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n(?:[^]*?\n)??[ \t]{0,3}\1[`~]*[ \t]*(?=\n|$)/y;
  var CODE_SPAN = /(`+)(?!`)[^]*?[^`]\1(?!`)/y;
  var CODE_TAIL = /(^|\n)[ \t]{0,3}(?:`{3,}|~{3,})[^\n]*(?:\n|$)/;

  /** `source` with each code span replaced by "\u0000n\u0000" and each fenced block by a line
   * "\u0001n\u0001" (n: its place in `codes`), the prose between them with "\r\n" and "\r"
   * read as "\n" and NULs dropped. */
  function swapOutCode(source, codes) {
    var out = "", last = 0, i = 0;
    function prose(text) { return text.replace(/\r\n?/g, "\n").replace(/[\u0000\u0001]/g, ""); }
    function fence(whole, closed) {
      var lines = whole.replace(/\r\n?/g, "\n").replace(/\u0000/g, "").split("\n");
      var info = lines[0].replace(/^[ \t]*(`+|~+)/, "").trim();
      var lang = (/^[\w+#.-]{1,24}/.exec(info) || [""])[0]; // ```py title="x" → py
      var body = lines.slice(1, closed ? -1 : lines.length);
      codes.push({ code: body.join("\n"), lang: lang, cites: [] });
      return "\n\u0001" + (codes.length - 1) + "\u0001\n";
    }
    while (i < source.length) {
      var ch = source[i], match = null, swapped = "";
      if ((i === 0 || source[i - 1] === "\n") && " \t`~".indexOf(ch) >= 0) {
        CODE_FENCE.lastIndex = i;
        if ((match = CODE_FENCE.exec(source))) swapped = fence(match[0], true);
      }
      if (!match && ch === "`") {
        CODE_SPAN.lastIndex = i;
        if ((match = CODE_SPAN.exec(source))) {
          var inner = match[0].slice(match[1].length, match[0].length - match[1].length);
          codes.push("<code>" + escapeHtml(inner.replace(/\r\n?|\n/g, " ").replace(/\u0000/g, "")) + "</code>");
          swapped = "\u0000" + (codes.length - 1) + "\u0000";
        }
      }
      if (!match) { i++; continue; }
      out += prose(source.slice(last, i)) + swapped;
      i = last = i + match[0].length;
    }
    var tail = source.slice(last), open = CODE_TAIL.exec(tail);
    if (!open) return out + prose(tail);
    var start = open.index + open[1].length;
    return out + prose(tail.slice(0, start)) + fence(tail.slice(start), false);
  }

  function inline(source, citationHref) {
    // Code spans were swapped out by swapOutCode ("\u0000n\u0000"), so nothing in them is read.
    var text = escapeHtml(source);
    text = text.replace(/\*\*(?=\S)([^*]*?\S)\*\*/g, "<strong>$1</strong>");
    text = text.replace(/(^|[^*\w])\*(?=\S)([^*]*?\S)\*(?!\w)/g, "$1<em>$2</em>");
    // [label](http...) — the label and URL were escaped above; the URL is re-checked.
    text = text.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, function (match, label, url) {
      var href = safeUrl(url.replace(/&amp;/g, "&"));
      if (!href) return label;
      return '<a href="' + escapeHtml(href) + '" target="_blank" rel="noopener noreferrer">' + label + "</a>";
    });
    text = text.replace(/ ?\[(\d{1,3})\]/g, function (_, n) {
      var target = citationHref ? citationHref(Number(n)) : null;
      if (!target) return '<sup class="marker">' + n + "</sup>";
      var shown = target.n || n;
      if (!target.href) return '<sup class="marker">' + shown + "</sup>";
      return '<a class="marker" href="' + escapeHtml(target.href) + '" target="_blank" rel="noopener" title="' +
        escapeHtml(target.label) + '" aria-label="Source ' + shown + ": " + escapeHtml(target.label) + '">' +
        shown + "</a>";
    });
    return text;
  }

  /**
   * Map [n] markers to citations and to the numbers the reader sees. Markers are the
   * server's passage numbers; the sources list is in the order first cited and is shown
   * numbered 1..k, so a marker shows its source's place in that list (never the passage
   * number, which would disagree with the list). With a `number` field the mapping is exact;
   * without it, the i-th distinct marker maps to the i-th citation when the counts agree.
   */
  function citationResolver(answer, citations) {
    if (!citations || !citations.length) return null;
    var byNumber = {};
    var hasNumbers = citations.every(function (c) { return typeof c.number === "number"; });
    if (hasNumbers) {
      citations.forEach(function (c, i) { byNumber[c.number] = { c: c, n: i + 1 }; });
    } else {
      var seen = distinctMarkers(answer);
      if (seen.length !== citations.length) return null;
      seen.forEach(function (n, i) { byNumber[n] = { c: citations[i], n: i + 1 }; });
    }
    return function (n) {
      var hit = byNumber[n];
      var href = hit && safeUrl(hit.c.url);
      return href ? { href: href, label: citationLabel(hit.c), n: hit.n } : null;
    };
  }

  /** While streaming (no citations yet): number markers in order of first appearance, the
   * order the sources list will have, so the numbers do not change when the answer settles. */
  function streamingResolver(answer) {
    var seen = distinctMarkers(answer);
    return function (n) {
      var at = seen.indexOf(String(n));
      return at < 0 ? null : { href: null, label: "", n: at + 1 };
    };
  }

  function distinctMarkers(answer) {
    var seen = [];
    String(answer || "").replace(/\[(\d{1,3})\]/g, function (whole, n) {
      if (seen.indexOf(n) < 0) seen.push(n);
      return whole;
    });
    return seen;
  }

  function citationLabel(c) {
    var title = c.title || c.path || "";
    return c.heading && c.heading !== title ? title + " › " + c.heading : title;
  }

  // ---------------------------------------------------------------- styles

  function svg(body) {
    return '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false">' + body + "</svg>";
  }
  var STROKE = 'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"';
  var ICONS = {
    // A speech bubble with a spark: "ask", not "message us".
    launcher: svg('<path d="M20 11.5a7.5 7.5 0 0 1-11 6.6L4 19.5l1.4-4.3A7.5 7.5 0 1 1 20 11.5z" ' + STROKE + '/>' +
      '<path d="M12 7.6l1 2.4 2.4 1-2.4 1-1 2.4-1-2.4-2.4-1 2.4-1z" fill="currentColor"/>'),
    close: svg('<path d="M6 6l12 12M18 6L6 18" ' + STROKE + "/>"),
    send: svg('<path d="M12 19V5M6 11l6-6 6 6" ' + STROKE + "/>"),
    stop: svg('<rect x="7" y="7" width="10" height="10" rx="1.5" fill="currentColor"/>'),
    plus: svg('<path d="M12 5v14M5 12h14" ' + STROKE + "/>"),
    up: svg('<path d="M7 11v9H4.5a.5.5 0 0 1-.5-.5v-8a.5.5 0 0 1 .5-.5zm0 0l4-7.5c1.4 0 2.5 1.2 2.2 2.6L12.6 9H18a2 2 0 0 1 2 2.3l-1.1 6.5A2.6 2.6 0 0 1 16.3 20H7" ' + STROKE + "/>"),
    down: svg('<path d="M7 13V4H4.5a.5.5 0 0 0-.5.5v8a.5.5 0 0 0 .5.5zm0 0l4 7.5c1.4 0 2.5-1.2 2.2-2.6L12.6 15H18a2 2 0 0 0 2-2.3l-1.1-6.5A2.6 2.6 0 0 0 16.3 4H7" ' + STROKE + "/>"),
    copy: svg('<rect x="9" y="9" width="11" height="11" rx="2" ' + STROKE + '/><path d="M5 15V6a2 2 0 0 1 2-2h8" ' + STROKE + "/>"),
    check: svg('<path d="M5 12.5l4.5 4.5L19 7.5" ' + STROKE + "/>"),
    page: svg('<path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z" ' + STROKE + '/><path d="M14 3v5h5M9 13h6M9 17h4" ' + STROKE + "/>"),
    info: svg('<circle cx="12" cy="12" r="9" ' + STROKE + '/><path d="M12 11v5M12 8v.01" ' + STROKE + "/>"),
    warn: svg('<path d="M12 3.5l9.5 16.5h-19z" ' + STROKE + '/><path d="M12 10v4.5M12 17.5v.01" ' + STROKE + "/>"),
    quote: svg('<path d="M5 18c3-1 4-3.5 4-6H5V6h6v6c0 4-2 7-6 8zm9 0c3-1 4-3.5 4-6h-4V6h6v6c0 4-2 7-6 8z" fill="currentColor"/>')
  };

  // Colours and fonts come from Docusaurus' Infima variables when the page has them (so the
  // widget follows any theme, light or dark); the fallbacks are Infima's own defaults.
  var CSS = [
    ":host{--bc-accent:var(--ifm-color-primary,#2e8555);--bc-on-accent:#fff;",
    "--bc-bg:var(--ifm-background-surface-color,#fff);--bc-surface:var(--ifm-color-emphasis-100,#f5f6f7);",
    "--bc-text:var(--ifm-font-color-base,#1c1e21);--bc-muted:var(--ifm-color-emphasis-700,#606770);",
    "--bc-border:var(--ifm-color-emphasis-300,#dadde1);--bc-code-bg:var(--ifm-code-background,#f6f7f8);",
    "--bc-font:var(--ifm-font-family-base,system-ui,-apple-system,'Segoe UI',Roboto,Ubuntu,Cantarell,'Noto Sans',sans-serif);",
    "--bc-mono:var(--ifm-font-family-monospace,ui-monospace,SFMono-Regular,Menlo,Consolas,monospace);",
    "--bc-user:var(--bc-accent);--bc-on-user:var(--bc-on-accent);--bc-error:#b3261e;--bc-error-bg:#fdecea;",
    "--bc-refused-bg:color-mix(in srgb,var(--ifm-color-warning,#e6a700) 9%,var(--bc-bg));--bc-refused-border:color-mix(in srgb,var(--ifm-color-warning,#e6a700) 55%,transparent);",
    "--bc-shadow:0 12px 40px rgba(0,0,0,.18),0 2px 8px rgba(0,0,0,.08);color-scheme:light}",
    ":host([data-theme=dark]){--bc-bg:var(--ifm-background-surface-color,#242526);--bc-surface:var(--ifm-color-emphasis-200,#444950);",
    "--bc-text:var(--ifm-font-color-base,#e3e3e3);--bc-muted:var(--ifm-color-emphasis-700,#dadde1);",
    "--bc-border:var(--ifm-color-emphasis-300,#606770);--bc-code-bg:var(--ifm-code-background,rgba(255,255,255,.1));",
    "--bc-error:#ffb4ab;--bc-error-bg:#3b1c1a;",
    "--bc-shadow:0 12px 40px rgba(0,0,0,.55),0 2px 8px rgba(0,0,0,.4);color-scheme:dark}",
    "*,*::before,*::after{box-sizing:border-box}",
    ".root{font:15px/1.55 var(--bc-font);color:var(--bc-text);-webkit-font-smoothing:antialiased;text-align:left;letter-spacing:normal}",
    "svg{width:20px;height:20px;flex:none}",
    "button{font:inherit;color:inherit;cursor:pointer}",
    ":focus-visible{outline:2px solid var(--bc-accent);outline-offset:2px}",
    // launcher: an icon and a label; hidden while the panel is open (the header's × closes it)
    ".launcher{position:fixed;bottom:20px;z-index:2147483000;display:flex;align-items:center;gap:8px;",
    "height:48px;padding:0 16px 0 14px;border:0;border-radius:24px;background:var(--bc-accent);color:var(--bc-on-accent);",
    "box-shadow:var(--bc-shadow);font-weight:650;font-size:15px;transition:transform .15s ease,box-shadow .15s ease}",
    ".launcher:hover{transform:translateY(-2px)}",
    ".launcher svg{width:24px;height:24px}",
    ".launcher kbd{font:600 12px/1 var(--bc-font);padding:3px 6px;border-radius:6px;background:rgba(255,255,255,.22);opacity:.9}",
    ".open .launcher{display:none}",
    ".right .launcher,.right .panel{right:20px}.left .launcher,.left .panel{left:20px}",
    ".panel{position:fixed;bottom:20px;z-index:2147483001;width:420px;height:min(680px,calc(100vh - 40px));",
    "display:flex;flex-direction:column;background:var(--bc-bg);border:1px solid var(--bc-border);border-radius:16px;",
    "box-shadow:var(--bc-shadow);overflow:hidden}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;gap:6px;padding:10px 10px 10px 16px;border-bottom:1px solid var(--bc-border)}",
    "header .logo{color:var(--bc-accent);display:flex}",
    "header h2{flex:1;margin:0;font-size:16px;font-weight:650;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".icon-btn{display:inline-flex;align-items:center;justify-content:center;gap:5px;min-width:36px;height:36px;padding:0 8px;",
    "border:0;border-radius:8px;background:transparent;color:var(--bc-muted)}",
    ".icon-btn:hover{background:var(--bc-surface);color:var(--bc-text)}",
    ".icon-btn .label{font-size:13px}",
    ".log{position:relative;flex:1;overflow-x:hidden;overflow-y:auto;overflow-anchor:none;padding:16px;display:flex;flex-direction:column;gap:16px;overscroll-behavior:contain}",
    ".msg{max-width:100%;min-width:0;overflow-wrap:anywhere}",
    ".msg p{margin:0 0 .65em}.msg p:last-child{margin-bottom:0}",
    ".msg ul,.msg ol{margin:0 0 .65em;padding-left:1.3em}.msg li{margin:.2em 0}",
    ".msg code{font-family:var(--bc-mono);font-size:.86em;background:var(--bc-code-bg);padding:.1em .35em;border-radius:4px}",
    ".code{margin:0 0 .65em;border:1px solid var(--bc-border);border-radius:8px;overflow:hidden;background:var(--bc-code-bg)}",
    ".code-bar{display:flex;align-items:center;gap:8px;padding:3px 4px 3px 10px;border-bottom:1px solid var(--bc-border);font-size:12px;color:var(--bc-muted)}",
    ".code-bar .lang{flex:1;font-family:var(--bc-mono);text-transform:lowercase}",
    ".code-bar .code-cites{font-size:13px}.code-bar a.marker{vertical-align:baseline;font-size:12px;line-height:1.2;padding:2px 7px}",
    ".copy-code{border:0;background:transparent;color:var(--bc-muted);font-size:12px;font-weight:600;padding:3px 8px;border-radius:6px}",
    ".copy-code:hover{background:var(--bc-bg);color:var(--bc-text)}",
    ".msg pre{margin:0;padding:10px 12px;overflow-x:auto;background:transparent}",
    ".msg pre code{background:none;padding:0;font-size:.84em;white-space:pre}",
    ".msg a{color:var(--bc-accent);text-underline-offset:2px}",
    ".user{align-self:flex-end;max-width:88%;background:var(--bc-user);color:var(--bc-on-user);padding:9px 13px;",
    "border-radius:16px 16px 4px 16px;white-space:pre-wrap}",
    ".user .quote{display:block;margin:0 0 6px;padding:4px 0 4px 8px;border-left:3px solid currentColor;opacity:.85;font-size:13px;",
    "white-space:normal;display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}",
    ".bot{align-self:stretch}",
    ".bot.greeting{color:var(--bc-muted)}",
    ".suggestions{display:flex;flex-direction:column;align-items:flex-start;gap:8px;margin-top:12px}",
    ".suggestions .hint{font-size:12px;font-weight:650;text-transform:uppercase;letter-spacing:.04em}",
    ".suggestion{text-align:left;padding:7px 12px;border:1px solid var(--bc-border);border-radius:18px;background:var(--bc-bg);",
    "color:var(--bc-text);font-size:14px;line-height:1.35}",
    ".suggestion:hover{border-color:var(--bc-accent);color:var(--bc-accent)}",
    ".bot.refused{background:var(--bc-refused-bg);border:1px solid var(--bc-refused-border);border-radius:12px;padding:10px 14px}",
    ".badge{display:inline-flex;align-items:center;gap:5px;margin-bottom:6px;font-size:12px;font-weight:650;text-transform:uppercase;",
    "letter-spacing:.04em;color:var(--bc-muted)}.badge svg{width:15px;height:15px}",
    ".marker{font-size:.75em;vertical-align:super;line-height:0;padding:0 .1em;font-weight:700}",
    "a.marker{text-decoration:none;display:inline-block;min-width:1.45em;text-align:center;padding:.15em .3em;border-radius:1em;",
    "background:color-mix(in srgb,var(--bc-accent) 14%,transparent)}",
    "a.marker:hover{background:var(--bc-accent);color:var(--bc-on-accent)}",
    // sources: one card per cited page ("Page › Section"), numbered as the markers are
    ".sources{margin-top:12px}",
    ".sources h3{margin:0 0 6px;font-size:12px;font-weight:650;text-transform:uppercase;letter-spacing:.04em;color:var(--bc-muted)}",
    ".msg .cites{margin:0;padding:0;list-style:none;display:grid;grid-template-columns:minmax(0,1fr);gap:6px}",
    ".cites a{display:flex;align-items:flex-start;gap:10px;padding:8px 10px;border:1px solid var(--bc-border);border-radius:10px;",
    "color:var(--bc-text);text-decoration:none;background:var(--bc-bg)}",
    ".cites a:hover{border-color:var(--bc-accent)}",
    ".cites .n{flex:none;min-width:22px;height:22px;border-radius:11px;display:inline-flex;align-items:center;justify-content:center;",
    "font-size:12px;font-weight:700;background:color-mix(in srgb,var(--bc-accent) 14%,transparent);color:var(--bc-accent)}",
    ".cites .where{display:flex;flex-direction:column;min-width:0;flex:1}",
    ".cites .page{font-weight:600;font-size:14px;line-height:1.3}",
    ".cites .section{font-weight:400;color:var(--bc-muted)}",
    ".cites .url{font-size:12px;color:var(--bc-muted);white-space:nowrap;overflow:hidden;text-overflow:ellipsis;margin-top:2px}",
    // the pages being read, shown before the text arrives
    ".reading{margin:0 0 8px;font-size:13px;color:var(--bc-muted)}",
    ".reading ul{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0 0;padding:0;list-style:none}",
    ".reading li{display:inline-flex;align-items:center;gap:5px;max-width:100%;padding:3px 9px 3px 7px;border:1px solid var(--bc-border);",
    "border-radius:14px;background:var(--bc-bg);white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".reading svg{width:14px;height:14px}",
    ".actions{display:flex;flex-wrap:wrap;align-items:center;gap:6px;margin-top:10px}",
    ".actions .icon-btn{height:32px;padding:0 9px;border:1px solid var(--bc-border);color:var(--bc-text)}",
    ".actions svg{width:17px;height:17px}",
    ".feedback{display:inline-flex;align-items:center;gap:6px;margin-left:auto}",
    ".feedback .hint{font-size:13px;color:var(--bc-muted)}",
    ".feedback .icon-btn{min-width:36px}",
    ".feedback .icon-btn[aria-pressed=true]{color:var(--bc-on-accent);background:var(--bc-accent);border-color:var(--bc-accent)}",
    ".stopped-note{margin-top:6px;font-size:13px;color:var(--bc-muted);font-style:italic}",
    ".status{display:flex;align-items:center;gap:8px;color:var(--bc-muted);font-size:13px;min-height:22px}",
    ".dots{display:inline-flex;gap:3px}.dots i{width:6px;height:6px;border-radius:50%;background:currentColor;",
    "animation:bc-blink 1.2s infinite ease-in-out both}.dots i:nth-child(2){animation-delay:.15s}.dots i:nth-child(3){animation-delay:.3s}",
    "@keyframes bc-blink{0%,80%,100%{opacity:.25}40%{opacity:1}}",
    ".streaming .text>:last-child::after{content:'';display:inline-block;width:7px;height:1em;margin-left:2px;vertical-align:text-bottom;",
    "background:var(--bc-accent);animation:bc-blink 1s infinite}",
    ".error{align-self:stretch;max-width:none;display:flex;gap:10px;align-items:flex-start;background:var(--bc-error-bg);",
    "color:var(--bc-error);padding:10px 12px;border-radius:10px;font-size:14px}",
    ".error .body{flex:1}.error .body p{margin:0}",
    ".retry{margin-top:8px;padding:5px 12px;border-radius:8px;border:1px solid currentColor;background:transparent;font-size:13px;font-weight:600}",
    "form{display:flex;gap:8px;align-items:flex-end;padding:10px 12px 12px;border-top:1px solid var(--bc-border)}",
    "textarea{flex:1;resize:none;min-height:42px;max-height:140px;padding:10px 12px;border:1px solid var(--bc-border);border-radius:12px;",
    "background:var(--bc-bg);color:var(--bc-text);font:inherit;line-height:1.4}",
    "textarea:focus{outline:none;border-color:var(--bc-accent);box-shadow:0 0 0 3px color-mix(in srgb,var(--bc-accent) 25%,transparent)}",
    "textarea::placeholder{color:var(--bc-muted)}",
    ".send,.stop{width:42px;height:42px;border:0;border-radius:12px;background:var(--bc-accent);color:var(--bc-on-accent);",
    "display:flex;align-items:center;justify-content:center}",
    ".stop{background:var(--bc-text);color:var(--bc-bg)}",
    ".send[hidden],.stop[hidden]{display:none}",
    ".send:disabled{opacity:.45;cursor:default}",
    ".footer{padding:0 12px 8px;font-size:11px;color:var(--bc-muted);text-align:center}",
    ".ask{position:fixed;z-index:2147483002;display:flex;align-items:center;gap:6px;padding:6px 11px;border:0;border-radius:18px;",
    "background:var(--bc-accent);color:var(--bc-on-accent);font-size:13px;font-weight:600;box-shadow:var(--bc-shadow)}",
    ".ask[hidden]{display:none}.ask svg{width:15px;height:15px}",
    ".sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);border:0}",
    "@media (max-width:600px){.panel{inset:0;width:100%;height:100%;height:100dvh;border-radius:0;border:0}",
    ".launcher{bottom:16px}.right .launcher{right:16px}.left .launcher{left:16px}.launcher kbd{display:none}}",
    "@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important;scroll-behavior:auto!important}",
    ".launcher:hover{transform:none}}"
  ].join("");

  // ---------------------------------------------------------------- the widget

  var host = document.createElement("bookchat-widget");
  host.setAttribute("style", "all:initial !important;position:static !important;display:contents !important");
  var shadow = host.attachShadow({ mode: "open" });
  var style = document.createElement("style");
  style.textContent = CSS;
  shadow.appendChild(style);

  var root = el("div", { className: "root " + (config.position === "bottom-left" ? "left" : "right") });
  var shortcut = config.shortcut;
  var launcher = el("button", {
    className: "launcher", type: "button", "aria-haspopup": "dialog", "aria-expanded": "false",
    "aria-controls": "bookchat-panel", "aria-label": "Open chat: " + config.title,
    "aria-keyshortcuts": shortcut ? shortcut.aria : null,
    title: config.title + (shortcut ? " (" + shortcut.label + ")" : "")
  });
  launcher.innerHTML = ICONS.launcher;
  launcher.appendChild(el("span", { className: "label", text: config.launcherLabel }));
  if (shortcut) launcher.appendChild(el("kbd", { "aria-hidden": "true", text: shortcut.label }));

  var titleId = "bookchat-title";
  var heading = el("h2", { id: titleId, text: config.title });
  var logo = el("span", { className: "logo" });
  logo.innerHTML = ICONS.launcher;
  var newButton = el("button", { className: "icon-btn", type: "button", title: "New conversation", "aria-label": "New conversation" });
  newButton.innerHTML = ICONS.plus + '<span class="label">New</span>';
  var closeButton = el("button", {
    className: "icon-btn", type: "button", title: "Close" + (shortcut ? " (Esc or " + shortcut.label + ")" : " (Esc)"),
    "aria-label": "Close chat"
  });
  closeButton.innerHTML = ICONS.close;
  var log = el("div", {
    className: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Conversation"
  });
  var input = el("textarea", { id: "bookchat-input", rows: "1", placeholder: config.placeholder, "aria-label": "Your question", maxlength: "4000" });
  var sendButton = el("button", { className: "send", type: "submit", "aria-label": "Send", title: "Send" });
  sendButton.innerHTML = ICONS.send;
  var stopButton = el("button", { className: "stop", type: "button", "aria-label": "Stop answering", title: "Stop answering", hidden: "" });
  stopButton.innerHTML = ICONS.stop;
  var form = el("form", { "aria-label": "Ask a question" }, [input, sendButton, stopButton]);
  var footer = el("div", { className: "footer", text: "Answers come only from this documentation. Check the linked pages." });
  var announcer = el("div", { className: "sr-only", role: "status", "aria-live": "polite" });
  var panel = el("div", {
    className: "panel", id: "bookchat-panel", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId, hidden: ""
  }, [el("header", null, [logo, heading, newButton, closeButton]), log, form, footer, announcer]);
  var askButton = el("button", { className: "ask", type: "button", hidden: "" });
  askButton.innerHTML = ICONS.quote + "<span>Ask about this</span>";

  root.appendChild(panel);
  root.appendChild(launcher);
  root.appendChild(askButton);
  shadow.appendChild(root);

  if (config.accentColor) host.style.setProperty("--bc-accent", String(config.accentColor));

  function announce(text) {
    announcer.textContent = "";
    setTimeout(function () { announcer.textContent = text; }, 30);
  }

  /** Copy text; navigator.clipboard where allowed (https, localhost), else a hidden textarea. */
  function copyText(text, button, doneLabel) {
    function done(ok) {
      var previous = button.getAttribute("data-label") || button.textContent;
      button.setAttribute("data-label", previous);
      if (button.classList.contains("copy-code")) button.textContent = ok ? "Copied" : "Copy failed";
      else {
        var label = button.querySelector(".label");
        if (label) label.textContent = ok ? "Copied" : "Copy failed";
      }
      announce(ok ? doneLabel : "Could not copy");
      setTimeout(function () {
        if (button.classList.contains("copy-code")) button.textContent = previous;
        else {
          var l = button.querySelector(".label");
          if (l) l.textContent = "Copy";
        }
      }, 1600);
    }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.cssText = "position:fixed;top:0;left:-9999px;opacity:0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove();
      button.focus();
      done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else fallback();
  }

  // Copy buttons live inside rendered Markdown (innerHTML), so one delegated listener serves all.
  log.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".copy-code");
    if (!button) return;
    var code = button.closest(".code").querySelector("pre code");
    copyText(code ? code.textContent : "", button, "Code copied");
  });

  // ---- theme: follow Docusaurus' data-theme on <html>, else the OS preference

  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function applyTheme() {
    var siteTheme = document.documentElement.getAttribute("data-theme");
    var dark = siteTheme ? siteTheme === "dark" : !!(darkQuery && darkQuery.matches);
    host.setAttribute("data-theme", dark ? "dark" : "light");
    // Text on the accent color: dark on light accents (Docusaurus' dark-mode teal), else white.
    var probe = getComputedStyle(sendButton).backgroundColor;
    var rgb = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(probe || "");
    if (rgb) {
      var lum = [1, 2, 3].map(function (i) {
        var c = Number(rgb[i]) / 255;
        return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
      });
      var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
      host.style.setProperty("--bc-on-accent", l > 0.4 ? "#111418" : "#ffffff");
    }
  }
  new MutationObserver(applyTheme).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme", "style", "class"] });
  if (darkQuery) {
    if (darkQuery.addEventListener) darkQuery.addEventListener("change", applyTheme);
    else if (darkQuery.addListener) darkQuery.addListener(applyTheme);
  }

  // ---- open / close, focus trap, keyboard shortcut

  function isOpen() { return !panel.hidden; }
  function open() {
    if (isOpen()) { input.focus(); return; }
    panel.hidden = false;
    root.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    if (!log.childElementCount) showGreeting();
    input.focus();
  }
  function close() {
    if (!isOpen()) return;
    panel.hidden = true;
    root.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  function focusables() {
    return Array.prototype.filter.call(
      panel.querySelectorAll("button, a[href], textarea, input, [tabindex]:not([tabindex='-1'])"),
      function (node) { return !node.disabled && node.getClientRects().length > 0; });
  }
  launcher.addEventListener("click", function () { if (isOpen()) close(); else open(); });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      if (stopCurrent) stopCurrent(); // Esc first stops a streaming answer, as in chat apps
      else close();
      return;
    }
    if (event.key !== "Tab") return;
    var items = focusables();
    if (!items.length) return;
    var first = items[0];
    var last = items[items.length - 1];
    var active = shadow.activeElement;
    if (event.shiftKey && (active === first || !panel.contains(active))) {
      event.preventDefault(); last.focus();
    } else if (!event.shiftKey && (active === last || !panel.contains(active))) {
      event.preventDefault(); first.focus();
    }
  });

  function matchesShortcut(event) {
    if (!shortcut || event.defaultPrevented || event.repeat) return false;
    var key = String(event.key || "").toLowerCase();
    return key === shortcut.key && event.ctrlKey === shortcut.ctrl && event.metaKey === shortcut.meta &&
      event.altKey === shortcut.alt && (event.shiftKey === shortcut.shift || key.length === 1 && !/[a-z0-9]/.test(key));
  }
  document.addEventListener("keydown", function (event) {
    if (!matchesShortcut(event)) return;
    var target = event.composedPath ? event.composedPath()[0] : event.target;
    var typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName || ""));
    var chord = shortcut.ctrl || shortcut.meta || shortcut.alt;
    if (typing && !chord && !host.contains(target) && !shadow.contains(target)) return; // a plain key while typing is text
    event.preventDefault();
    if (isOpen()) close(); else open();
  });

  // ---- scrolling: a new answer is read from its first line, not from its end

  var pinned = true; // false once the reader scrolls during an answer: then we leave the view alone
  var ownScrollTop = -1; // where we last put the view; any other position is the reader's doing
  function markManualScroll() { pinned = false; }
  log.addEventListener("wheel", markManualScroll, { passive: true });
  log.addEventListener("touchmove", markManualScroll, { passive: true });
  log.addEventListener("keydown", function (event) {
    if (/^(PageUp|PageDown|ArrowUp|ArrowDown|Home|End)$/.test(event.key)) markManualScroll();
  });
  // Dragging the scrollbar sends no wheel or touch event, only `scroll`.
  log.addEventListener("scroll", function () {
    if (ownScrollTop >= 0 && Math.abs(log.scrollTop - ownScrollTop) > 2) markManualScroll();
  }, { passive: true });

  function scrollLogTo(top) {
    log.scrollTop = top;
    ownScrollTop = log.scrollTop;
  }
  function scrollToEnd() { scrollLogTo(log.scrollHeight); }

  /** Show the end of the conversation, but never scroll an answer's start (with the question
   * above it) out of view: a long answer stays at its first lines, the reader scrolls on. */
  function reveal(bubble) {
    if (!pinned) return;
    var anchor = bubble.previousElementSibling && bubble.previousElementSibling.classList.contains("user")
      ? bubble.previousElementSibling : bubble;
    var top = Math.max(0, anchor.offsetTop - 12);
    scrollLogTo(Math.max(0, Math.min(log.scrollHeight - log.clientHeight, top)));
  }

  // ---- session (localStorage) and history restore

  var session = storageGet(STORAGE_KEY); // {id, token}
  var feedbackState = storageGet(FEEDBACK_KEY) || {};
  var busy = false;
  var stopCurrent = null; // set while an answer is on its way: stops following it

  function saveSession(id, token) {
    session = { id: id, token: token };
    storageSet(STORAGE_KEY, session);
  }

  function showGreeting() {
    var greeting = el("div", { className: "msg bot greeting" });
    greeting.appendChild(el("p", { text: config.greeting }));
    if (config.suggestedQuestions.length) {
      var list = el("div", { className: "suggestions", role: "group", "aria-label": "Suggested questions" });
      list.appendChild(el("span", { className: "hint", "aria-hidden": "true", text: "Try asking" }));
      config.suggestedQuestions.forEach(function (question) {
        var chip = el("button", { className: "suggestion", type: "button", text: question });
        chip.addEventListener("click", function () { submit(question, null); });
        list.appendChild(chip);
      });
      greeting.appendChild(list);
    }
    log.appendChild(greeting);
  }

  function resetConversation() {
    if (stopCurrent) stopCurrent();
    if (session && session.id && session.token) {
      // End the old session's access on the server too (its token and its answers' URLs).
      fetch(apiUrl("/v1/sessions/" + encodeURIComponent(session.id) + "/revoke"), {
        method: "POST", headers: { "X-Session-Token": session.token }
      }).catch(function () { /* offline: the token still expires by itself */ });
    }
    session = null;
    storageSet(STORAGE_KEY, null);
    log.textContent = "";
    showGreeting();
    input.value = "";
    setBusy(false);
    input.focus();
  }
  newButton.addEventListener("click", resetConversation);

  function restoreHistory() {
    if (!session || !session.id || !session.token) return;
    fetch(apiUrl("/v1/sessions/" + encodeURIComponent(session.id) + "/messages"), {
      headers: { "X-Session-Token": session.token }
    }).then(function (response) {
      if (response.status === 403 || response.status === 404 || response.status === 422) {
        storageSet(STORAGE_KEY, null); // the server no longer knows this session
        session = null;
        return null;
      }
      return response.ok ? response.json() : null;
    }).then(function (messages) {
      if (!messages || !messages.length || busy) return;
      log.textContent = "";
      var lastBot = null;
      messages.forEach(function (m) {
        if (m.role === "user") addUserMessage(m.content, m.selection);
        else if (m.role === "assistant") {
          lastBot = addBotBubble();
          finishAnswer(lastBot, { answer: m.content, citations: m.citations || [], refused: !!m.refused, message_id: m.id });
        }
      });
      pinned = true;
      if (lastBot) reveal(lastBot);
    }).catch(function () { /* offline: keep the empty conversation, questions still work later */ });
  }

  // ---- rendering messages

  function addUserMessage(text, selection) {
    var greeting = log.querySelector(".greeting");
    if (greeting) greeting.remove(); // the suggestions have served their purpose
    var bubble = el("div", { className: "msg user" });
    if (selection) {
      var quote = el("span", { className: "quote", text: selection.length > 280 ? selection.slice(0, 280) + "…" : selection });
      bubble.appendChild(quote);
    }
    bubble.appendChild(document.createTextNode(text));
    log.appendChild(bubble);
    scrollToEnd();
    return bubble;
  }

  function addBotBubble() {
    var bubble = el("div", { className: "msg bot", "aria-busy": "true" });
    var status = el("div", { className: "status" });
    status.innerHTML = '<span class="dots" aria-hidden="true"><i></i><i></i><i></i></span>';
    status.appendChild(el("span", { className: "status-text", text: "Thinking…" }));
    bubble.appendChild(status);
    log.appendChild(bubble);
    reveal(bubble);
    return bubble;
  }

  function setStatus(bubble, text) {
    var node = bubble.querySelector(".status-text");
    if (node) node.textContent = text;
  }

  /** "Answering from these pages": the pages the search found, before any text arrives. */
  function showReading(bubble, pages) {
    var valid = (pages || []).filter(function (p) { return p && safeUrl(p.url); });
    if (!valid.length) return;
    var box = bubble.querySelector(".reading");
    if (!box) {
      box = el("div", { className: "reading" });
      var status = bubble.querySelector(".status");
      bubble.insertBefore(box, status ? status.nextSibling : bubble.firstChild);
    }
    box.textContent = "";
    box.appendChild(el("span", { text: "Answering from these pages" }));
    var list = el("ul", { "aria-label": "Pages being read" });
    valid.forEach(function (p) {
      var item = el("li", { title: citationLabel(p) });
      item.innerHTML = ICONS.page;
      item.appendChild(el("span", { text: p.title || p.heading || p.url }));
      list.appendChild(item);
    });
    box.appendChild(list);
    reveal(bubble);
  }

  function streamInto(bubble, text) {
    var body = bubble.querySelector(".text");
    if (!body) {
      var status = bubble.querySelector(".status");
      if (status) status.remove();
      body = el("div", { className: "text" });
      bubble.appendChild(body);
      bubble.classList.add("streaming");
    }
    body.innerHTML = renderMarkdown(text, streamingResolver(text)); // escaped inside renderMarkdown
    reveal(bubble);
  }

  function plainAnswer(answer, citations) {
    var resolve = citationResolver(answer, citations);
    var text = String(answer || "").replace(/\[(\d{1,3})\]/g, function (whole, n) {
      var hit = resolve && resolve(Number(n));
      return hit ? "[" + hit.n + "]" : whole;
    });
    if (citations.length) {
      text += "\n\nSources:\n" + citations.map(function (c, i) {
        return "[" + (i + 1) + "] " + citationLabel(c) + " — " + safeUrl(c.url);
      }).join("\n");
    }
    return text;
  }

  function sourceCards(citations) {
    var box = el("div", { className: "sources" });
    var headingId = "bc-src-" + newKey();
    box.appendChild(el("h3", { id: headingId, text: "Sources" }));
    var list = el("ol", { className: "cites", "aria-labelledby": headingId });
    citations.forEach(function (c, i) {
      var href = safeUrl(c.url);
      var page = c.title || c.path || href;
      var section = c.heading && c.heading !== page ? c.heading : "";
      var where = el("span", { className: "where" }, [
        el("span", { className: "page" }, [
          document.createTextNode(page),
          section ? el("span", { className: "section", text: " › " + section }) : null
        ]),
        el("span", { className: "url", text: new URL(href).pathname + new URL(href).hash })
      ]);
      var link = el("a", {
        href: href, target: "_blank", rel: "noopener", title: citationLabel(c),
        "aria-label": "Source " + (i + 1) + ": " + citationLabel(c)
      }, [el("span", { className: "n", "aria-hidden": "true", text: String(i + 1) }), where]);
      list.appendChild(el("li", null, [link]));
    });
    box.appendChild(list);
    return box;
  }

  function finishAnswer(bubble, result, stopped) {
    bubble.textContent = "";
    bubble.classList.remove("streaming");
    bubble.removeAttribute("aria-busy");
    var citations = (result.citations || []).filter(function (c) { return c && safeUrl(c.url); });
    if (result.refused) {
      bubble.classList.add("refused");
      var badge = el("div", { className: "badge" });
      badge.innerHTML = ICONS.info;
      badge.appendChild(el("span", { text: "Not in the docs" }));
      bubble.appendChild(badge);
    }
    var body = el("div", { className: "text" });
    var resolve = stopped ? streamingResolver(result.answer) : citationResolver(result.answer, citations);
    body.innerHTML = renderMarkdown(result.answer || "", resolve);
    bubble.appendChild(body);
    if (stopped) bubble.appendChild(el("div", { className: "stopped-note", text: "Stopped." }));
    if (citations.length && !result.refused) bubble.appendChild(sourceCards(citations));
    if (!stopped && (result.answer || result.message_id)) {
      var actions = el("div", { className: "actions" });
      var copy = el("button", { className: "icon-btn copy-answer", type: "button", "aria-label": "Copy answer", title: "Copy answer" });
      copy.innerHTML = ICONS.copy + '<span class="label">Copy</span>';
      copy.addEventListener("click", function () {
        copyText(plainAnswer(result.answer, result.refused ? [] : citations), copy, "Answer copied");
      });
      actions.appendChild(copy);
      if (result.message_id) actions.appendChild(feedbackButtons(result.message_id));
      bubble.appendChild(actions);
    }
    reveal(bubble);
  }

  function feedbackButtons(messageId) {
    var row = el("div", { className: "feedback", role: "group", "aria-label": "Was this helpful?" });
    row.appendChild(el("span", { className: "hint", "aria-hidden": "true", text: "Helpful?" }));
    var buttons = {};
    ["up", "down"].forEach(function (rating) {
      var button = el("button", {
        className: "icon-btn", type: "button", "data-rating": rating,
        "aria-label": rating === "up" ? "Helpful" : "Not helpful",
        title: rating === "up" ? "Helpful" : "Not helpful",
        "aria-pressed": feedbackState[messageId] === rating ? "true" : "false"
      });
      button.innerHTML = ICONS[rating];
      button.addEventListener("click", function () { sendFeedback(messageId, rating, buttons); });
      buttons[rating] = button;
      row.appendChild(button);
    });
    return row;
  }

  function sendFeedback(messageId, rating, buttons) {
    var previous = feedbackState[messageId];
    function show(value) {
      Object.keys(buttons).forEach(function (r) { buttons[r].setAttribute("aria-pressed", r === value ? "true" : "false"); });
    }
    show(rating);
    var headers = { "Content-Type": "application/json" };
    if (session && session.token) headers["X-Session-Token"] = session.token;
    fetch(apiUrl("/v1/messages/" + encodeURIComponent(messageId) + "/feedback"), {
      method: "POST", headers: headers, body: JSON.stringify({ rating: rating })
    }).then(function (response) {
      if (!response.ok) throw new Error("feedback " + response.status);
      feedbackState[messageId] = rating;
      storageSet(FEEDBACK_KEY, feedbackState);
      announce("Thanks for the feedback");
    }).catch(function () {
      show(previous); // not recorded: do not pretend it was
    });
  }

  function showError(bubble, message, retry, retryAfter) {
    bubble.className = "msg error";
    bubble.removeAttribute("aria-busy");
    bubble.setAttribute("role", "alert");
    bubble.textContent = "";
    var icon = el("span");
    icon.innerHTML = ICONS.warn;
    var text = el("p", { text: message });
    var body = el("div", { className: "body" }, [text]);
    var button = el("button", { className: "retry", type: "button", text: "Retry" });
    button.addEventListener("click", function () {
      if (timer) clearInterval(timer);
      retry(bubble);
    });
    body.appendChild(button);
    bubble.appendChild(icon);
    bubble.appendChild(body);
    var timer = null;
    if (retryAfter) { // count down so the number stays true while the reader waits
      var left = retryAfter;
      timer = setInterval(function () {
        left -= 1;
        if (!bubble.isConnected || left <= 0) {
          clearInterval(timer);
          if (bubble.isConnected) text.textContent = "You can send your message again now.";
          return;
        }
        text.textContent = message.replace(/\d+ s\b/, left + " s");
      }, 1000);
    }
    setBusy(false);
    reveal(bubble);
  }

  function setBusy(value, stop) {
    busy = value;
    stopCurrent = value ? (stop || null) : null;
    var focusWasOnButton = shadow.activeElement === sendButton || shadow.activeElement === stopButton;
    sendButton.hidden = !!stopCurrent;
    sendButton.disabled = value;
    stopButton.hidden = !stopCurrent;
    if (focusWasOnButton) (stopCurrent ? stopButton : input).focus();
  }
  stopButton.addEventListener("click", function () { if (stopCurrent) stopCurrent(); });

  // ---- sending a question and following its job

  /** Post the question; on 202 follow the job. `bubble` is reused when retrying. */
  function ask(question, selection, bubble, attempt) {
    attempt = attempt || { key: newKey() };
    if (!bubble) bubble = addBotBubble();
    else {
      var fresh = addBotBubble();
      bubble.replaceWith(fresh);
      bubble = fresh;
    }
    var aborter = window.AbortController ? new AbortController() : null;
    var stopped = false;
    setBusy(true, function () {
      // Stopped before the job was accepted: the server may still answer (history keeps it).
      stopped = true;
      if (aborter) aborter.abort();
      finishAnswer(bubble, { answer: "" }, true);
      setBusy(false);
      input.focus();
    });
    var body = { message: question, page_url: location.href };
    if (selection) body.selection = selection;
    var headers = { "Content-Type": "application/json", "Idempotency-Key": attempt.key };
    if (session && session.id && session.token) {
      body.session_id = session.id;
      headers["X-Session-Token"] = session.token;
    }
    var retry = function (b) { ask(question, selection, b, { key: newKey() }); };
    fetch(apiUrl("/v1/chat"), {
      method: "POST", headers: headers, body: JSON.stringify(body), signal: aborter ? aborter.signal : undefined
    })
      .then(function (response) {
        if (stopped) return;
        if (response.status === 202) {
          return response.json().then(function (accepted) {
            saveSession(accepted.session_id, accepted.session_token);
            if (!stopped) follow(accepted, bubble, retry);
          });
        }
        return response.json().catch(function () { return {}; }).then(function (error) {
          if (response.status === 403 && body.session_id && !attempt.droppedSession) {
            // The stored session is no longer valid (server secret rotated): start afresh.
            session = null;
            storageSet(STORAGE_KEY, null);
            ask(question, selection, bubble, { key: newKey(), droppedSession: true });
            return;
          }
          if (response.status === 429) {
            var wait = retryAfterSeconds(response) || 10;
            showError(bubble, "You're sending messages too quickly — try again in " + wait + " s.", retry, wait);
          } else if (response.status === 503) {
            showError(bubble, "The assistant is busy right now — please try again in a moment.", retry);
          } else {
            showError(bubble, (error && error.message) || "Something went wrong (HTTP " + response.status + ").", retry);
          }
        });
      })
      .catch(function () {
        if (stopped) return;
        // Same Idempotency-Key: if the question did reach the server, it is not asked twice.
        var again = function (b) { ask(question, selection, b, attempt); };
        // A browser reports a CORS refusal as a network error. If the API answers a no-cors
        // request, it is up and refused this page's origin: say so (the site owner can fix it).
        fetch(apiUrl("/healthz"), { mode: "no-cors", cache: "no-store" }).then(function () {
          if (window.console) {
            console.warn("bookchat: " + config.apiUrl + " is reachable but refused this page's origin (" +
              location.origin + "); add it to the server's BOOKCHAT_CORS_ORIGINS.");
          }
          showError(bubble, "The assistant is not enabled for this site (" + location.origin +
            " is not among the addresses its server allows).", again);
        }, function () {
          showError(bubble, "Can't reach the assistant — check your connection and try again.", again);
        });
      });
  }

  function follow(accepted, bubble, resend) {
    var text = "";
    var finished = false;
    var frame = 0;
    var source = null;

    // Token events can be many and small (a streaming model, or the offline one): text is
    // gathered as it comes and drawn at most once per animation frame.
    function onToken(delta) {
      text += delta;
      if (!frame) {
        frame = nextFrame(function () {
          frame = 0;
          if (!finished) streamInto(bubble, text);
        });
      }
    }
    function onDone(result) {
      if (finished) return;
      finished = true;
      if (result && result.session_id && session && result.session_id !== session.id) {
        // Defensive: the server is the authority on which session this was.
        saveSession(result.session_id, accepted.session_token);
      }
      finishAnswer(bubble, result || { answer: text });
      setBusy(false);
      input.focus();
    }
    function onFailure(error) {
      if (finished) return;
      finished = true;
      var code = error && error.code;
      var message = (error && error.message) || "The assistant could not answer.";
      if (code === "llm_unavailable" || code === "queue_unavailable") {
        message = "The assistant is busy right now — please try again in a moment.";
      }
      showError(bubble, message, resend);
    }
    function onStatus(data) {
      if (data && (data.requeued || data.restarted)) {
        // The job starts over (its worker was lost, or a model attempt failed and another
        // began): drop what the failed attempt streamed.
        text = "";
        var body = bubble.querySelector(".text");
        if (body) {
          body.remove();
          bubble.classList.remove("streaming");
          var status = el("div", { className: "status" });
          status.innerHTML = '<span class="dots" aria-hidden="true"><i></i><i></i><i></i></span>';
          status.appendChild(el("span", { className: "status-text" }));
          bubble.insertBefore(status, bubble.firstChild);
        }
        setStatus(bubble, "Thinking…");
      }
      if (data && data.status === "running") setStatus(bubble, "Searching the docs…");
      // The site's first index is being built: the question waits for it, then is answered.
      if (data && data.status === "indexing") setStatus(bubble, "Indexing the site…");
    }
    function onProgress(data) {
      if (!data) return;
      if (typeof data.message === "string") setStatus(bubble, data.message);
      if (Array.isArray(data.pages)) showReading(bubble, data.pages);
    }

    setBusy(true, function () {
      // The reader stops following; the job itself runs to its end on the server.
      if (finished) return;
      finished = true;
      if (source) source.close();
      finishAnswer(bubble, { answer: text }, true);
      setBusy(false);
      input.focus();
    });

    function poll(failures) {
      if (finished) return;
      var url = new URL(apiUrl(accepted.status_url));
      url.searchParams.set("wait", String(POLL_WAIT_S));
      fetch(url.href, { cache: "no-store" }).then(function (response) {
        if (finished) return;
        if (!response.ok) {
          return response.json().catch(function () { return {}; }).then(function (error) {
            if (response.status >= 500 || response.status === 429) throw new Error("retryable");
            onFailure(error);
          });
        }
        return response.json().then(function (job) {
          if (job.status === "succeeded") onDone(job.result);
          else if (job.status === "failed" || job.status === "expired") onFailure(job.error);
          else {
            if (job.progress) onProgress(job.progress);
            poll(0);
          }
        });
      }).catch(function () {
        if (finished) return;
        if (failures >= 4) {
          finished = true;
          showError(bubble, "Lost the connection while waiting for the answer — check your connection and try again.",
            function (b) {
              var fresh = addBotBubble();
              b.replaceWith(fresh);
              follow(accepted, fresh, resend);
            });
          return;
        }
        setTimeout(function () { poll(failures + 1); }, 1000 * Math.pow(2, failures));
      });
    }

    if (typeof window.EventSource !== "function") { poll(0); return; }

    source = new EventSource(apiUrl(accepted.events_url));
    var received = false;
    var connectionErrors = 0;
    function handle(fn) {
      return function (event) {
        received = true;
        connectionErrors = 0;
        var data = null;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        if (!finished) fn(data);
      };
    }
    source.addEventListener("status", handle(onStatus));
    source.addEventListener("progress", handle(onProgress));
    source.addEventListener("token", handle(function (d) { if (d && typeof d.delta === "string") onToken(d.delta); }));
    source.addEventListener("done", handle(function (d) { source.close(); onDone(d); }));
    source.addEventListener("error", function (event) {
      if (event.data) { // a typed `error` event from the server
        source.close();
        var data = null;
        try { data = JSON.parse(event.data); } catch (e) { /* keep null */ }
        onFailure(data);
        return;
      }
      if (finished) { source.close(); return; }
      connectionErrors += 1;
      // Before any event, or once the browser gives up (or keeps failing), long-poll instead;
      // otherwise EventSource reconnects by itself with Last-Event-ID and nothing is missed.
      if (!received || source.readyState === EventSource.CLOSED || connectionErrors > 3) {
        source.close();
        poll(0);
      }
    });
  }

  function submit(question, selection) {
    question = String(question || "").trim();
    if (!question || busy) return;
    open();
    pinned = true;
    addUserMessage(question, selection);
    ask(question, selection || null);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value;
    if (!question.trim() || busy) return;
    input.value = "";
    autosize();
    submit(question, null);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (form.requestSubmit) form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 140) + "px";
  }
  input.addEventListener("input", autosize);

  // ---- "Ask about this": a floating button next to text selected on the page

  var pendingSelection = "";
  function hideAsk() { askButton.hidden = true; pendingSelection = ""; }
  function updateAsk() {
    if (!config.selectionButton) return;
    var selection = window.getSelection ? window.getSelection() : null;
    if (!selection || selection.isCollapsed || !selection.rangeCount) { hideAsk(); return; }
    var range = selection.getRangeAt(0);
    var container = range.commonAncestorContainer;
    var inWidget = shadow.getSelection && shadow.getSelection() && !shadow.getSelection().isCollapsed;
    if (inWidget || container === host || host.contains(container)) { hideAsk(); return; }
    var text = selection.toString().replace(/\s+/g, " ").trim();
    if (text.length < 3) { hideAsk(); return; }
    var rect = range.getBoundingClientRect();
    if (!rect || (!rect.width && !rect.height)) { hideAsk(); return; }
    pendingSelection = text.slice(0, MAX_SELECTION);
    askButton.hidden = false;
    var width = askButton.offsetWidth || 130;
    var top = rect.top - 42;
    if (top < 8) top = rect.bottom + 8;
    var left = Math.min(Math.max(8, rect.left + rect.width / 2 - width / 2), window.innerWidth - width - 8);
    askButton.style.top = Math.round(top) + "px";
    askButton.style.left = Math.round(left) + "px";
  }
  var selectionTimer = 0;
  document.addEventListener("selectionchange", function () {
    clearTimeout(selectionTimer);
    selectionTimer = setTimeout(updateAsk, 150);
  });
  window.addEventListener("scroll", function () { if (!askButton.hidden) updateAsk(); }, { passive: true });
  // Keep the page selection alive while the button is pressed.
  askButton.addEventListener("mousedown", function (event) { event.preventDefault(); });
  askButton.addEventListener("click", function () {
    var text = pendingSelection;
    hideAsk();
    if (!text) return;
    var question = input.value.trim() || "Can you explain this passage?";
    input.value = "";
    if (window.getSelection) window.getSelection().removeAllRanges();
    submit(question, text);
  });

  // ---------------------------------------------------------------- start

  function mount() {
    document.body.appendChild(host);
    applyTheme();
    restoreHistory();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.Bookchat = {
    version: VERSION,
    config: config,
    open: open,
    close: close,
    ask: function (question, options) { submit(question, options && options.selection); },
    reset: resetConversation,
    renderMarkdown: renderMarkdown
  };
})();
