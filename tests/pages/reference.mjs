// The reference rendering of a page for the helm screen's boot check: Debian's Chromium,
// headless, day theme, at the screen's size, once the page has loaded its data.
//
// usage: node reference.mjs URL WIDTH HEIGHT OUT.png

import { launch, menuLoaded } from './lib.mjs';

const [url, w, h, out] = process.argv.slice(2);
if (!url || !w || !h || !out) {
  console.error('usage: node reference.mjs URL WIDTH HEIGHT OUT.png');
  process.exit(2);
}
const { browser, close } = await launch();
try {
  const context = await browser.newContext({ viewport: { width: Number(w), height: Number(h) }, colorScheme: 'light' });
  const tab = await context.newPage();
  await tab.goto(url);
  await menuLoaded(tab);
  await tab.screenshot({ path: out });
} finally {
  await close();
}
