/*! bookchat widget — grounded answers about this documentation site: the chat itself.
 *
 * Loaded by loader.js (served as /widget.js: what a site includes, and where its options are
 * listed) on first use, from /widget/<version>/widget.js, with widget.css beside it. It builds
 * the panel inside the loader's shadow root and takes over its launcher.
 * Events for analytics: bookchat:open, bookchat:close, bookchat:ask, bookchat:answer,
 * bookchat:cite-click, bookchat:feedback, bookchat:export, bookchat:search, bookchat:page-action,
 * bookchat:error, dispatched on window (detail: an object; docs/widget.md lists the fields).
 * Everything the server sends is text: it is escaped before any markup is added.
 */
(function () {
  "use strict";

  var VERSION = "0.3.0"; // the same in loader.js (a test checks it)
  var loader = window.Bookchat && window.Bookchat.loader;
  if (!loader || window.Bookchat.version) return; // no loader, or loaded already

  var STORAGE_KEY = "bookchat:session";
  var FEEDBACK_KEY = "bookchat:feedback";
  // The question whose answer is on its way (sessionStorage: this tab only). A reload, or a
  // navigation that loads the page afresh, finds it and follows the same job to its end.
  var PENDING_KEY = "bookchat:pending";
  var POLL_WAIT_S = 25;
  var MAX_SELECTION = 4000;
  var MAX_SUGGESTIONS = 6;
  var config = loader.config;
  var pick = config.pick;
  config.placeholder = String(pick("placeholder", "Ask a question about the docs…"));
  config.greeting = String(pick("greeting",
    "Hi! Ask me anything about these docs. I answer only from the documentation and link to the pages I used."));
  config.suggestedQuestions = readQuestions(pick("suggestedQuestions", []));
  config.siteUrl = String(pick("siteUrl", ""));
  config.mode = String(pick("mode", "chat")) === "search" ? "search" : "chat"; // what the panel opens on
  var host = loader.host;
  var shadow = loader.shadow;
  var root = loader.root;
  var launcher = loader.launcher;
  var shortcut = config.shortcut;

  // ---------------------------------------------------------------- small utilities

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

  /**
   * Where a citation opens: on the site the reader is on. The index holds the site's public
   * URLs (docusaurus.config's `url`), but the same pages are served from localhost too (`npm run
   * start`, `docusaurus serve`) and from preview deploys, where a link to the public host leaves
   * the reader's copy of the site (or names a placeholder host that does not exist). A URL under
   * the site's public base moves to this page's origin, its path and #anchor kept.
   */
  function readerUrl(url) {
    var href = safeUrl(url);
    var base = href && publicBase();
    if (!base || base.origin === location.origin) return href;
    var target = new URL(href);
    if (target.origin !== base.origin || (target.pathname + "/").indexOf(base.path) !== 0) return href;
    return location.origin + target.pathname + target.search + target.hash;
  }

  /** This page under the site's public URL (as the index names it, so the server can prefer
   * its passages): the inverse of readerUrl. */
  function publicPageUrl() {
    var base = publicBase();
    if (!base || base.origin === location.origin) return location.href;
    return base.origin + location.pathname + location.search + location.hash;
  }

  /** {origin, path} of the site's public URL: config.siteUrl, else the page's canonical link
   * when it names this very page (Docusaurus writes `url` + the page's path there). */
  function publicBase() {
    try {
      if (config.siteUrl) {
        var site = new URL(config.siteUrl);
        return { origin: site.origin, path: site.pathname.replace(/\/*$/, "/") };
      }
      var link = document.querySelector('link[rel="canonical"]');
      if (!link || !link.href) return null;
      var canonical = new URL(link.href);
      var trim = function (path) { return path.replace(/\/+$/, ""); };
      return trim(canonical.pathname) === trim(location.pathname) ? { origin: canonical.origin, path: "/" } : null;
    } catch (e) {
      return null;
    }
  }

  /** A `bookchat:<name>` event on window, for the site's analytics (documented in docs/widget.md). */
  function emit(name, detail) {
    try { window.dispatchEvent(new CustomEvent("bookchat:" + name, { detail: detail || {} })); } catch (e) { /* old browser */ }
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
  function storageSet(key, value, store) {
    try {
      store = store || localStorage;
      if (value === null) store.removeItem(key);
      else store.setItem(key, JSON.stringify(value));
    } catch (e) { /* private mode: the session simply does not persist */ }
  }
  function pendingGet() {
    try { return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null"); } catch (e) { return null; }
  }
  function pendingSet(value) {
    try { storageSet(PENDING_KEY, value, sessionStorage); } catch (e) { /* no sessionStorage */ }
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
    var codes = markdownCodes = []; // code spans (HTML) and fenced blocks, by placeholder
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
      if (line.indexOf("|") >= 0 && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
        flushParagraph(); flushList();
        var header = tableCells(line);
        var aligns = tableCells(lines[i + 1]).map(function (cell) {
          return /^:-+:$/.test(cell) ? "center" : /-:$/.test(cell) ? "right" : "";
        });
        var rows = [];
        for (i += 2; i < lines.length && lines[i].trim() && lines[i].indexOf("|") >= 0; i++) rows.push(tableCells(lines[i]));
        i--;
        blocks.push(renderTable(header, aligns, rows, citationHref));
        continue;
      }
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
      return '<div class="code"><div class="code-bar"><span class="lang' + (block.title ? ' title">' +
        escapeHtml(block.title) : '">' + escapeHtml(block.lang || "text")) + "</span>" + (block.cites.length ? '<span class="code-cites">' + block.cites.join(" ") + "</span>" : "") +
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
  var markdownCodes = []; // the codes of the text renderMarkdown is rendering (read by inline)

  /** `source` with each code span replaced by "\u0000n\u0000" and each fenced block by a line
   * "\u0001n\u0001" (n: its place in `codes`), the prose between them with "\r\n" and "\r"
   * read as "\n" and NULs dropped. */
  function swapOutCode(source, codes) {
    var out = "", last = 0, i = 0;
    function prose(text) { return text.replace(/\r\n?/g, "\n").replace(/[\u0000\u0001]/g, ""); }
    function fence(whole, closed) {
      var lines = whole.replace(/\r\n?/g, "\n").replace(/\u0000/g, "").split("\n");
      var info = lines[0].replace(/^[ \t]*(`+|~+)/, "");
      var lang = (/^[\w+#.-]{1,24}/.exec(info.trim()) || [""])[0]; // ```py title="x" → py
      var title = /title=(?:"([^"]*)"|'([^']*)')/.exec(info);
      var body = lines.slice(1, closed ? -1 : lines.length);
      codes.push({ code: body.join("\n"), lang: lang, title: title ? title[1] || title[2] : "", cites: [] });
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

  // A GFM table's delimiter row: | --- | :-: | ---: | (outer pipes optional).
  var TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?\s*$|^\s*\|\s*:?-+:?\s*\|\s*$/;

  /** "| a | b |" → ["a", "b"]; "\|" is a pipe inside a cell. */
  function tableCells(line) {
    var text = line.trim().replace(/\\\|/g, "\u0001").replace(/^\|/, "").replace(/\|$/, "");
    return text.split("|").map(function (cell) { return cell.trim().replace(/\u0001/g, "|"); });
  }

  /** A table in a scrolling box (wide tables scroll sideways on a phone, the page does not). */
  function renderTable(header, aligns, rows, citationHref) {
    function row(cells, tag) {
      return "<tr>" + header.map(function (_, k) {
        var cls = aligns[k] ? ' class="al-' + aligns[k] + '"' : "";
        return "<" + tag + cls + ">" + inline(cells[k] || "", citationHref) + "</" + tag + ">";
      }).join("") + "</tr>";
    }
    return '<div class="table" tabindex="0"><table><thead>' + row(header, "th") + "</thead><tbody>" +
      rows.map(function (cells) { return row(cells, "td"); }).join("") + "</tbody></table></div>";
  }

  function inline(source, citationHref) {
    // Code spans were swapped out by swapOutCode ("\u0000n\u0000"), so nothing in them is read.
    var codes = markdownCodes;
    var text = escapeHtml(source);
    text = text.replace(/\*\*(?=\S)([^*]*?\S)\*\*/g, "<strong>$1</strong>");
    text = text.replace(/(^|[^*\w])\*(?=\S)([^*]*?\S)\*(?!\w)/g, "$1<em>$2</em>");
    // [label](http...) — the label and URL were escaped above; the URL is re-checked.
    text = text.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, function (match, label, url) {
      var href = readerUrl(url.replace(/&amp;/g, "&"));
      if (!href) return label;
      return '<a href="' + escapeHtml(href) + '" target="_blank" rel="noopener noreferrer">' + label + "</a>";
    });
    text = text.replace(/ ?\[(\d{1,3})\]/g, function (_, n, at, whole) {
      var target = citationHref ? citationHref(Number(n), function () { return sentenceBefore(whole.slice(0, at), codes); }) : null;
      if (!target) return '<sup class="marker">' + n + "</sup>";
      var shown = target.n || n;
      if (!target.href) return '<sup class="marker">' + shown + "</sup>";
      return '<a class="marker" href="' + escapeHtml(target.href) + '" target="_blank" rel="noopener" title="' +
        escapeHtml(target.label) + '" aria-label="Source ' + shown + ": " + escapeHtml(target.label) + '">' +
        shown + "</a>";
    });
    return text;
  }

  /** The plain text of the sentence that ends where a marker stands (the escaped, marked-up
   * text before it: tags, entities, code placeholders and earlier markers undone). */
  function sentenceBefore(html, codes) {
    var text = html.replace(/\u0000(\d+)\u0000/g, function (_, i) { return codes[Number(i)]; })
      .replace(/<[^>]*>/g, "").replace(/ ?\[\d{1,3}\]/g, "")
      .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, "&");
    var parts = text.split(/(?:[.!?:]\s+)/);
    return parts[parts.length - 1].trim();
  }

  /** A text fragment (#:~:text=start,end) for `sentence`, so the page opens on it where the
   * answer quotes the page word for word; where it does not, browsers fall back to the
   * #anchor. "" for a sentence under 4 words. */
  function textFragment(sentence) {
    var words = String(sentence || "").split(/\s+/).filter(Boolean);
    if (words.length < 4) return "";
    function enc(part) { return encodeURIComponent(part).replace(/-/g, "%2D").replace(/,/g, "%2C"); }
    var text = words.length <= 8 ? enc(words.join(" ")) : enc(words.slice(0, 4).join(" ")) + "," + enc(words.slice(-4).join(" "));
    return ":~:text=" + text;
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
    return function (n, sentence) {
      var hit = byNumber[n];
      var href = hit && readerUrl(hit.c.url);
      if (href && sentence) {
        var fragment = textFragment(sentence());
        if (fragment) href += (href.indexOf("#") < 0 ? "#" : "") + fragment;
      }
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
    save: svg('<path d="M12 4v11M7 10l5 5 5-5M5 20h14" ' + STROKE + "/>"),
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

  // ---------------------------------------------------------------- the widget

  // widget.css, through the CSSOM (a strict CSP allows a constructed sheet, not a <style>);
  // the panel stays hidden until it is applied.
  var styled = fetch(config.apiUrl + "/widget/" + VERSION + "/widget.css").then(function (response) {
    if (!response.ok) throw new Error("widget.css " + response.status);
    return response.text();
  }).then(function (css) {
    loader.addSheet(shadow, css);
    return css;
  }, function (error) {
    if (window.console) console.warn("bookchat: no styles (" + error + ")");
  });

  var titleId = "bookchat-title";
  var heading = el("h2", { id: titleId, text: config.title });
  var logo = el("span", { className: "logo" });
  logo.innerHTML = ICONS.launcher;
  var newButton = el("button", { className: "icon-btn", type: "button", title: "New conversation", "aria-label": "New conversation" });
  newButton.innerHTML = ICONS.plus + '<span class="label">New</span>';
  var exportButton = el("button", {
    className: "icon-btn", type: "button", title: "Export the conversation as Markdown", "aria-label": "Export conversation"
  });
  exportButton.innerHTML = ICONS.save;
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
  }, [el("header", null, [logo, heading, exportButton, newButton, closeButton]), log, form, footer, announcer]);

  // Search mode: passages from the index as the reader types, "Ask AI" one keystroke away.
  var tabs = el("div", { className: "tabs", role: "tablist", "aria-label": "Mode" });
  var modeTabs = {};
  [["search", "Search"], ["chat", "Ask AI"]].forEach(function (m) {
    modeTabs[m[0]] = el("button", { className: "tab", type: "button", role: "tab", "aria-selected": "false", text: m[1] });
    modeTabs[m[0]].addEventListener("click", function () { setMode(m[0]); });
    tabs.appendChild(modeTabs[m[0]]);
  });
  var searchInput = el("input", {
    type: "search", className: "search-input", placeholder: "Search the docs…", "aria-label": "Search the docs",
    role: "combobox", "aria-expanded": "false", "aria-controls": "bookchat-results", "aria-autocomplete": "list",
    autocomplete: "off", maxlength: "2000"
  });
  var results = el("ul", { id: "bookchat-results", className: "results", role: "listbox", "aria-label": "Search results" });
  var searchView = el("div", { className: "search-view", hidden: "" }, [searchInput, results]);
  panel.insertBefore(tabs, log);
  panel.insertBefore(searchView, log);
  var askButton = el("button", { className: "ask", type: "button", hidden: "" });
  askButton.innerHTML = ICONS.quote + "<span>Ask about this</span>";

  root.insertBefore(panel, launcher);
  root.appendChild(askButton);

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
        if (label && !label.getAttribute("data-text")) label.setAttribute("data-text", label.textContent);
        if (label) label.textContent = ok ? "Copied" : "Copy failed";
      }
      announce(ok ? doneLabel : "Could not copy");
      setTimeout(function () {
        if (button.classList.contains("copy-code")) button.textContent = previous;
        else {
          var l = button.querySelector(".label");
          if (l) l.textContent = l.getAttribute("data-text") || "Copy";
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
    var link = event.target.closest && event.target.closest("a.marker, .cites a");
    if (link) emit("cite-click", { url: link.href, label: link.getAttribute("title") || "" });
    var button = event.target.closest && event.target.closest(".copy-code");
    if (!button) return;
    var code = button.closest(".code").querySelector("pre code");
    copyText(code ? code.textContent : "", button, "Code copied");
  });

  // ---- open / close, focus trap, keyboard shortcut

  function isOpen() { return !panel.hidden; }
  function toggle() { if (isOpen()) close(); else open(); }
  function open() {
    if (isOpen()) { input.focus(); return; }
    styled.then(showPanel);
  }
  function showPanel() {
    if (isOpen()) return;
    panel.hidden = false;
    root.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    if (!log.childElementCount) showGreeting();
    setMode(mode);
    emit("open");
  }
  function close() {
    if (!isOpen()) return;
    panel.hidden = true;
    root.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
    emit("close");
  }
  function focusables() {
    return Array.prototype.filter.call(
      panel.querySelectorAll("button, a[href], textarea, input, [tabindex]:not([tabindex='-1'])"),
      function (node) { return !node.disabled && node.getClientRects().length > 0; });
  }
  launcher.addEventListener("click", toggle);
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
    pendingSet(null);
    log.textContent = "";
    showGreeting();
    input.value = "";
    setBusy(false);
    input.focus();
  }
  newButton.addEventListener("click", resetConversation);

  /** The conversation as Markdown (questions, answers with numbered sources), downloaded. */
  function conversationMarkdown() {
    var parts = ["# " + config.title, "", "From " + location.href + ", " + new Date().toISOString().slice(0, 10), ""];
    Array.prototype.forEach.call(log.children, function (node) { if (node.bcMarkdown) parts.push(node.bcMarkdown, ""); });
    return parts.join("\n");
  }
  exportButton.addEventListener("click", function () {
    var link = el("a", { download: "conversation.md" });
    link.href = URL.createObjectURL(new Blob([conversationMarkdown()], { type: "text/markdown" }));
    shadow.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
    emit("export", { messages: log.querySelectorAll(".user").length });
  });

  function restoreHistory() {
    if (!session || !session.id || !session.token) { resumePending([]); return; }
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
      messages = messages || [];
      if (messages.length && !busy) {
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
      }
      resumePending(messages);
    }).catch(function () { resumePending([]); }); // offline: questions still work later
  }

  /** An answer that was on its way when the page was left: show its question and follow its
   * job (the server runs it to its end whether or not anyone listens). The history may hold
   * the question already, or the finished answer too (then there is nothing to follow). */
  function resumePending(messages) {
    var pending = pendingGet();
    if (!pending || !pending.accepted || !pending.accepted.status_url || busy) return;
    var asked = -1;
    messages.forEach(function (m, k) { if (m.role === "user" && m.content === pending.question) asked = k; });
    var answered = asked >= 0 && messages.slice(asked + 1).some(function (m) { return m.role === "assistant"; });
    if (answered) { pendingSet(null); return; }
    setMode("chat");
    open();
    if (asked < 0) addUserMessage(pending.question, pending.selection);
    pinned = true;
    follow(pending.accepted, addBotBubble(), function (b) {
      ask(pending.question, pending.selection, b, { key: newKey() });
    });
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
    bubble.bcMarkdown = "## " + text.replace(/\s*\n\s*/g, " ") +
      (selection ? "\n\n> " + selection.replace(/\n/g, "\n> ") : "");
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
        return "[" + (i + 1) + "] " + citationLabel(c) + " — " + readerUrl(c.url);
      }).join("\n");
    }
    return text;
  }

  /** An answer as Markdown: markers numbered as its sources, the sources as links. */
  function answerMarkdown(answer, citations) {
    var resolve = citationResolver(answer, citations);
    var text = String(answer || "").replace(/\[(\d{1,3})\]/g, function (whole, n) {
      var hit = resolve && resolve(Number(n));
      return hit ? "[" + hit.n + "](" + hit.href + ")" : whole;
    });
    return text + (citations.length ? "\n\nSources:\n\n" + citations.map(function (c, i) {
      return (i + 1) + ". [" + citationLabel(c).replace(/[[\]]/g, "") + "](" + readerUrl(c.url) + ")";
    }).join("\n") : "");
  }

  function sourceCards(citations) {
    var box = el("div", { className: "sources" });
    var headingId = "bc-src-" + newKey();
    box.appendChild(el("h3", { id: headingId, text: "Sources" }));
    var list = el("ol", { className: "cites", "aria-labelledby": headingId });
    citations.forEach(function (c, i) {
      var href = readerUrl(c.url);
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
    if (!stopped) bubble.bcMarkdown = answerMarkdown(result.answer, result.refused ? [] : citations);
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
      button.addEventListener("click", function () {
        sendFeedback(messageId, rating, buttons, null, function () {
          var old = row.parentNode && row.parentNode.parentNode.querySelector(".reason");
          if (old) old.remove();
          if (rating === "down") row.parentNode.after(reasonForm(messageId, buttons));
        });
      });
      buttons[rating] = button;
      row.appendChild(button);
    });
    return row;
  }

  /** After a thumbs-down: an optional line on what was wrong (stored with the rating). */
  function reasonForm(messageId, buttons) {
    var field = el("textarea", {
      rows: "2", maxlength: "2000", "aria-label": "What was wrong or missing? (optional)",
      placeholder: "What was wrong or missing? (optional)"
    });
    var send = el("button", { className: "retry", type: "submit", text: "Send" });
    var box = el("form", { className: "reason", "aria-label": "Why was this not helpful?" }, [field, send]);
    box.addEventListener("submit", function (event) {
      event.preventDefault();
      var comment = field.value.trim();
      if (!comment) { box.remove(); return; }
      send.disabled = true;
      sendFeedback(messageId, "down", buttons, comment, function () {
        box.replaceWith(el("p", { className: "stopped-note", text: "Thanks, that helps us fix the docs." }));
      }, function () { send.disabled = false; });
    });
    setTimeout(function () { field.focus(); }, 0);
    return box;
  }

  function sendFeedback(messageId, rating, buttons, comment, onSaved, onFailed) {
    var previous = feedbackState[messageId];
    function show(value) {
      Object.keys(buttons).forEach(function (r) { buttons[r].setAttribute("aria-pressed", r === value ? "true" : "false"); });
    }
    show(rating);
    var headers = { "Content-Type": "application/json" };
    if (session && session.token) headers["X-Session-Token"] = session.token;
    fetch(apiUrl("/v1/messages/" + encodeURIComponent(messageId) + "/feedback"), {
      method: "POST", headers: headers, body: JSON.stringify(comment ? { rating: rating, comment: comment } : { rating: rating })
    }).then(function (response) {
      if (!response.ok) throw new Error("feedback " + response.status);
      feedbackState[messageId] = rating;
      storageSet(FEEDBACK_KEY, feedbackState);
      announce("Thanks for the feedback");
      emit("feedback", { messageId: messageId, rating: rating, comment: comment || null });
      if (onSaved) onSaved();
    }).catch(function () {
      show(previous); // not recorded: do not pretend it was
      if (onFailed) onFailed();
    });
  }

  function showError(bubble, message, retry, retryAfter, code) {
    emit("error", { code: code || null, message: message });
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
    var body = { message: question, page_url: publicPageUrl() };
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
            if (stopped) return;
            pendingSet({
              accepted: { job_id: accepted.job_id, status_url: accepted.status_url, events_url: accepted.events_url },
              question: question, selection: selection || null
            });
            follow(accepted, bubble, retry);
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
      if (result && result.session_id && session && result.session_id !== session.id && accepted.session_token) {
        // Defensive: the server is the authority on which session this was.
        saveSession(result.session_id, accepted.session_token);
      }
      pendingSet(null);
      finishAnswer(bubble, result || { answer: text });
      setBusy(false);
      input.focus();
      result = result || {};
      emit("answer", {
        jobId: accepted.job_id, messageId: result.message_id || null, refused: !!result.refused,
        citations: (result.citations || []).length
      });
    }
    function onFailure(error) {
      if (finished) return;
      finished = true;
      var code = error && error.code;
      var message = (error && error.message) || "The assistant could not answer.";
      if (code === "llm_unavailable" || code === "queue_unavailable") {
        message = "The assistant is busy right now — please try again in a moment.";
      }
      pendingSet(null);
      showError(bubble, message, resend, null, code);
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
      pendingSet(null);
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

  // ---- search mode

  var mode = config.mode;
  var searchSeq = 0;
  var searchTimer = 0;
  var activeResult = -1;
  function setMode(next) {
    mode = next === "search" ? "search" : "chat";
    Object.keys(modeTabs).forEach(function (m) { modeTabs[m].setAttribute("aria-selected", String(m === mode)); });
    searchView.hidden = mode !== "search";
    log.hidden = form.hidden = footer.hidden = mode === "search";
    if (!isOpen()) return;
    if (mode === "search") searchInput.focus();
    else input.focus();
  }
  function resultItems() { return results.querySelectorAll("[role=option]"); }
  function setActive(index) {
    var items = resultItems();
    activeResult = Math.max(-1, Math.min(index, items.length - 1));
    Array.prototype.forEach.call(items, function (item, k) { item.setAttribute("aria-selected", String(k === activeResult)); });
    if (activeResult >= 0) {
      searchInput.setAttribute("aria-activedescendant", items[activeResult].id);
      items[activeResult].scrollIntoView({ block: "nearest" });
    } else searchInput.removeAttribute("aria-activedescendant");
  }
  function choose(item) {
    var query = searchInput.value.trim();
    if (!item || item.classList.contains("ask-ai")) {
      if (!query) return;
      setMode("chat");
      submit(query, null);
      return;
    }
    emit("cite-click", { url: item.getAttribute("data-url"), label: item.getAttribute("data-label"), search: true });
    location.href = item.getAttribute("data-url");
  }
  /** The result list: "Ask AI: <query>" first, then the passages (page › section, a snippet). */
  function showResults(query, passages) {
    results.textContent = "";
    activeResult = -1;
    searchInput.setAttribute("aria-expanded", query ? "true" : "false");
    if (!query) return;
    var askItem = el("li", { id: "bc-result-ask", className: "result ask-ai", role: "option", "aria-selected": "false" }, [
      el("span", { className: "page", text: "Ask AI: " }), el("span", { className: "query", text: "“" + query + "”" })
    ]);
    results.appendChild(askItem);
    (passages || []).forEach(function (p, k) {
      var url = readerUrl(p.url);
      if (!url) return;
      var label = citationLabel(p);
      results.appendChild(el("li", {
        id: "bc-result-" + k, className: "result", role: "option", "aria-selected": "false", "data-url": url, "data-label": label
      }, [
        el("span", { className: "page", text: label }),
        el("span", { className: "snippet", text: snippet(p.text) })
      ]));
    });
    if (passages && !passages.length) results.appendChild(el("li", { className: "empty", text: "No page matches; ask AI instead." }));
  }
  /** A passage's first words as plain text (no fence lines, backticks or heading marks). */
  function snippet(text) {
    return String(text || "").replace(/^\s*(```|~~~).*$/gm, "").replace(/[`#*]+/g, "").replace(/\s+/g, " ").trim().slice(0, 160);
  }
  function runSearch() {
    var query = searchInput.value.trim();
    var seq = ++searchSeq;
    if (query.length < 2) { showResults(query, query ? [] : null); return; }
    showResults(query, null); // "Ask AI" at once; the passages when they come
    fetch(apiUrl("/v1/retrieve"), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query: query, limit: 6 })
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (passages) {
      if (seq !== searchSeq || !passages) return; // a newer query is on its way, or this one failed
      showResults(query, passages);
      emit("search", { query: query, results: passages.length });
    }).catch(function () { /* offline: "Ask AI" still works */ });
  }
  searchInput.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 200);
  });
  searchInput.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      setActive(activeResult + (event.key === "ArrowDown" ? 1 : -1));
    } else if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      choose(resultItems()[activeResult]); // none chosen: ask AI
    }
  });
  results.addEventListener("mousedown", function (event) { event.preventDefault(); }); // keep the input's focus
  results.addEventListener("click", function (event) {
    var item = event.target.closest && event.target.closest("[role=option]");
    if (item) choose(item);
  });

  // ---- page actions (opt-in `pageActions`): buttons under the page's title

  /** The page's article as Markdown: headings, paragraphs, lists, code (with its language),
   * tables, links, emphasis; the heading anchors and buttons Docusaurus adds are left out. */
  function pageMarkdown(node) {
    function inlineOf(n) {
      return Array.prototype.map.call(n.childNodes, function (c) {
        if (c.nodeType === 3) return c.nodeValue.replace(/\s+/g, " ");
        if (c.nodeType !== 1 || /^(BUTTON|SCRIPT|STYLE|SVG)$/i.test(c.tagName) || c.classList.contains("hash-link")) return "";
        var inner = inlineOf(c);
        switch (c.tagName) {
          case "CODE": return "`" + c.textContent + "`";
          case "STRONG": case "B": return "**" + inner.trim() + "**";
          case "EM": case "I": return "*" + inner.trim() + "*";
          case "A": return c.href && !/^\s*$/.test(inner) ? "[" + inner.trim() + "](" + c.href + ")" : inner;
          case "BR": return "\n";
          default: return inner;
        }
      }).join("");
    }
    function blocksOf(n, depth) {
      var out = [];
      Array.prototype.forEach.call(n.children, function (c) {
        var tag = c.tagName;
        if (/^(BUTTON|SCRIPT|STYLE|NAV|BOOKCHAT-PAGE-ACTIONS)$/.test(tag)) return;
        if (/^H[1-6]$/.test(tag)) out.push(new Array(Number(tag[1]) + 1).join("#") + " " + inlineOf(c).trim());
        else if (tag === "P") out.push(inlineOf(c).trim());
        else if (tag === "PRE") {
          var code = c.querySelector("code") || c;
          var lang = (/language-([\w+#.-]+)/.exec((code.className || "") + " " + (c.className || "")) || ["", ""])[1];
          var lines = code.querySelectorAll(".token-line");
          var text = lines.length ? Array.prototype.map.call(lines, function (l) { return l.textContent; }).join("\n") : code.textContent;
          out.push("```" + lang + "\n" + text.replace(/\n$/, "") + "\n```");
        } else if (tag === "UL" || tag === "OL") {
          out.push(Array.prototype.filter.call(c.children, function (li) { return li.tagName === "LI"; }).map(function (li, k) {
            var pad = new Array(depth + 1).join("  ");
            var nested = Array.prototype.filter.call(li.children, function (x) { return /^(UL|OL)$/.test(x.tagName); });
            var own = li.cloneNode(true);
            Array.prototype.forEach.call(own.querySelectorAll("ul,ol"), function (x) { x.remove(); });
            return pad + (tag === "OL" ? k + 1 + ". " : "- ") + inlineOf(own).trim() +
              nested.map(function (x) { return "\n" + blocksOf({ children: [x] }, depth + 1).join("\n"); }).join("");
          }).join("\n"));
        } else if (tag === "TABLE") {
          var rows = Array.prototype.map.call(c.querySelectorAll("tr"), function (tr) {
            return "| " + Array.prototype.map.call(tr.children, function (td) { return inlineOf(td).trim().replace(/\|/g, "\\|"); }).join(" | ") + " |";
          });
          if (rows.length) rows.splice(1, 0, rows[0].replace(/[^|]+/g, " --- "));
          out.push(rows.join("\n"));
        } else if (tag === "BLOCKQUOTE" || c.classList.contains("theme-admonition")) {
          out.push(blocksOf(c, depth).join("\n\n").replace(/^/gm, "> "));
        } else out.push.apply(out, blocksOf(c, depth));
      });
      return out.filter(function (b) { return b && b.trim(); });
    }
    return blocksOf(node, 0).join("\n\n") + "\n\nSource: " + location.href.split("#")[0] + "\n";
  }

  function mountPageActions(css) {
    var bar = document.createElement("bookchat-page-actions");
    var barShadow = bar.attachShadow({ mode: "open" });
    loader.addSheet(barShadow, loader.css);
    loader.addSheet(barShadow, css || "");
    var row = el("div", { className: "page-actions", role: "group", "aria-label": "This page" });
    var copyPage = el("button", { className: "icon-btn", type: "button" });
    copyPage.innerHTML = ICONS.copy + '<span class="label">Copy page as Markdown</span>';
    copyPage.addEventListener("click", function () {
      var article = document.querySelector("article");
      copyText(article ? pageMarkdown(article) : "", copyPage, "Page copied as Markdown");
      emit("page-action", { action: "copy" });
    });
    var askPage = el("button", { className: "icon-btn", type: "button" });
    askPage.innerHTML = ICONS.launcher + '<span class="label">Ask about this page</span>';
    askPage.addEventListener("click", function () {
      emit("page-action", { action: "ask" });
      submit("Summarize this page.", null); // sent with page_url: the answer prefers this page
    });
    row.appendChild(copyPage);
    row.appendChild(askPage);
    var prompt = "Read " + location.href.split("#")[0] + " so I can ask questions about it.";
    [["ChatGPT", "https://chatgpt.com/?q="], ["Claude", "https://claude.ai/new?q="]].forEach(function (t) {
      var link = el("a", {
        className: "icon-btn", target: "_blank", rel: "noopener noreferrer", href: t[1] + encodeURIComponent(prompt)
      });
      link.innerHTML = '<span class="label">Open in ' + t[0] + "</span>";
      link.addEventListener("click", function () {
        link.href = t[1] + encodeURIComponent("Read " + location.href.split("#")[0] + " so I can ask questions about it.");
        emit("page-action", { action: t[0].toLowerCase() });
      });
      row.appendChild(link);
    });
    barShadow.appendChild(row);
    // Docusaurus replaces the article on each navigation: keep the bar under its title.
    var scheduled = false;
    function place() {
      scheduled = false;
      var title = document.querySelector("article h1");
      if (title && bar.previousElementSibling !== title) title.after(bar);
    }
    new MutationObserver(function () {
      if (!scheduled) { scheduled = true; nextFrame(place); }
    }).observe(document.body, { childList: true, subtree: true });
    place();
  }
  if (String(pick("pageActions", "false")) === "true") styled.then(mountPageActions);

  function submit(question, selection) {
    question = String(question || "").trim();
    if (!question || busy) return;
    setMode("chat");
    open();
    pinned = true;
    addUserMessage(question, selection);
    emit("ask", { question: question, selection: selection || null, pageUrl: location.href });
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

  window.Bookchat = {
    version: VERSION,
    config: config,
    open: open,
    close: close,
    toggle: toggle,
    ask: function (question, options) { setMode("chat"); submit(question, options && options.selection); },
    /** Open in search mode with `query` typed (e.g. handed over by the site's own search). */
    search: function (query) {
      setMode("search");
      open();
      searchInput.value = String(query || "");
      runSearch();
    },
    reset: resetConversation,
    renderMarkdown: renderMarkdown,
    loader: loader
  };
  restoreHistory();
  updateAsk(); // text was selected before the chat loaded
  loader.loaded();
})();
