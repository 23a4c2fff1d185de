// How long the main menu takes to load, for ci/bench-boot: Debian's Chromium, headless, at
// the helm screen's size, opens URL in a new context (no cache, no cookies) COUNT times; each
// time is from the navigation's start until the menu shows its data (the software version
// from the API), as the helm screen shows it. Prints the times in milliseconds as JSON.
//
// usage: node menu-load.mjs URL COUNT

import { launch, menuLoaded } from './lib.mjs';

const [url, count] = process.argv.slice(2);
if (!url || !(Number(count) > 0)) {
  console.error('usage: node menu-load.mjs URL COUNT');
  process.exit(2);
}
const { browser, close } = await launch();
const times = [];
try {
  for (let i = 0; i < Number(count); i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const tab = await context.newPage();
    const start = Date.now();
    await tab.goto(url);
    await menuLoaded(tab);
    times.push(Date.now() - start);
    if (await tab.locator('#home-version').count() === 0) {
      throw new Error(`${url} is not the main menu: ${await tab.title()}`);
    }
    await context.close();
  }
} finally {
  await close();
}
console.log(JSON.stringify({ url, ms: times }));
