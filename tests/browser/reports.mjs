// The reports journey (issue 23): a DMARC aggregate report and a TLS report have arrived at
// postmaster@ (stored by tests/it/browser.rs before this runs); the admin signs in, follows
// the "Reports" nav entry and reads, in plain words, who sent mail as the domain and what
// failed, and the TLS report's failures beside it.
import { run, env, assert } from "./lib.mjs";

const base = env("BASE_URL");
const admin = env("ADMIN_ADDRESS");
const password = env("ADMIN_PASSWORD");

await run("reports", async (page, { shot }) => {
  await page.goto(`${base}/admin/login`);
  await page.fill("#address", admin);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/admin`);

  await page.click("nav >> text=Reports");
  await page.waitForURL(`${base}/admin/reports`);
  const dmarc = await page.textContent("#dmarc-reports");
  assert(dmarc.includes("bigmail.test"), "the reporting organisation is named");
  assert(
    dmarc.includes("1,204 messages from 203.0.113.5 (not one of your server's addresses?)"),
    `the failing sender in words: ${dmarc}`,
  );
  assert(dmarc.includes("failed DMARC"), "the failure is said");
  assert(dmarc.includes("31 messages from 192.0.2.25"), "the passing sender is listed");
  const tls = await page.textContent("#tls-reports");
  assert(tls.includes("Big Mail Inc."), "the TLS report's organisation");
  assert(tls.includes("certificate-expired"), "the TLS failure's type");
  const current = await page.getAttribute("nav >> text=Reports", "aria-current");
  assert(current === "page", "the nav entry is marked current");
  await shot("admin-reports.png");
});
