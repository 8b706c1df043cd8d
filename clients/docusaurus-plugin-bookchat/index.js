/**
 * docusaurus-plugin-bookchat: adds the bookchat chat widget to every page of a Docusaurus site.
 *
 * Options are read from `themeConfig.bookchat` (as @docusaurus/theme-search-algolia reads
 * `themeConfig.algolia`) and/or from the plugin's own options, which win:
 *
 *   plugins: ['docusaurus-plugin-bookchat'],
 *   themeConfig: {bookchat: {apiUrl: 'https://chat.example.com', title: 'Ask the docs'}},
 *
 * It injects one tag into <head>: `<script src="<apiUrl>/widget.js" defer data-config="{...}">`,
 * the widget's options as JSON in an attribute (no inline script: a site with a strict
 * Content-Security-Policy needs no 'unsafe-inline'). No code of the widget is bundled: the
 * bookchat server serves it, so the widget and the API it talks to always match. The site's
 * `url` + `baseUrl` go along as `siteUrl`, so citations open on whatever origin serves the
 * site (localhost, a preview deploy) instead of the production host.
 * Errors: an invalid option stops the build with a message naming the option; an unknown one
 * (a typo) names the nearest known option, as Docusaurus' own validation does.
 */
'use strict';

const NAME = 'docusaurus-plugin-bookchat';

// Widget options passed through as they are (see api/static/widget.js for what each does).
const STRING_OPTIONS = [
  'title',
  'placeholder',
  'launcherLabel',
  'greeting',
  'accentColor',
  'shortcut',
];

const KNOWN_OPTIONS = [
  'apiUrl',
  ...STRING_OPTIONS,
  'position',
  'mode',
  'suggestedQuestions',
  'selectionButton',
  'pageActions',
  'siteUrl',
  'widgetVersion',
];

function fail(message) {
  throw new Error(`${NAME}: ${message}`);
}

/** Levenshtein distance (small strings: option names). */
function distance(a, b) {
  let row = Array.from({length: b.length + 1}, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1;
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + cost);
    }
    row = next;
  }
  return row[b.length];
}

function checkKnown(options) {
  for (const key of Object.keys(options)) {
    if (KNOWN_OPTIONS.includes(key)) continue;
    const [nearest] = [...KNOWN_OPTIONS].sort((a, b) => distance(key, a) - distance(key, b));
    const hint = distance(key, nearest) <= Math.max(2, Math.floor(nearest.length / 3))
      ? ` Did you mean \`${nearest}\`?`
      : '';
    fail(`unknown option \`${key}\`.${hint} Known options: ${KNOWN_OPTIONS.join(', ')}.`);
  }
}

/** Check and normalise the merged options; returns {scriptUrl, widget} or throws. */
function normalizeOptions(raw) {
  const options = {...(raw || {})};
  checkKnown(options);
  if (typeof options.apiUrl !== 'string' || !/^https?:\/\/[^/]+/.test(options.apiUrl)) {
    fail('`apiUrl` is required: the bookchat server origin, e.g. "https://chat.example.com".');
  }
  const apiUrl = options.apiUrl.replace(/\/+$/, '');
  const widget = {apiUrl};
  for (const key of STRING_OPTIONS) {
    if (options[key] === undefined) continue;
    if (key === 'shortcut' && options[key] === false) {
      widget.shortcut = 'false';
      continue;
    }
    if (typeof options[key] !== 'string') fail(`\`${key}\` must be a string.`);
    widget[key] = options[key];
  }
  if (options.position !== undefined) {
    if (options.position !== 'bottom-right' && options.position !== 'bottom-left') {
      fail('`position` must be "bottom-right" or "bottom-left".');
    }
    widget.position = options.position;
  }
  if (options.mode !== undefined) {
    if (options.mode !== 'chat' && options.mode !== 'search') {
      fail('`mode` must be "chat" or "search" (what the panel opens on).');
    }
    widget.mode = options.mode;
  }
  if (options.suggestedQuestions !== undefined) {
    const questions = options.suggestedQuestions;
    if (!Array.isArray(questions) || !questions.every((q) => typeof q === 'string')) {
      fail('`suggestedQuestions` must be an array of strings.');
    }
    widget.suggestedQuestions = questions;
  }
  for (const key of ['selectionButton', 'pageActions']) {
    if (options[key] === undefined) continue;
    if (typeof options[key] !== 'boolean') fail(`\`${key}\` must be true or false.`);
    widget[key] = String(options[key]);
  }
  if (options.siteUrl !== undefined) {
    if (typeof options.siteUrl !== 'string' || !/^https?:\/\/[^/]+/.test(options.siteUrl)) {
      fail('`siteUrl` must be an absolute http(s) URL, e.g. "https://docs.example.com/".');
    }
    widget.siteUrl = options.siteUrl;
  }
  let script = `${apiUrl}/widget.js`;
  if (options.widgetVersion !== undefined) {
    if (typeof options.widgetVersion !== 'string' || !/^[\w.-]+$/.test(options.widgetVersion)) {
      fail('`widgetVersion` must be a version such as "0.2.0" (served at /widget/<version>.js).');
    }
    script = `${apiUrl}/widget/${options.widgetVersion}.js`;
  }
  return {scriptUrl: script, widget};
}

function pluginBookchat(context, options) {
  const fromTheme = (context.siteConfig.themeConfig || {}).bookchat || {};
  const {id, ...own} = options || {};
  const {scriptUrl, widget} = normalizeOptions({...fromTheme, ...own});
  if (widget.siteUrl === undefined && context.siteConfig.url) {
    widget.siteUrl = context.siteConfig.url.replace(/\/+$/, '') + (context.siteConfig.baseUrl || '/');
  }
  return {
    name: NAME,
    injectHtmlTags() {
      // Docusaurus escapes attribute values (escape-html), so the JSON cannot end the tag.
      const attributes = {src: scriptUrl, defer: true, 'data-config': JSON.stringify(widget)};
      return {headTags: [{tagName: 'script', attributes}]};
    },
  };
}

module.exports = pluginBookchat;
module.exports.default = pluginBookchat;
module.exports.normalizeOptions = normalizeOptions;

/** Docusaurus calls these at config load; a wrong option fails the build early. */
module.exports.validateOptions = function validateOptions({options}) {
  const {id, ...rest} = options || {};
  if (Object.keys(rest).length) normalizeOptions({apiUrl: 'https://placeholder.invalid', ...rest});
  return options || {};
};
module.exports.validateThemeConfig = function validateThemeConfig({themeConfig}) {
  if (themeConfig.bookchat !== undefined) {
    normalizeOptions({apiUrl: 'https://placeholder.invalid', ...themeConfig.bookchat});
  }
  return themeConfig;
};
