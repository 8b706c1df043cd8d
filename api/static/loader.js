/*! bookchat widget loader — grounded answers about this documentation site.
 *
 * This small script is what a site includes: it draws the launcher and, on first use (a click,
 * the shortcut, selected text, an answer to resume after a reload), loads the chat itself
 * (widget.js and widget.css, /widget/<version>/ on the same server). No build step. Include it with
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
 *   pageActions (data-page-actions)  "true" adds "Copy page as Markdown", "Ask about this page",
 *                                   "Open in ChatGPT" and "Open in Claude" under the page's title
 *   mode (data-mode)                "chat" (default) or "search": what the panel opens on (search:
 *                                   passages as the reader types, "Ask AI" first in the list)
 *   siteUrl (data-site-url)         the site's public URL as the index knows it (docusaurus.config's
 *                                   url + baseUrl); citations under it open on the origin the reader
 *                                   is on (localhost, a preview deploy). Without it, the page's
 *                                   <link rel="canonical"> (Docusaurus writes one) tells the same.
 * All options may also come as one JSON object in data-config (what docusaurus-plugin-bookchat
 * writes: no inline script, so a strict Content-Security-Policy needs no exception).
 * Events for analytics (bookchat:open, bookchat:ask, …): see widget.js and docs/widget.md.
 */
