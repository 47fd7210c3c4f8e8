// The rules journey (issue 22): Bob makes a folder and a filter "Subject contains Invoice ->
// move to Invoices" in Settings -> Rules; a matching message sent over SMTP lands in Invoices,
// not in INBOX. He turns the vacation reply on; a message from Carol gets exactly one reply in
// the outbound queue (the admin's queue page), and a second message from her none.
import { run, env, smtpSend, assert } from "./lib.mjs";

const base = env("BASE_URL");
const smtpPort = Number(env("SMTP_PORT"));
const admin = env("ADMIN_ADDRESS");
const adminPassword = env("ADMIN_PASSWORD");
const carol = "carol@sender.example";

const mail = (n, from, subject) => `From: ${from}
To: bob@localhost
Subject: ${subject}
Message-ID: <rules-${n}@sender.example>

Hello Bob, message ${n}.
`;

/** Reloads `path` until `text` is listed (up to 15 s). */
async function waitListed(page, path, text) {
  for (let i = 0; i < 30; i++) {
    await page.goto(`${base}${path}`);
    const list = await page.locator("#messages").textContent().catch(() => "");
    if (list.includes(text)) return;
    await page.waitForTimeout(500);
  }
  throw new Error(`${text} never listed at ${path}`);
}

/** The queue rows of the admin page that go to `address`. */
async function queuedFor(page, address) {
  await page.goto(`${base}/admin/queue`);
  return page.locator("#queue tbody tr", { hasText: address }).count().catch(() => 0);
}

await run("rules", async (page, { shot }) => {
  await page.goto(`${base}/mail`);
  await page.fill("#address", "bob@localhost");
  await page.fill("#password", "secret");
  await page.click("button[type=submit]");
  await page.waitForURL(/\/mail\/box\/\d+$/);
  const inboxUrl = new URL(page.url()).pathname;

  // A folder for invoices, then the filter.
  await page.click(".folder-links >> text=Manage folders");
  await page.fill("#name", "Invoices");
  await page.click("button[type=submit].primary");
  await page.waitForSelector("text=The folder was created.");
  await page.click(".folder-links >> text=Settings");
  await page.click("#rules-link");
  await page.waitForSelector("text=No filters yet.");
  await page.click("#add-filter");
  await page.selectOption("#field", "subject");
  await page.selectOption("#op", "contains");
  await page.fill("#value", "Invoice");
  await page.selectOption("#action", "move");
  await page.selectOption("#folder", "Invoices");
  await page.check("#stop");
  await page.click("#save-filter");
  await page.waitForSelector("text=Your rules were saved.");
  const listed = await page.textContent("#filter-list");
  assert(listed.includes("If Subject contains “Invoice”: move to Invoices; stop"), `the filter listed: ${listed}`);
  await shot("rules-filters.png");

  // A matching message is filed; another stays in INBOX.
  await smtpSend(smtpPort, "billing@shop.example", "bob@localhost", mail(1, "billing@shop.example", "Invoice 2026-42"));
  await smtpSend(smtpPort, "friend@shop.example", "bob@localhost", mail(2, "friend@shop.example", "Lunch on Friday"));
  await waitListed(page, inboxUrl, "Lunch on Friday");
  const inbox = await page.locator("#messages").textContent();
  assert(!inbox.includes("Invoice 2026-42"), "the invoice is not in INBOX");
  await page.click(".folders >> text=Invoices");
  await page.waitForSelector("text=Invoice 2026-42");
  await shot("rules-filed.png");

  // The vacation reply.
  await page.goto(`${base}/mail/settings/rules`);
  await page.click("#vacation-link");
  await page.check("#vacation-on");
  await page.fill("#subject", "Away this week");
  await page.fill("#vacation-message", "I am away until Monday.");
  await page.fill("#days", "7");
  await page.click("#save-vacation");
  await page.waitForSelector("text=Your rules were saved.");
  assert((await page.textContent("#vacation-state")).startsWith("On"), "the vacation reply is on");

  await smtpSend(smtpPort, carol, "bob@localhost", mail(3, carol, "Are you there?"));
  await waitListed(page, inboxUrl, "Are you there?");

  // The admin sees one reply to Carol in the queue (mail for other domains stays queued in
  // the tests); a second message from her gets none.
  await page.click("form[action='/mail/logout'] button");
  await page.waitForURL(/\/mail\/login/);
  await page.goto(`${base}/admin`);
  await page.fill("#address", admin);
  await page.fill("#password", adminPassword);
  await page.click("button[type=submit]");
  await page.waitForSelector("#stat-domains");
  // The reply goes out after the delivery's 250: the check for a second one waits twice as
  // long as the first took to appear.
  let replies = 0;
  const sent = Date.now();
  for (let i = 0; i < 90 && replies === 0; i++) {
    replies = await queuedFor(page, carol);
    if (replies === 0) await page.waitForTimeout(500);
  }
  assert(replies === 1, `one vacation reply queued for Carol, found ${replies}`);
  const took = Date.now() - sent;
  await shot("rules-queue.png");
  await smtpSend(smtpPort, carol, "bob@localhost", mail(4, carol, "Still there?"));
  await page.waitForTimeout(Math.max(2000, 2 * took));
  replies = await queuedFor(page, carol);
  assert(replies === 1, `still one vacation reply queued for Carol, found ${replies}`);
});
