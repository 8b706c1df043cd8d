import type {Config} from '@docusaurus/types';
import type * as Preset from '@docusaurus/preset-classic';

// A TypeScript config: versioned docs with a renamed current version, a version path, an
// excluded old version, and a second, versioned docs instance without its current version.
const config: Config = {
  title: 'Signal Codes',
  url: 'https://codes.example.com',
  baseUrl: '/',
  trailingSlash: false,
  onBrokenLinks: 'warn',
  // .md files as CommonMark, .mdx files as MDX: heading-comment ids differ between the two.
  // Emoji shortcodes off: `:gear:` stays as written (docs/shortcodes.md).
  markdown: {format: 'detect', emoji: false},
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
  presets: [
    [
      'classic',
      {
        docs: {
          onlyIncludeVersions: ['current', '2.0', '1.0'],
          versions: {
            current: {label: 'Upcoming', path: 'upcoming'},
            '1.0': {label: 'One (old)', path: 'legacy'},
          },
        },
        blog: false,
      } satisfies Preset.Options,
    ],
  ],
  plugins: [
    [
      '@docusaurus/plugin-content-docs',
      {
        id: 'tools',
        path: 'tools',
        routeBasePath: 'tools',
        includeCurrentVersion: false,
      } satisfies import('@docusaurus/plugin-content-docs').Options,
    ],
    [
      'content-docs',
      {id: 'manual', path: 'manual', routeBasePath: 'manual', lastVersion: 'current'},
    ],
  ],
};

export default config;