(function () {
  "use strict";

  var VERSION = "0.3.0"; // the same in widget.js (a test checks it)
  if (window.Bookchat) return; // included twice: keep the first

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
    if (data.config) {
      try { fromWindow = Object.assign(JSON.parse(data.config), fromWindow); } catch (e) { /* ignore a bad one */ }
    }
    var origin = location.origin;
    if (script && script.src) {
      try { origin = new URL(script.src, location.href).origin; } catch (e) { /* keep page origin */ }
    }
    function pick(name, fallback) {
      if (fromWindow[name] !== undefined && fromWindow[name] !== null) return fromWindow[name];
      if (data[name] !== undefined && data[name] !== "") return data[name];
      return fallback;
    }
    // What the launcher needs; widget.js reads the rest through `pick`.
    return {
      pick: pick,
      apiUrl: String(pick("apiUrl", origin)).replace(/\/+$/, ""),
      title: String(pick("title", "Ask the docs")),
      launcherLabel: String(pick("launcherLabel", "Ask AI")),
      accentColor: pick("accentColor", ""),
      position: String(pick("position", "")) === "bottom-left" ? "bottom-left" : "bottom-right",
      shortcut: parseShortcut(pick("shortcut", "mod+i")),
      selectionButton: String(pick("selectionButton", "true")) !== "false"
    };
  }

  /** "mod+i", "ctrl+shift+k", "/" → {key, ctrl, meta, shift, alt, label, aria}; null for none. */
  var MODIFIERS = [ // [flag, names in a shortcut, Apple label, other label, aria name], in label order
    ["ctrl", /^(ctrl|control)$/, "⌃", "Ctrl+", "Control"], ["alt", /^(alt|option)$/, "⌥", "Alt+", "Alt"],
    ["shift", /^shift$/, "⇧", "Shift+", "Shift"], ["meta", /^(cmd|meta|command)$/, "⌘", "Meta+", "Meta"]
  ];
  function parseShortcut(value) {
    var text = String(value == null ? "" : value).trim().toLowerCase();
    if (!text || text === "false" || text === "none") return null;
    var parts = text === "+" ? ["+"] : text.split("+");
    var key = parts.pop();
    if (!key) return null;
    var s = { key: key };
    var shown = key.charAt(0).toUpperCase() + key.slice(1);
    var label = "", aria = [];
    MODIFIERS.forEach(function (m) {
      s[m[0]] = parts.some(function (p) { return m[1].test(p) || p === "mod" && m[0] === (IS_APPLE ? "meta" : "ctrl"); });
      if (s[m[0]]) { label += IS_APPLE ? m[2] : m[3]; aria.push(m[4]); }
    });
    s.label = label + shown;
    s.aria = aria.concat(shown).join("+");
    return s;
  }

  var config = readConfig(findOwnScript());
  var shortcut = config.shortcut;

  // The launcher's styles and the colours the panel shares; widget.css styles the rest.
  var CSS = [
    ":host{--bc-accent:var(--ifm-color-primary,#2e8555);--bc-on-accent:#fff;",
    "--bc-font:var(--ifm-font-family-base,system-ui,-apple-system,'Segoe UI',Roboto,sans-serif);",
    "--bc-shadow:0 12px 40px rgba(0,0,0,.18),0 2px 8px rgba(0,0,0,.08);color-scheme:light}",
    ":host([data-theme=dark]){--bc-shadow:0 12px 40px rgba(0,0,0,.55),0 2px 8px rgba(0,0,0,.4);color-scheme:dark}",
    "*,*::before,*::after{box-sizing:border-box}",
    ".root{font:15px/1.55 var(--bc-font);-webkit-font-smoothing:antialiased;text-align:left;letter-spacing:normal}",
    "svg{width:20px;height:20px;flex:none}button{font:inherit;color:inherit;cursor:pointer}",
    ":focus-visible{outline:2px solid var(--bc-accent);outline-offset:2px}",
    // an icon and a label; hidden while the panel is open (the header's × closes it)
    ".launcher{position:fixed;bottom:20px;z-index:2147483000;display:flex;align-items:center;gap:8px;",
    "height:48px;padding:0 16px 0 14px;border:0;border-radius:24px;background:var(--bc-accent);color:var(--bc-on-accent);",
    "box-shadow:var(--bc-shadow);font-weight:650;font-size:15px;transition:transform .15s ease}",
    ".launcher:hover{transform:translateY(-2px)}.launcher svg{width:24px;height:24px}",
    ".launcher kbd{font:600 12px/1 var(--bc-font);padding:3px 6px;border-radius:6px;background:rgba(255,255,255,.22);opacity:.9}",
    ".open .launcher{display:none}",
    ".right .launcher,.right .panel{right:20px}.left .launcher,.left .panel{left:20px}",
    "@media (max-width:600px){.launcher{bottom:16px}.right .launcher{right:16px}.left .launcher{left:16px}.launcher kbd{display:none}}",
    "@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}.launcher:hover{transform:none}}"
  ].join("");
  // A speech bubble with a spark: "ask", not "message us".
  var ICON = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M20 11.5a7.5 7.5 0 0 1-11 ' +
    '6.6L4 19.5l1.4-4.3A7.5 7.5 0 1 1 20 11.5z" fill="none" stroke="currentColor" stroke-width="2" ' +
    'stroke-linejoin="round"/><path d="M12 7.6l1 2.4 2.4 1-2.4 1-1 2.4-1-2.4-2.4-1 2.4-1z" fill="currentColor"/></svg>';

  /** A style sheet through the CSSOM (constructed), which a strict Content-Security-Policy
   * (style-src without 'unsafe-inline') allows; a <style> element only where there is none. */
  function addSheet(shadow, css) {
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      shadow.adoptedStyleSheets = shadow.adoptedStyleSheets.concat([sheet]);
    } catch (e) { // Safari < 16.4
      var style = document.createElement("style");
      style.textContent = css;
      shadow.appendChild(style);
    }
  }

  var host = document.createElement("bookchat-widget");
  ["all:initial", "position:static", "display:contents"].forEach(function (rule) {
    var at = rule.indexOf(":");
    host.style.setProperty(rule.slice(0, at), rule.slice(at + 1), "important");
  });
  var shadow = host.attachShadow({ mode: "open" });
  addSheet(shadow, CSS);
  var root = document.createElement("div");
  root.className = "root " + (config.position === "bottom-left" ? "left" : "right");
  var launcher = document.createElement("button");
  launcher.className = "launcher";
  var attrs = {
    type: "button", "aria-haspopup": "dialog", "aria-expanded": "false", "aria-controls": "bookchat-panel",
    "aria-label": "Open chat: " + config.title, title: config.title + (shortcut ? " (" + shortcut.label + ")" : "")
  };
  if (shortcut) attrs["aria-keyshortcuts"] = shortcut.aria;
  for (var name in attrs) launcher.setAttribute(name, attrs[name]);
  launcher.innerHTML = ICON;
  var label = document.createElement("span");
  label.className = "label";
  label.textContent = config.launcherLabel;
  launcher.appendChild(label);
  if (shortcut) {
    var kbd = document.createElement("kbd");
    kbd.setAttribute("aria-hidden", "true");
    kbd.textContent = shortcut.label;
    launcher.appendChild(kbd);
  }
  root.appendChild(launcher);
  shadow.appendChild(root);
  if (config.accentColor) host.style.setProperty("--bc-accent", String(config.accentColor));

  // ---- theme: follow Docusaurus' data-theme on <html>, else the OS preference

  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function applyTheme() {
    var siteTheme = document.documentElement.getAttribute("data-theme");
    var dark = siteTheme ? siteTheme === "dark" : !!(darkQuery && darkQuery.matches);
    host.setAttribute("data-theme", dark ? "dark" : "light");
    // Text on the accent color: dark on light accents (Docusaurus' dark-mode teal), else white.
    var rgb = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(getComputedStyle(launcher).backgroundColor || "");
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
  if (darkQuery && darkQuery.addEventListener) darkQuery.addEventListener("change", applyTheme);

  // ---- loading the chat on first use

  var queued = []; // calls made before the chat loaded: run once it has
  var loading = false;
  function whenLoaded(fn) {
    if (window.Bookchat.version) { fn(window.Bookchat); return; }
    queued.push(fn);
    if (loading) return;
    loading = true;
    var base = config.apiUrl + "/widget/" + VERSION + "/";
    var script = document.createElement("script");
    script.src = base + "widget.js";
    script.async = true;
    script.onerror = function () {
      loading = false;
      if (window.console) console.warn("bookchat: could not load " + script.src);
    };
    document.head.appendChild(script);
  }
  function toggle() { whenLoaded(function (chat) { chat.toggle(); }); }

  launcher.addEventListener("click", function () { if (!window.Bookchat.version) toggle(); });

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
    toggle();
  });
  // Selected text: the chat's "Ask about this" button needs the chat.
  function onSelection() {
    var selection = window.getSelection && window.getSelection();
    if (!selection || selection.isCollapsed) return;
    document.removeEventListener("selectionchange", onSelection);
    whenLoaded(function () {});
  }
  if (config.selectionButton) document.addEventListener("selectionchange", onSelection);

  window.Bookchat = {
    loader: {
      version: VERSION, config: config, host: host, shadow: shadow, root: root, launcher: launcher, css: CSS,
      addSheet: addSheet, applyTheme: applyTheme,
      /** Called by widget.js once it runs: the queued calls go to it. */
      loaded: function () { queued.splice(0).forEach(function (fn) { fn(window.Bookchat); }); }
    },
    open: function () { whenLoaded(function (chat) { chat.open(); }); },
    close: function () {},
    ask: function (question, options) { whenLoaded(function (chat) { chat.ask(question, options); }); }
  };

  function mount() {
    document.body.appendChild(host);
    applyTheme();
    // An answer was on its way when this page was left (a reload): resume it now.
    try { if (sessionStorage.getItem("bookchat:pending")) whenLoaded(function () {}); } catch (e) { /* no storage */ }
    if (String(config.pick("pageActions", "false")) === "true") whenLoaded(function () {}); // its buttons are on the page
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
