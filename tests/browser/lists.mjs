// Lists and layout (issue 24): conversations, the reading pane with j/k, Empty Trash, Undo
// after delete, and the phone layout (390x844) without horizontal overflow on the list,
// message, compose, settings, admin dashboard and admin DNS pages.
import { run, env, smtpSend, assert } from "./lib.mjs";

const base = env("BASE_URL");
const smtpPort = Number(env("SMTP_PORT"));
const adminAddress = env("ADMIN_ADDRESS");
const adminPassword = env("ADMIN_PASSWORD");

const mail = (subject, id, extra, body) => `From: Ann Example <ann@localhost>
To: bob@localhost
Subject: ${subject}
Message-ID: <${id}@localhost>${extra ? "\n" + extra : ""}

${body}
`;

async function signIn(page, address, password, area) {
  await page.goto(`${base}/${area}`);
  await page.fill("#address", address);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
}

async function noOverflow(page, what) {
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  assert(scroll <= inner, `${what}: the page is ${scroll}px wide in a ${inner}px window`);
}

await run("lists", async (page, { shot }) => {
  await smtpSend(smtpPort, "ann@localhost", "bob@localhost", mail("Picnic plans", "p1", "", "Saturday at the lake?"));
  await smtpSend(smtpPort, "ann@localhost", "bob@localhost", mail("Unrelated", "u1", "", "Something else."));
  await smtpSend(smtpPort, "ann@localhost", "bob@localhost",
    mail("Re: Picnic plans", "p2", "In-Reply-To: <p1@localhost>\nReferences: <p1@localhost>", "I will bring the bread."));

  // Desktop (1200 px).
  await signIn(page, "bob@localhost", "secret", "mail");
  await page.waitForSelector("#messages");
  assert(await page.locator("#messages li").count() === 3, "three messages one by one");

  // The reading pane (switched on, remembered by the browser): a click shows the message
  // beside the list; j/k move and show.
  await page.click("#pane-toggle");
  assert(await page.getAttribute("#pane-toggle", "aria-pressed") === "true", "the pane is on");
  await page.click("#messages li:nth-child(1) a.msg-link");
  await page.waitForSelector("#pane article");
  assert(page.url().match(/\/mail\/box\/\d+$/), `still on the list: ${page.url()}`);
  assert((await page.textContent("#pane")).includes("I will bring the bread."), "the newest in the pane");
  await page.keyboard.press("j");
  await page.waitForFunction(() => document.querySelector("#pane").textContent.includes("Something else."));
  const listBox = await page.locator(".list-col").boundingBox();
  const paneBox = await page.locator("#pane").boundingBox();
  assert(paneBox.x > listBox.x + listBox.width - 5, "the pane is to the right of the list");
  await shot("lists-pane.png");
  // Enter opens the message page.
  await page.keyboard.press("Enter");
  await page.waitForSelector("#subject");
  assert((await page.textContent("#subject")).includes("Unrelated"), "Enter opened the shown message");
  // u goes back to the list.
  await page.keyboard.press("u");
  await page.waitForSelector("#messages");
  // r replies to what the pane shows.
  await page.keyboard.press("j");
  await page.waitForFunction(() => document.querySelector("#pane").textContent.includes("I will bring the bread."));
  await page.keyboard.press("r");
  await page.waitForURL(/\/mail\/compose\?reply=/);
  await page.goBack();
  await page.waitForSelector("#messages");

  // Conversations: the toggle groups the picnic thread into one line, remembered.
  await page.click("#view-toggle");
  await page.waitForSelector("#messages li.conv");
  assert(await page.locator("#messages li").count() === 2, "two conversations");
  await page.goto(page.url().replace(/\?.*$/, ""));
  assert(await page.locator("#messages li.conv").count() === 1, "the view is remembered");
  await page.goto(await page.locator("#messages li.conv a.msg-link").getAttribute("href").then((h) => base + h));
  await page.waitForSelector("#conversation");
  assert(await page.locator("#conversation details").count() === 2, "both messages of the thread");
  assert(await page.locator("#conversation details[open]").count() === 1, "the newest open");
  await page.click("#conversation details:not([open]) summary");
  assert((await page.textContent("#conversation")).includes("Saturday at the lake?"), "the older one opens");
  await shot("lists-conversation.png");
  await page.click("#back-to-list");
  await page.click("#view-toggle");
  await page.waitForSelector("#messages li:nth-child(3)");

  // Delete with # (the message in the pane), then Undo within the notice's seconds.
  await page.keyboard.press("j");
  await page.keyboard.press("j");
  await page.waitForFunction(() => document.querySelector("#pane").textContent.includes("Something else."));
  await page.keyboard.press("#");
  await page.waitForSelector("#undo");
  assert(await page.locator("#messages li").count() === 2, "deleted");
  await page.click("#undo");
  await page.waitForSelector("text=Undone");
  assert(await page.locator("#messages li").count() === 3, "back after Undo");

  // Delete into Trash, then Empty Trash (the confirm is accepted by lib.mjs).
  await page.check("#messages li:has-text('Unrelated') input[type=checkbox]");
  await page.click("button[value=delete]");
  await page.waitForSelector("#undo");
  await page.click(".folders a:has-text('Trash')");
  await page.waitForSelector("#empty-folder");
  await page.click("#empty-folder");
  await page.waitForSelector("text=The folder was emptied.");
  assert(await page.locator("#messages li").count() === 0, "Trash is empty");

  // Phone (390x844): nothing wider than the screen; the search box can be typed in; the
  // folders collapse; the message toolbar is one row.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/mail`);
  await page.waitForSelector("#messages");
  await noOverflow(page, "list");
  const search = await page.locator("#search-box").boundingBox();
  assert(search.width >= 200, `the search box is ${search.width}px wide`);
  await page.fill("#search-box", "picnic");
  assert(!(await page.locator("#folder-menu").evaluate((d) => d.open)), "folders collapsed");
  await page.click("#folder-menu summary");
  assert(await page.locator(".folders a:has-text('Trash')").isVisible(), "folders open on demand");
  await shot("lists-phone-list.png");
  await page.click("#messages li:nth-child(1) a.msg-link");
  await page.waitForSelector("#subject");
  await noOverflow(page, "message");
  const bar = await page.locator("article .actions-bar").boundingBox();
  assert(bar.height < 60, `the toolbar is ${bar.height}px high (one row)`);
  await shot("lists-phone-message.png");
  await page.goto(`${base}/mail/compose`);
  await noOverflow(page, "compose");
  await page.goto(`${base}/mail/settings`);
  await noOverflow(page, "settings");

  // The admin panel on the phone: the menu fits, the DNS page wraps its long values.
  await page.goto(`${base}/mail`);
  await page.context().clearCookies();
  await signIn(page, adminAddress, adminPassword, "admin");
  await page.waitForSelector(".nav");
  await noOverflow(page, "admin dashboard");
  await page.goto(`${base}/admin/domains/localhost`);
  await page.waitForSelector("#records");
  await noOverflow(page, "admin DNS page");
  assert(await page.locator("#records button.copy").first().isVisible(), "copy buttons");
  await shot("lists-phone-dns.png");
});
