// The spam journey (issue 21): a message from a sender arrives over SMTP; the user selects it in
// the webmail and clicks "Spam": it moves to Junk, and the filter learns. The next similar
// message from that sender is junked at delivery, and its reading view says why. "Not spam"
// in the reading view brings it back to INBOX; the sender's domain goes on the block list.
import { run, env, smtpSend, assert } from "./lib.mjs";

const base = env("BASE_URL");
const smtpPort = Number(env("SMTP_PORT"));
const sender = "deals@watch-offers.example";

const offer = (n, subject) => `From: Watch Deals <${sender}>
To: bob@localhost
Subject: ${subject}
Message-ID: <offer-${n}@watch-offers.example>

Replica watches at 90% off, today only! Luxury brands, free shipping,
click now to claim your exclusive discount before the offer ends.
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

await run("spam", async (page, { shot }) => {
  await smtpSend(smtpPort, sender, "bob@localhost", offer(1, "Replica watches, 90% off"));

  await page.goto(`${base}/mail`);
  await page.fill("#address", "bob@localhost");
  await page.fill("#password", "secret");
  await page.click("button[type=submit]");
  await page.waitForSelector("#messages");
  const inboxUrl = new URL(page.url()).pathname;
  assert((await page.textContent("#messages")).includes("Replica watches, 90% off"), "the offer in INBOX");

  // Selected in the list, "Spam": out of INBOX, into Junk.
  await page.locator("li.msg", { hasText: "Replica watches, 90% off" }).locator("input[name=msg]").check();
  await page.click("#spam");
  await page.waitForSelector("text=Moved to Junk.");
  const left = await page.locator("#messages").textContent().catch(() => "");
  assert(!left.includes("Replica watches, 90% off"), "moved out of INBOX");
  await page.click(".folders >> text=Junk");
  await page.waitForSelector("text=Replica watches, 90% off");
  const junkUrl = new URL(page.url()).pathname;
  await shot("spam-junk.png");

  // The filter learns off the request path; give it a moment, then the next offer arrives.
  await page.waitForTimeout(1500);
  await smtpSend(smtpPort, sender, "bob@localhost", offer(2, "Replica watches, last chance"));
  await waitListed(page, junkUrl, "Replica watches, last chance");
  await page.goto(`${base}${inboxUrl}`);
  const inbox = await page.locator("#messages").textContent().catch(() => "");
  assert(!inbox.includes("Replica watches, last chance"), "the second offer is not in INBOX");

  // Its reading view says why, and offers "Not spam", which brings it back.
  await page.goto(`${base}${junkUrl}`);
  await page.click("text=Replica watches, last chance");
  await page.waitForSelector("#spam-why");
  const why = await page.textContent("#spam-why");
  assert(/score/i.test(why), `the line says why: ${why}`);
  await shot("spam-why.png");
  await page.click("#not-spam");
  await page.waitForSelector("text=Moved to INBOX.");
  await page.goto(`${base}${inboxUrl}`);
  await page.waitForSelector("text=Replica watches, last chance");

  // Settings: the sender's domain on the block list, a wrong threshold refused with a reason.
  await page.click(".folder-links >> text=Settings");
  await page.click("#spam-link");
  await page.fill("#entry", "Watch-Offers.example");
  await page.click("#add-block");
  await page.waitForSelector("text=Your spam settings were saved.");
  assert((await page.textContent("#blocked")).includes("watch-offers.example"), "blocked, in lower case");
  await page.fill("#threshold", "0");
  await page.click("#threshold-form button.primary");
  await page.waitForSelector("#threshold-error");
  await shot("spam-settings.png");
});
