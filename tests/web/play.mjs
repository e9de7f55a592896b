// Usage: node play.mjs PAGE_URL SECONDS
// Opens PAGE_URL in Debian's headless Chromium, waits until the page's
// video has decoded frames (or SECONDS pass), prints window.tallyReport as JSON.
import { chromium } from 'playwright-core';

const [pageUrl, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 15);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
});
let report = null;
try {
  const page = await browser.newPage();
  page.on('console', m => console.error('console:', m.text()));
  await page.goto(pageUrl);
  const deadline = Date.now() + seconds * 1000;
  // Poll the page's own report; a live stream has no "done" event.
  while (Date.now() < deadline) {
    report = await page.evaluate(() => window.tallyReport);
    if (report && (report.decodedFrames >= 30 || !report.supported)) break;
    await page.waitForTimeout(200);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
