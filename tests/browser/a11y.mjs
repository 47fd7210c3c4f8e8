// Accessibility (issue 24): axe-core on the list, reading, compose and settings pages, at
// desktop and phone sizes; any serious or critical violation fails.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { run, env, smtpSend, assert } from "./lib.mjs";

const base = env("BASE_URL");
const smtpPort = Number(env("SMTP_PORT"));
const axePath = path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules/axe-core/axe.min.js");

async function check(page, what) {
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const text = bad.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ` +
    v.nodes.slice(0, 5).map((n) => n.target.join(" ")).join("\n    ")).join("\n  ");
  assert(bad.length === 0, `${what}: axe found\n  ${text}`);
}

await run("a11y", async (page) => {
  // Injected into every page before its own scripts, past the pages' CSP (script-src 'self'
  // refuses an inline script tag).
  await page.addInitScript({ path: axePath });
  await smtpSend(smtpPort, "ann@localhost", "bob@localhost", `From: Ann <ann@localhost>
To: bob@localhost
Subject: Accessible mail
Message-ID: <a11y-1@localhost>

A plain message to read.
`);
  await page.goto(`${base}/mail`);
  await page.fill("#address", "bob@localhost");
  await page.fill("#password", "secret");
  await page.click("button[type=submit]");
  await page.waitForSelector("#messages");
  const inbox = page.url();
  const message = base + (await page.locator("#messages a.msg-link").first().getAttribute("href"));
  // The conversation view and page (one message is a conversation of one).
  const conversation = message.replace(/\/(\d+)$/, "/thread/$1");
  for (const [width, height, size] of [[1200, 900, "desktop"], [390, 844, "phone"]]) {
    await page.setViewportSize({ width, height });
    for (const [what, url] of [
      ["list", inbox],
      ["reading", message],
      ["conversation list", `${inbox}?view=threads`],
      ["conversation", conversation],
      ["compose", `${base}/mail/compose`],
      ["settings", `${base}/mail/settings`],
      ["list again", `${inbox}?view=messages`],
    ]) {
      await page.goto(url);
      await page.waitForLoadState("load");
      await check(page, `${what} (${size})`);
    }
  }
});
