// Usage: node play.mjs PAGE_URL SECONDS
// Opens PAGE_URL in Debian's headless Chromium and polls the page's own
// report (window.tallyReport) until the video has decoded 30 frames and its
// playback clock has then moved on by half a second, or SECONDS pass.
// Prints the last report as JSON, with `clock`: the video's currentTime
// when 30 frames had decoded and when the poll ended.
import { chromium } from 'playwright-core';

const [pageUrl, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 15);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
});
let report = null;
const clock = [];
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
    if (report && report.decodedFrames >= 30) {
      if (clock.length === 0) clock.push(report.currentTime);
      else if (report.currentTime >= clock[0] + 0.5) break;
    }
    await page.waitForTimeout(100);
  }
  if (report && clock.length > 0) clock.push(report.currentTime);
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ...report, clock }));
