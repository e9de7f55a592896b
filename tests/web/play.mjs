// Usage: node play.mjs PAGE_URL SECONDS WINDOW_SECONDS
// Opens PAGE_URL in Debian's headless Chromium, waits (at most SECONDS)
// until the video has decoded 30 frames, then lets it play WINDOW_SECONDS
// more by the page's own clock. Prints the page's report (window.tallyReport)
// as JSON, with `window`: the page-clock times (ms) the judged stretch
// starts and ends at, or none if it never got that far.
import { chromium } from 'playwright-core';

const [pageUrl, secondsArg, windowArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 15);
const windowMs = Number(windowArg || 4) * 1000;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
});
let report = null;
let judged = null;
try {
  const page = await browser.newPage();
  page.on('console', m => console.error('console:', m.text()));
  page.on('pageerror', e => console.error('pageerror:', e.message));
  await page.goto(pageUrl);
  const deadline = Date.now() + seconds * 1000;
  // A live stream has no "done" event: poll.
  while (Date.now() < deadline) {
    report = await page.evaluate(() => window.tallyReport);
    if (report && !report.supported) break;
    if (report && report.decodedFrames >= 30 && judged === null) judged = [report.now, report.now + windowMs];
    if (judged !== null && report.now >= judged[1]) break;
    await page.waitForTimeout(100);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ...report, window: judged }));
