// greg's browser test driver: runs a list of steps in headless Chromium (Playwright) and
// prints what each step saw as one JSON array on stdout. tests/browser.rs writes the steps,
// starts greg and the fake GitHub, and checks the results; this file makes no assertion of
// its own beyond "the step could be carried out".
//
// Usage: node pages.mjs <steps.json>; environment: GREG_URL (greg's base URL),
// GREG_CHROMIUM (the browser binary, default /usr/bin/chromium), GREG_SCREENSHOTS (folder for
// screenshots). Step kinds:
//   {"goto": "/path"}                        navigate; records status, url, text
//   {"click": "css or text=... selector"}    click and wait for the page that follows
//   {"fill": "selector", "value": "text"}    type into a field
//   {"request": {"method": "POST", "path": "/p", "form": {...}, "csrf_from_page": true}}
//                                            an HTTP request with the page's cookies (and,
//                                            with csrf_from_page, the current page's
//                                            csrf_token field added to the form)
//   {"screenshot": "name", "full_page": true} PNG into GREG_SCREENSHOTS/name.png
//   {"viewport": {"width": 390, "height": 844}}
//   {"color_scheme": "dark" | "light"}
//   {"clear_cookies": true}
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.GREG_URL;
const steps = JSON.parse(readFileSync(process.argv[2], "utf8"));
const shots = process.env.GREG_SCREENSHOTS || ".";
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.GREG_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"],
});
const results = [];
let failed = null;
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  let last = null;
  const record = async (i, response) => {
    const r = {
      i,
      status: response ? response.status() : null,
      url: page.url(),
      title: await page.title(),
      text: await page.locator("body").innerText().catch(() => ""),
    };
    results.push(r);
    return r;
  };
  for (const [i, step] of steps.entries()) {
    if (step.goto !== undefined) {
      last = await page.goto(new URL(step.goto, base).toString());
      await record(i, last);
    } else if (step.click !== undefined) {
      const [response] = await Promise.all([
        page.waitForNavigation({ timeout: 15000 }).catch(() => null),
        page.locator(step.click).first().click(),
      ]);
      await page.waitForLoadState("load");
      await record(i, response);
    } else if (step.fill !== undefined) {
      await page.locator(step.fill).first().fill(step.value);
      results.push({ i });
    } else if (step.request !== undefined) {
      const q = step.request;
      if (q.csrf_from_page) {
        const token = await page.locator('input[name="csrf_token"]').first().inputValue();
        q.form = { ...(q.form || {}), csrf_token: token };
      }
      const response = await context.request.fetch(new URL(q.path, base).toString(), {
        method: q.method || "GET",
        form: q.form,
        data: q.body,
        headers: q.headers,
        maxRedirects: 0,
        failOnStatusCode: false,
      });
      results.push({ i, status: response.status(), url: response.url(), text: await response.text() });
    } else if (step.screenshot !== undefined) {
      const path = join(shots, `${step.screenshot}.png`);
      await page.screenshot({ path, fullPage: step.full_page !== false });
      results.push({ i, path });
    } else if (step.viewport !== undefined) {
      await page.setViewportSize(step.viewport);
      results.push({ i });
    } else if (step.color_scheme !== undefined) {
      await page.emulateMedia({ colorScheme: step.color_scheme });
      results.push({ i });
    } else if (step.clear_cookies !== undefined) {
      await context.clearCookies();
      results.push({ i });
    } else {
      throw new Error(`step ${i}: unknown kind ${JSON.stringify(step)}`);
    }
  }
} catch (e) {
  failed = `${e.name}: ${e.message}`;
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ results, error: failed }) + "\n");
process.exit(failed ? 1 : 0);
