// The Security page journey: bob signs in from two browsers (this one, and a "Firefox on
// Windows"), opens Security from the settings, sees both sessions with this one marked, signs
// the other out, and that browser is back at the sign-in page.
import { run, env, assert } from "./lib.mjs";

const base = env("BASE_URL");
const firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";

async function signIn(page) {
  await page.goto(`${base}/mail`);
  assert(page.url().includes("/mail/login"), `expected the sign-in page, at ${page.url()}`);
  await page.fill("#address", "bob@localhost");
  await page.fill("#password", "secret");
  await page.click("button[type=submit]");
  // The (empty) INBOX.
  await page.waitForURL(/\/mail\/box\/\d+$/);
}

await run("security", async (page, { shot }) => {
  const other = await page.context().browser().newContext({ userAgent: firefox });
  const elsewhere = await other.newPage();
  elsewhere.setDefaultTimeout(15000);
  await signIn(elsewhere);
  await signIn(page);

  await page.goto(`${base}/mail/settings`);
  await page.click("#security-link");
  await page.waitForSelector("#sessions");
  const rows = page.locator("#sessions tbody tr");
  assert((await rows.count()) === 2, `two sessions, got ${await rows.count()}`);
  const mine = page.locator("#sessions tbody tr.current");
  assert((await mine.count()) === 1, "one session is this device");
  assert((await mine.textContent()).includes("this device"), "marked as this device");
  assert((await mine.textContent()).includes("Chrome"), `this device is Chromium: ${await mine.textContent()}`);
  const theirs = page.locator("#sessions tbody tr", { hasText: "Firefox on Windows" });
  assert((await theirs.count()) === 1, "the other browser is Firefox on Windows");
  assert((await theirs.textContent()).includes("127.0.0.1"), "with its address");
  await shot("security.png");

  await theirs.locator("button", { hasText: "Sign out" }).click();
  await page.waitForSelector("text=That session was signed out.");
  assert((await page.locator("#sessions tbody tr").count()) === 1, "one session left");
  assert((await page.locator("#sessions tbody tr.current").count()) === 1, "and it is this one");

  // The other browser's cookie no longer opens the webmail.
  await elsewhere.goto(`${base}/mail`);
  assert(elsewhere.url().includes("/mail/login"), `signed out elsewhere, at ${elsewhere.url()}`);
  // This one still does.
  await page.goto(`${base}/mail`);
  await page.waitForURL(/\/mail\/box\/\d+$/);
  await other.close();
});
