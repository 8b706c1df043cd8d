// A monorepo: the site in website/, its docs beside it in ../docs (issue 25: such a docs
// instance was skipped without a warning), versioned, with versions.json saved with a UTF-8 BOM.

/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'Quay Tools',
  url: 'https://quay.example.org',
  baseUrl: '/',
  onBrokenLinks: 'warn',
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
  presets: [['classic', {docs: {path: '../docs', sidebarPath: undefined}, blog: false}]],
};

module.exports = config;
