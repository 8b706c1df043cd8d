// @ts-check
/** Docusaurus config of the Lumen manual: the sample site bookchat indexes by default. */

const baseUrl = process.env.LUMEN_BASE_URL ?? '/lumen/';

/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'Lumen Manual',
  tagline: 'Drive a home-lab robot arm from your laptop',
  url: 'https://lumen.example.org',
  baseUrl,
  trailingSlash: false,
  i18n: {defaultLocale: 'en', locales: ['en']},
  presets: [
    [
      'classic',
      {
        docs: {
          routeBasePath: 'manual',
          sidebarPath: './sidebars.js',
        },
        blog: false,
      },
    ],
  ],
};

module.exports = config;
