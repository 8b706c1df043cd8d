/*! bookchat widget — grounded answers about this documentation site.
 *
 * One self-contained script: no build step, no external requests. Include it with
 *   <script src="https://chat.example.com/widget.js" defer data-title="Ask the docs"></script>
 * Options (data-* on the script tag, or window.BookchatConfig = {...}, which wins):
 *   apiUrl (data-api-url)           API origin; default: the origin this script was served from
 *   title (data-title)              panel heading
 *   placeholder (data-placeholder)  input placeholder
 *   accentColor (data-accent-color) any CSS color; default: the site's --ifm-color-primary
 *   position (data-position)        "bottom-right" (default) or "bottom-left"
 *   greeting (data-greeting)        first line shown in an empty conversation
 *   selectionButton (data-selection-button)  "false" hides the "Ask about this" button
 * Everything the server sends is text: it is escaped before any markup is added.
 */
(function () {
  "use strict";

  var VERSION = "0.1.2";
  if (window.Bookchat && window.Bookchat.version) return; // included twice: keep the first

  var STORAGE_KEY = "bookchat:session";
  var FEEDBACK_KEY = "bookchat:feedback";
  var POLL_WAIT_S = 25;
  var MAX_SELECTION = 4000;

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
      accentColor: pick("accentColor", ""),
      position: position === "bottom-left" ? "bottom-left" : "bottom-right",
      greeting: String(pick("greeting",
        "Hi! Ask me anything about these docs. I answer only from the documentation and link to the pages I used.")),
      selectionButton: String(pick("selectionButton", "true")) !== "false"
    };
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

  /**
   * A deliberately tiny Markdown renderer. Every piece of source text is HTML-escaped
   * first; markup is only added around escaped text. Supports paragraphs, line breaks,
   * `code`, fenced code, **bold**, *emphasis*, bullet and numbered lists, headings (as
   * bold lines), http(s) links, and [n] citation markers (via `citationHref`).
   */
  function renderMarkdown(source, citationHref) {
    var text = String(source || "").replace(/\r\n?/g, "\n").replace(/\u0000/g, "");
    var lines = text.split("\n");
    var html = [];
    var paragraph = [];
    var list = null; // {type: "ul"|"ol", items: []}

    function flushParagraph() {
      if (paragraph.length) {
        html.push("<p>" + paragraph.map(function (l) { return inline(l, citationHref); }).join("<br>") + "</p>");
        paragraph = [];
      }
    }
    function flushList() {
      if (list) {
        html.push("<" + list.type + ">" + list.items.map(function (item) {
          return "<li>" + inline(item, citationHref) + "</li>";
        }).join("") + "</" + list.type + ">");
        list = null;
      }
    }

    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      var fence = /^\s*(```+|~~~+)\s*([^`]*)$/.exec(line); // info string ignored (```py title="x")
      if (fence) {
        flushParagraph(); flushList();
        var body = [];
        i++;
        while (i < lines.length && lines[i].trim().indexOf(fence[1]) !== 0) { body.push(lines[i]); i++; }
        html.push("<pre><code>" + escapeHtml(body.join("\n")) + "</code></pre>");
        continue;
      }
      if (!line.trim()) { flushParagraph(); flushList(); continue; }
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
        html.push('<p class="heading"><strong>' + inline(heading[1], citationHref) + "</strong></p>");
        continue;
      }
      paragraph.push(line);
    }
    flushParagraph(); flushList();
    return html.join("");
  }

  function inline(source, citationHref) {
    // Code spans first, swapped out so nothing inside them is interpreted.
    var codes = [];
    var text = source.replace(/`([^`]+)`/g, function (_, code) {
      codes.push("<code>" + escapeHtml(code) + "</code>");
      return "\u0000" + (codes.length - 1) + "\u0000";
    });
    text = escapeHtml(text);
    text = text.replace(/\*\*(?=\S)([^*]*?\S)\*\*/g, "<strong>$1</strong>");
    text = text.replace(/(^|[^*\w])\*(?=\S)([^*]*?\S)\*(?!\w)/g, "$1<em>$2</em>");
    // [label](http...) — the label and URL were escaped above; the URL is re-checked.
    text = text.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, function (match, label, url) {
      var href = safeUrl(url.replace(/&amp;/g, "&"));
      if (!href) return label;
      return '<a href="' + escapeHtml(href) + '" target="_blank" rel="noopener noreferrer">' + label + "</a>";
    });
    text = text.replace(/\[(\d{1,3})\]/g, function (_, n) {
      var target = citationHref ? citationHref(Number(n)) : null;
      if (!target) return '<sup class="marker">' + n + "</sup>";
      return '<a class="marker" href="' + escapeHtml(target.href) + '" target="_blank" rel="noopener" title="' +
        escapeHtml(target.label) + '">' + n + "</a>";
    });
    return text.replace(/\u0000(\d+)\u0000/g, function (_, i) { return codes[Number(i)]; });
  }

  /**
   * Map [n] markers to citations. Markers are passage numbers; the citations list is in
   * the order first cited. With a `number` field the mapping is exact; without it, the
   * i-th distinct marker maps to the i-th citation only when the counts agree.
   */
  function citationResolver(answer, citations) {
    if (!citations || !citations.length) return null;
    var byNumber = {};
    var hasNumbers = citations.every(function (c) { return typeof c.number === "number"; });
    if (hasNumbers) {
      citations.forEach(function (c) { byNumber[c.number] = c; });
    } else {
      var seen = [];
      String(answer || "").replace(/\[(\d{1,3})\]/g, function (_, n) {
        if (seen.indexOf(n) < 0) seen.push(n);
        return _;
      });
      if (seen.length !== citations.length) return null;
      seen.forEach(function (n, i) { byNumber[n] = citations[i]; });
    }
    return function (n) {
      var c = byNumber[n];
      var href = c && safeUrl(c.url);
      return href ? { href: href, label: citationLabel(c) } : null;
    };
  }

  function citationLabel(c) {
    var title = c.title || c.path || "";
    return c.heading && c.heading !== title ? title + " › " + c.heading : title;
  }

  // ---------------------------------------------------------------- styles

  var ICONS = {
    chat: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6A.5.5 0 0 1 5 19.2V16h0A2.5 2.5 0 0 1 4 13.5z" fill="currentColor"/></svg>',
    close: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M6 6l12 12M18 6L6 18" stroke="currentColor" stroke-width="2" stroke-linecap="round" fill="none"/></svg>',
    send: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 12l16-8-6 16-2.5-6.5z" fill="currentColor"/></svg>',
    plus: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 5v14M5 12h14" stroke="currentColor" stroke-width="2" stroke-linecap="round" fill="none"/></svg>',
    up: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M7 10v10H4V10zm2 10V10l4-7c1.4 0 2.3 1.2 2 2.5L14.3 9H19a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.8 20z" fill="currentColor"/></svg>',
    down: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M7 14V4H4v10zm2-10v10l4 7c1.4 0 2.3-1.2 2-2.5L14.3 15H19a2 2 0 0 0 2-2.3l-1.2-7A2 2 0 0 0 17.8 4z" fill="currentColor"/></svg>',
    book: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M5 4h9a3 3 0 0 1 3 3v13H8a3 3 0 0 1-3-3z M17 7h2v13h-2" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/></svg>',
    info: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="1.8"/><path d="M12 11v6M12 7.5v.5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
    warn: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 3l10 18H2z" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/><path d="M12 10v5M12 17.5v.5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>',
    quote: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M5 18c3-1 4-3.5 4-6H5V6h6v6c0 4-2 7-6 8zm9 0c3-1 4-3.5 4-6h-4V6h6v6c0 4-2 7-6 8z" fill="currentColor"/></svg>'
  };

  var CSS = [
    ":host{--bc-accent:var(--ifm-color-primary,#2e8555);--bc-on-accent:#fff;",
    "--bc-bg:#fff;--bc-surface:#f4f5f7;--bc-text:#1c1e21;--bc-muted:#5f6670;--bc-border:#dadde1;",
    "--bc-user:var(--bc-accent);--bc-on-user:var(--bc-on-accent);--bc-error:#b3261e;--bc-error-bg:#fdecea;",
    "--bc-refused-bg:#f6f4ec;--bc-refused-border:#d9d2b6;--bc-shadow:0 12px 40px rgba(0,0,0,.18),0 2px 8px rgba(0,0,0,.08);",
    "--bc-code-bg:#eceef1;color-scheme:light}",
    ":host([data-theme=dark]){--bc-bg:#1b1b1d;--bc-surface:#242526;--bc-text:#e3e3e3;--bc-muted:#a8adb4;",
    "--bc-border:#3a3b3d;--bc-error:#ffb4ab;--bc-error-bg:#3b1c1a;--bc-refused-bg:#26251f;--bc-refused-border:#4a4636;",
    "--bc-shadow:0 12px 40px rgba(0,0,0,.55),0 2px 8px rgba(0,0,0,.4);--bc-code-bg:#2f3033;color-scheme:dark}",
    "*,*::before,*::after{box-sizing:border-box}",
    ".root{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Ubuntu,Cantarell,'Noto Sans',sans-serif;color:var(--bc-text);",
    "-webkit-font-smoothing:antialiased;text-align:left;letter-spacing:normal}",
    "svg{width:20px;height:20px;flex:none}",
    "button{font:inherit;color:inherit;cursor:pointer}",
    ":focus-visible{outline:2px solid var(--bc-accent);outline-offset:2px}",
    ".launcher{position:fixed;bottom:20px;z-index:2147483000;display:flex;align-items:center;gap:8px;",
    "height:52px;padding:0 18px 0 16px;border:0;border-radius:26px;background:var(--bc-accent);color:var(--bc-on-accent);",
    "box-shadow:var(--bc-shadow);font-weight:600;transition:transform .15s ease}",
    ".launcher:hover{transform:translateY(-1px)}",
    ".launcher span{display:inline-flex}.open .launcher .when-closed,.root:not(.open) .launcher .when-open{display:none}",
    ".launcher svg{width:22px;height:22px}",
    ".right .launcher,.right .panel{right:20px}.left .launcher,.left .panel{left:20px}",
    ".panel{position:fixed;bottom:84px;z-index:2147483001;width:400px;height:min(620px,calc(100vh - 110px));",
    "display:flex;flex-direction:column;background:var(--bc-bg);border:1px solid var(--bc-border);border-radius:16px;",
    "box-shadow:var(--bc-shadow);overflow:hidden}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;gap:6px;padding:10px 10px 10px 16px;border-bottom:1px solid var(--bc-border)}",
    "header .logo{color:var(--bc-accent);display:flex}",
    "header h2{flex:1;margin:0;font-size:16px;font-weight:650;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".icon-btn{display:inline-flex;align-items:center;justify-content:center;gap:4px;min-width:36px;height:36px;padding:0 8px;",
    "border:0;border-radius:8px;background:transparent;color:var(--bc-muted)}",
    ".icon-btn:hover{background:var(--bc-surface);color:var(--bc-text)}",
    ".icon-btn .label{font-size:13px}",
    ".log{flex:1;overflow-y:auto;padding:16px;display:flex;flex-direction:column;gap:14px;overscroll-behavior:contain}",
    ".msg{max-width:92%;overflow-wrap:anywhere}",
    ".msg p{margin:0 0 .6em}.msg p:last-child{margin-bottom:0}",
    ".msg ul,.msg ol{margin:0 0 .6em;padding-left:1.3em}.msg li{margin:.15em 0}",
    ".msg code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em;background:var(--bc-code-bg);",
    "padding:.1em .35em;border-radius:4px}",
    ".msg pre{margin:0 0 .6em;padding:10px 12px;background:var(--bc-code-bg);border-radius:8px;overflow-x:auto}",
    ".msg pre code{background:none;padding:0;font-size:.85em;white-space:pre}",
    ".msg a{color:var(--bc-accent);text-underline-offset:2px}",
    ".user{align-self:flex-end;background:var(--bc-user);color:var(--bc-on-user);padding:9px 13px;border-radius:16px 16px 4px 16px;white-space:pre-wrap}",
    ".user .quote{display:block;margin:0 0 6px;padding:4px 0 4px 8px;border-left:3px solid currentColor;opacity:.85;font-size:13px;",
    "white-space:normal;display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}",
    ".bot{align-self:flex-start;background:var(--bc-surface);padding:10px 14px;border-radius:16px 16px 16px 4px}",
    ".bot.greeting{color:var(--bc-muted)}",
    ".bot.refused{background:var(--bc-refused-bg);border:1px dashed var(--bc-refused-border);color:var(--bc-muted)}",
    ".badge{display:inline-flex;align-items:center;gap:5px;margin-bottom:6px;font-size:12px;font-weight:650;text-transform:uppercase;",
    "letter-spacing:.04em;color:var(--bc-muted)}.badge svg{width:15px;height:15px}",
    ".marker{font-size:.72em;vertical-align:super;line-height:0;padding:0 .15em;font-weight:650}",
    "a.marker{text-decoration:none}",
    ".cites{margin:10px 0 0;padding:8px 0 0;border-top:1px solid var(--bc-border);list-style:none;font-size:13px}",
    ".cites li{display:flex;gap:6px;margin:3px 0}.cites .n{color:var(--bc-muted);min-width:1.4em}",
    ".cites a{color:var(--bc-accent);text-decoration:none}.cites a:hover{text-decoration:underline}",
    ".actions{display:flex;gap:2px;margin-top:6px}",
    ".actions .icon-btn{min-width:30px;height:30px;padding:0 6px}.actions svg{width:16px;height:16px}",
    ".actions .icon-btn[aria-pressed=true]{color:var(--bc-accent);background:var(--bc-bg)}",
    ".status{display:flex;align-items:center;gap:8px;color:var(--bc-muted);font-size:13px}",
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
    ".send{width:42px;height:42px;border:0;border-radius:12px;background:var(--bc-accent);color:var(--bc-on-accent);",
    "display:flex;align-items:center;justify-content:center}",
    ".send:disabled{opacity:.45;cursor:default}",
    ".footer{padding:0 12px 8px;font-size:11px;color:var(--bc-muted);text-align:center}",
    ".ask{position:fixed;z-index:2147483002;display:flex;align-items:center;gap:6px;padding:6px 11px;border:0;border-radius:18px;",
    "background:var(--bc-accent);color:var(--bc-on-accent);font-size:13px;font-weight:600;box-shadow:var(--bc-shadow)}",
    ".ask[hidden]{display:none}.ask svg{width:15px;height:15px}",
    ".sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);border:0}",
    "@media (max-width:600px){.panel{inset:0;width:100%;height:100%;height:100dvh;border-radius:0;border:0}",
    ".root.open .launcher{display:none}.launcher{bottom:16px}.right .launcher{right:16px}.left .launcher{left:16px}",
    ".launcher .label{display:none}.launcher{padding:0 15px}}",
    "@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}"
  ].join("");

  // ---------------------------------------------------------------- the widget

  var host = document.createElement("bookchat-widget");
  host.setAttribute("style", "all:initial !important;position:static !important;display:contents !important");
  var shadow = host.attachShadow({ mode: "open" });
  var style = document.createElement("style");
  style.textContent = CSS;
  shadow.appendChild(style);

  var root = el("div", { className: "root " + (config.position === "bottom-left" ? "left" : "right") });
  var launcher = el("button", {
    className: "launcher", type: "button", "aria-haspopup": "dialog", "aria-expanded": "false",
    "aria-controls": "bookchat-panel", "aria-label": "Open chat: " + config.title
  });
  launcher.innerHTML = '<span class="when-closed">' + ICONS.chat + '</span><span class="when-open">' + ICONS.close +
    '</span><span class="label when-closed">Ask</span><span class="label when-open">Close</span>';

  var titleId = "bookchat-title";
  var heading = el("h2", { id: titleId, text: config.title });
  var logo = el("span", { className: "logo" });
  logo.innerHTML = ICONS.book;
  var newButton = el("button", { className: "icon-btn", type: "button", title: "New conversation", "aria-label": "New conversation" });
  newButton.innerHTML = ICONS.plus + '<span class="label">New</span>';
  var closeButton = el("button", { className: "icon-btn", type: "button", title: "Close", "aria-label": "Close chat" });
  closeButton.innerHTML = ICONS.close;
  var log = el("div", {
    className: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Conversation"
  });
  var input = el("textarea", { id: "bookchat-input", rows: "1", placeholder: config.placeholder, "aria-label": "Your question", maxlength: "4000" });
  var sendButton = el("button", { className: "send", type: "submit", "aria-label": "Send", title: "Send" });
  sendButton.innerHTML = ICONS.send;
  var form = el("form", { "aria-label": "Ask a question" }, [input, sendButton]);
  var footer = el("div", { className: "footer", text: "Answers come only from this documentation." });
  var panel = el("div", {
    className: "panel", id: "bookchat-panel", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId, hidden: ""
  }, [el("header", null, [logo, heading, newButton, closeButton]), log, form, footer]);
  var askButton = el("button", { className: "ask", type: "button", hidden: "" });
  askButton.innerHTML = ICONS.quote + "<span>Ask about this</span>";

  root.appendChild(panel);
  root.appendChild(launcher);
  root.appendChild(askButton);
  shadow.appendChild(root);

  if (config.accentColor) host.style.setProperty("--bc-accent", String(config.accentColor));

  // ---- theme: follow Docusaurus' data-theme on <html>, else the OS preference

  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function applyTheme() {
    var siteTheme = document.documentElement.getAttribute("data-theme");
    var dark = siteTheme ? siteTheme === "dark" : !!(darkQuery && darkQuery.matches);
    host.setAttribute("data-theme", dark ? "dark" : "light");
    // Text on the accent color: dark on light accents (Docusaurus' dark-mode teal), else white.
    var probe = getComputedStyle(launcher).backgroundColor;
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

  // ---- open / close, focus trap

  var lastFocus = null;
  function isOpen() { return !panel.hidden; }
  function open() {
    if (isOpen()) { input.focus(); return; }
    panel.hidden = false;
    root.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat: " + config.title);
    if (!log.childElementCount) showGreeting();
    scrollToEnd();
    input.focus();
  }
  function close() {
    if (!isOpen()) return;
    panel.hidden = true;
    root.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat: " + config.title);
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
      close();
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

  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  // ---- session (localStorage) and history restore

  var session = storageGet(STORAGE_KEY); // {id, token}
  var feedbackState = storageGet(FEEDBACK_KEY) || {};
  var busy = false;

  function saveSession(id, token) {
    session = { id: id, token: token };
    storageSet(STORAGE_KEY, session);
  }

  function showGreeting() {
    var greeting = el("div", { className: "msg bot greeting" });
    greeting.appendChild(el("p", { text: config.greeting }));
    log.appendChild(greeting);
  }

  function resetConversation() {
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
      messages.forEach(function (m) {
        if (m.role === "user") addUserMessage(m.content, m.selection);
        else if (m.role === "assistant") {
          var bubble = addBotBubble();
          finishAnswer(bubble, { answer: m.content, citations: m.citations || [], refused: !!m.refused, message_id: m.id });
        }
      });
      scrollToEnd();
    }).catch(function () { /* offline: keep the empty conversation, questions still work later */ });
  }

  // ---- rendering messages

  function addUserMessage(text, selection) {
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
    scrollToEnd();
    return bubble;
  }

  function setStatus(bubble, text) {
    var node = bubble.querySelector(".status-text");
    if (node) node.textContent = text;
  }

  function streamInto(bubble, text) {
    var body = bubble.querySelector(".text");
    if (!body) {
      bubble.textContent = "";
      body = el("div", { className: "text" });
      bubble.appendChild(body);
      bubble.classList.add("streaming");
    }
    var nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    body.innerHTML = renderMarkdown(text, null); // escaped inside renderMarkdown
    if (nearBottom) scrollToEnd();
  }

  function finishAnswer(bubble, result) {
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
    body.innerHTML = renderMarkdown(result.answer || "", citationResolver(result.answer, citations));
    bubble.appendChild(body);
    if (citations.length && !result.refused) {
      var list = el("ol", { className: "cites", "aria-label": "Sources" });
      citations.forEach(function (c, i) {
        var link = el("a", { href: safeUrl(c.url), target: "_blank", rel: "noopener", text: citationLabel(c) });
        list.appendChild(el("li", null, [el("span", { className: "n", text: (i + 1) + "." }), link]));
      });
      bubble.appendChild(list);
    }
    if (result.message_id) bubble.appendChild(feedbackButtons(result.message_id));
    scrollToEnd();
  }

  function feedbackButtons(messageId) {
    var row = el("div", { className: "actions", role: "group", "aria-label": "Was this helpful?" });
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
    scrollToEnd();
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
  }

  // ---- sending a question and following its job

  /** Post the question; on 202 follow the job. `bubble` is reused when retrying. */
  function ask(question, selection, bubble, attempt) {
    attempt = attempt || { key: newKey() };
    setBusy(true);
    if (!bubble) bubble = addBotBubble();
    else {
      var fresh = addBotBubble();
      bubble.replaceWith(fresh);
      bubble = fresh;
    }
    var body = { message: question, page_url: location.href };
    if (selection) body.selection = selection;
    var headers = { "Content-Type": "application/json", "Idempotency-Key": attempt.key };
    if (session && session.id && session.token) {
      body.session_id = session.id;
      headers["X-Session-Token"] = session.token;
    }
    var retry = function (b) { ask(question, selection, b, { key: newKey() }); };
    fetch(apiUrl("/v1/chat"), { method: "POST", headers: headers, body: JSON.stringify(body) })
      .then(function (response) {
        if (response.status === 202) {
          return response.json().then(function (accepted) {
            saveSession(accepted.session_id, accepted.session_token);
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
        // Same Idempotency-Key: if the question did reach the server, it is not asked twice.
        showError(bubble, "Can't reach the assistant — check your connection and try again.",
          function (b) { ask(question, selection, b, attempt); });
      });
  }

  function follow(accepted, bubble, resend) {
    var text = "";
    var finished = false;
    var frame = 0;

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
        setStatus(bubble, "Thinking…");
      }
      if (data && data.status === "running") setStatus(bubble, "Searching the docs…");
    }
    function onProgress(data) {
      if (data && typeof data.message === "string") setStatus(bubble, data.message);
    }

    function poll(failures) {
      if (finished) return;
      var url = new URL(apiUrl(accepted.status_url));
      url.searchParams.set("wait", String(POLL_WAIT_S));
      fetch(url.href, { cache: "no-store" }).then(function (response) {
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
          showError(bubble, "Lost the connection while waiting for the answer — check your connection and try again.",
            function (b) {
              var fresh = addBotBubble();
              b.replaceWith(fresh);
              setBusy(true);
              follow(accepted, fresh, resend);
            });
          finished = true;
          return;
        }
        setTimeout(function () { poll(failures + 1); }, 1000 * Math.pow(2, failures));
      });
    }

    if (typeof window.EventSource !== "function") { poll(0); return; }

    var source = new EventSource(apiUrl(accepted.events_url));
    var received = false;
    var connectionErrors = 0;
    function handle(fn) {
      return function (event) {
        received = true;
        connectionErrors = 0;
        var data = null;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        fn(data);
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
