/**
 * docusaurus-plugin-bookchat: adds the bookchat chat widget to every page of a Docusaurus site.
 *
 * Options are read from `themeConfig.bookchat` (as @docusaurus/theme-search-algolia reads
 * `themeConfig.algolia`) and/or from the plugin's own options, which win:
 *
 *   plugins: ['docusaurus-plugin-bookchat'],
 *   themeConfig: {bookchat: {apiUrl: 'https://chat.example.com', title: 'Ask the docs'}},
 *
 * It injects two tags into <head>: `window.BookchatConfig = {...}` (the widget's options, as
 * JSON) and `<script src="<apiUrl>/widget.js" defer>`. No code of the widget is bundled: the
 * bookchat server serves it, so the widget and the API it talks to always match.
 * Errors: an invalid option stops the build with a message naming the option.
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

function fail(message) {
  throw new Error(`${NAME}: ${message}`);
}

/** Check and normalise the merged options; returns {scriptUrl, widget} or throws. */
function normalizeOptions(raw) {
  const options = {...(raw || {})};
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
  if (options.suggestedQuestions !== undefined) {
    const questions = options.suggestedQuestions;
    if (!Array.isArray(questions) || !questions.every((q) => typeof q === 'string')) {
      fail('`suggestedQuestions` must be an array of strings.');
    }
    widget.suggestedQuestions = questions;
  }
  if (options.selectionButton !== undefined) {
    if (typeof options.selectionButton !== 'boolean') fail('`selectionButton` must be true or false.');
    widget.selectionButton = String(options.selectionButton);
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

/** JSON safe inside an inline <script> (no "</script>", no U+2028/2029 line breaks). */
function inlineJson(value) {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function pluginBookchat(context, options) {
  const fromTheme = (context.siteConfig.themeConfig || {}).bookchat || {};
  const {scriptUrl, widget} = normalizeOptions({...fromTheme, ...options});
  return {
    name: NAME,
    injectHtmlTags() {
      return {
        headTags: [
          {tagName: 'script', innerHTML: `window.BookchatConfig = ${inlineJson(widget)};`},
          {tagName: 'script', attributes: {src: scriptUrl, defer: true}},
        ],
      };
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
