// Swagger UI in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Loads /docs, finds every tag of the spec, opens
// GET /offerings, presses "Try it out" and "Execute", and expects a 200 with
// a non-empty JSON array. Screenshots go to OUT_DIR.
//
// Usage: node swagger_ui.mjs BASE_URL OUT_DIR

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error("usage: node swagger_ui.mjs BASE_URL OUT_DIR");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const spec = await (await fetch(`${base}/openapi.json`)).json();
const tags = spec.tags.map((t) => t.name);

let passed = 0;
function ok(text) {
  passed += 1;
  console.log(`  ok ${String(passed).padStart(2)}. ${text}`);
}

// A fresh profile each run; without the background-networking flags Chromium
// keeps dialing out, which this closed network refuses.
const profile = mkdtempSync(join(tmpdir(), "wemaster-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 1000 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));

try {
  const answer = await page.goto(`${base}/docs`, { waitUntil: "load" });
  if (answer.status() !== 200) throw new Error(`/docs answered ${answer.status()}`);
  await page.locator(".swagger-ui .info .title").filter({ hasText: spec.info.title }).waitFor();
  ok(`/docs shows "${spec.info.title}"`);

  const shown = await page.locator(".swagger-ui .opblock-tag-section h3.opblock-tag").evaluateAll((hs) =>
    hs.map((h) => h.getAttribute("data-tag")),
  );
  const missing = tags.filter((t) => !shown.includes(t));
  if (missing.length) throw new Error(`tags not shown: ${missing.join(", ")} (shown: ${shown.join(", ")})`);
  ok(`every tag of the spec is shown: ${tags.join(", ")}`);
  await page.screenshot({ path: join(outDir, "swagger-ui.png"), fullPage: true });

  const operations = Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  const blocks = await page.locator(".swagger-ui .opblock").count();
  if (blocks !== operations) throw new Error(`${blocks} operation blocks for ${operations} operations`);
  ok(`${blocks} operation blocks, one per operation`);

  const op = page.locator("#operations-Catalogue-listOfferings");
  await op.locator(".opblock-summary").first().click();
  await op.locator("button.try-out__btn").click();
  await op.locator('tr[data-param-name="limit"] input').fill("3");
  await op.locator('tr[data-param-name="q"] input').fill("python");
  await op.locator("button.execute").click();
  ok('GET /offerings: "Try it out", limit=3, q=python, "Execute"');

  const live = op.locator(".live-responses-table .response");
  await live.first().waitFor({ timeout: 15000 });
  const status = (await live.first().locator(".response-col_status").innerText()).trim();
  if (status !== "200") throw new Error(`Execute got status ${status}`);
  const body = await op.locator(".live-responses-table .response-col_description pre").first().innerText();
  const data = JSON.parse(body);
  if (!Array.isArray(data) || data.length === 0 || data.length > 3) {
    throw new Error(`expected 1 to 3 offerings, got ${body.slice(0, 200)}`);
  }
  if (!data.every((o) => o.slug && Array.isArray(o.variants) && o.variants.length > 0)) {
    throw new Error("an offering without slug or variants");
  }
  const url = (await op.locator(".request-url pre").innerText()).trim();
  ok(`200 from ${url} with ${data.length} offerings: ${data.map((o) => o.slug).join(", ")}`);

  await op.scrollIntoViewIfNeeded();
  await op.screenshot({ path: join(outDir, "swagger-ui-list-offerings.png") });
  ok(`screenshots in ${outDir}`);

  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join("; ")}`);
  console.log(`swagger-ui: ${passed} passed, 0 failed`);
} catch (e) {
  await page.screenshot({ path: join(outDir, "swagger-ui-failure.png"), fullPage: true }).catch(() => {});
  console.error(`FAIL ${e.message}`);
  console.log(`swagger-ui: ${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
