// The admin journey: sign in, add a domain, add a user with a quota, see it listed, deliver
// that user a message over SMTP, see the usage bar move, open the DNS page, sign out.
import { run, env, smtpSend, assert } from "./lib.mjs";

const base = env("BASE_URL");
const admin = env("ADMIN_ADDRESS");
const password = env("ADMIN_PASSWORD");
const smtpPort = Number(env("SMTP_PORT"));

await run("admin", async (page, { shot }) => {
  await page.goto(`${base}/admin`);
  // Not signed in: the login page, coming back to /admin afterwards.
  assert(page.url().includes("/admin/login"), `expected the login page, at ${page.url()}`);
  await page.fill("#address", admin);
  await page.fill("#password", "not the password");
  await page.click("button[type=submit]");
  await page.waitForSelector("#login-error");
  assert((await page.textContent("#login-error")).includes("Wrong address or password"), "wrong password message");
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/admin`);
  await page.waitForSelector("#stat-domains");
  await shot("admin-dashboard.png");

  // A domain.
  await page.click("nav >> text=Domains");
  await page.fill("#name", "bad domain");
  await page.click("text=Add domain");
  await page.waitForSelector("#name-error");
  await page.fill("#name", "browser.test");
  await page.click("text=Add domain");
  await page.waitForURL(`${base}/admin/domains/browser.test`);
  const records = await page.textContent("#records");
  assert(records.includes("v=spf1 mx -all"), "SPF record listed");
  assert(records.includes("_domainkey.browser.test."), "DKIM record listed");
  assert(records.includes("_dmarc.browser.test."), "DMARC record listed");
  await page.click("text=Check the published records");
  await page.waitForSelector("td.check");
  await shot("admin-domain-dns.png");

  // A user with a quota of 1M.
  await page.click("nav >> text=Accounts");
  await page.click("text=New account");
  await page.fill("#address", "walter@browser.test");
  await page.fill("#password", "short");
  await page.fill("#quota", "1M");
  await page.click("text=Create account");
  await page.waitForSelector("#password-error");
  await page.fill("#password", "correct horse battery staple");
  await page.click("text=Create account");
  await page.waitForSelector("text=walter@browser.test is ready");
  await page.click("text=All accounts");
  const row = page.locator("#accounts tr", { hasText: "walter@browser.test" });
  assert((await row.textContent()).includes("0B / 1M") || (await row.textContent()).includes("/ 1M"), "quota shown");
  const before = Number(await row.locator("meter").getAttribute("value"));
  assert(before === 0, `empty mailbox shows 0%, got ${before}`);

  // Mail arrives over SMTP; the usage bar moves.
  const body = "x".repeat(76) + "\n";
  const message = `From: Sender <sender@elsewhere.test>\nTo: walter@browser.test\nSubject: Half a megabyte\n\n${body.repeat(5000)}`;
  await smtpSend(smtpPort, "sender@elsewhere.test", "walter@browser.test", message);
  await page.reload();
  const after = Number(await page.locator("#accounts tr", { hasText: "walter@browser.test" }).locator("meter").getAttribute("value"));
  assert(after >= 30 && after <= 40, `usage after a 385 KB message is about 37%, got ${after}`);
  await shot("admin-accounts.png");

  // The DNS page again, then sign out: the panel is closed behind us.
  await page.goto(`${base}/admin/domains/browser.test`);
  await page.waitForSelector("#zone");
  await page.click("text=Sign out");
  await page.waitForURL(/\/admin\/login/);
  await page.goto(`${base}/admin/accounts`);
  assert(page.url().includes("/admin/login"), "signed out");
});
