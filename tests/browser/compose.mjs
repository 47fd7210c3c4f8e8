// The compose journey (issue 24), at desktop and phone sizes: address suggestions from the
// contacts, the rich-text editor (bold, a list, a pasted hostile image that must not run),
// autosave and "Saved at", Send removing the draft; a form error that keeps the attachment;
// a draft reopened from Drafts with its attachment; the Contacts page (add, import).
// The Rust side (tests/it/browser.rs) then reads what Carol received.
import { run, env, assert } from "./lib.mjs";

const base = env("BASE_URL");
const sizes = [
  { label: "desktop", width: 1200, height: 900 },
  { label: "phone", width: 390, height: 844 },
];

async function typeInBody(page, text) {
  if (await page.isVisible("#editor")) {
    await page.click("#editor");
    await page.keyboard.type(text);
  } else {
    await page.fill("#body", text);
  }
}

async function draftsFolder(page) {
  await page.goto(`${base}/mail`);
  // On a phone the folder list is folded away.
  if (!(await page.isVisible(".folders >> text=Drafts"))) await page.click("#folder-menu summary");
  await page.click(".folders >> text=Drafts");
  await page.waitForSelector("h1");
}

await run("compose", async (page, { shot }) => {
  await page.goto(`${base}/mail`);
  await page.fill("#address", "bob@localhost");
  await page.fill("#password", "secret");
  await page.click("button[type=submit]");
  await page.waitForSelector("#messages, #empty-list");

  for (const size of sizes) {
    await page.setViewportSize({ width: size.width, height: size.height });
    const label = size.label;

    // 1. Suggestions, rich text, autosave, send.
    await page.goto(`${base}/mail/compose`);
    await page.waitForSelector("#mode-toggle");
    if (!(await page.isVisible("#editor"))) await page.click("#mode-toggle");
    await page.waitForSelector("#editor");
    assert((await page.inputValue("#mode")) === "rich", "rich mode");
    await page.click("#to");
    await page.keyboard.type("car");
    await page.waitForSelector("#to-suggestions li");
    assert((await page.textContent("#to-suggestions")).includes("Carol Example"), "the contact is suggested");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    const to = await page.inputValue("#to");
    assert(to === "Carol Example <carol@localhost>, ", `picked into To: ${JSON.stringify(to)}`);
    assert(await page.isHidden("#to-suggestions"), "the list closes");
    await page.fill("#subject", `Rich hello ${label}`);
    await page.click("#editor");
    await page.click("#tool-bold");
    await page.keyboard.type("bold words");
    await page.click("#tool-bold");
    await page.keyboard.press("Enter");
    await page.click("#tool-ul");
    await page.keyboard.type("first item");
    await page.keyboard.press("Enter");
    await page.keyboard.type("second item");
    // A pasted image with a handler: the page's policy stops it here, the sanitizer on the
    // way out.
    await page.evaluate(() => {
      document.getElementById("editor").focus();
      document.execCommand("insertHTML", false, '<img src="x" onerror="window.pwned = 1">');
    });
    const html = await page.innerHTML("#editor");
    assert(/<(b|strong)>bold words<\/(b|strong)>/.test(html), `bold in the editor: ${html}`);
    assert(html.includes("<ul>") && html.includes("second item"), `list in the editor: ${html}`);
    await page.waitForSelector("#saved-at:has-text('Saved at')", { timeout: 15000 });
    assert((await page.inputValue("#draft-ref")) !== "", "autosave made a draft");
    const overflow = await page.evaluate(() => {
      const f = document.getElementById("compose-form");
      return f.scrollWidth - f.clientWidth;
    });
    assert(overflow <= 1, `the form fits the screen (overflow ${overflow}px)`);
    await shot(`compose-rich-${label}.png`);
    await page.click("#send");
    await page.waitForSelector("text=Your message was sent.");
    assert((await page.evaluate(() => window.pwned)) === undefined, "no pasted script ran");
    await draftsFolder(page);
    assert(await page.isVisible("#empty-list"), "sending removed the draft");

    // 2. A form error keeps the attachment.
    await page.goto(`${base}/mail/compose`);
    await page.fill("#to", "carol@@localhost");
    await page.fill("#subject", `Kept file ${label}`);
    await typeInBody(page, "The notes are attached.");
    await page.setInputFiles("#attachment", { name: `notes-${label}.txt`, mimeType: "text/plain", buffer: Buffer.from("kept notes\n") });
    await page.click("#send");
    await page.waitForSelector("#to-error");
    assert((await page.textContent("#kept")).includes(`notes-${label}.txt`), "the file is listed as kept");
    assert(await page.isChecked("#kept input[name=keep]"), "and ticked");
    await shot(`compose-error-${label}.png`);
    await page.fill("#to", "carol@localhost");
    await page.click("#send");
    await page.waitForSelector("text=Your message was sent.");

    // 3. A draft with an attachment, reopened from Drafts, then sent.
    await page.goto(`${base}/mail/compose`);
    await page.fill("#subject", `Draft ${label}`);
    await typeInBody(page, "To be finished.");
    await page.setInputFiles("#attachment", { name: `plan-${label}.txt`, mimeType: "text/plain", buffer: Buffer.from("the plan\n") });
    await page.waitForSelector("#saved-at:has-text('Saved at')", { timeout: 15000 });
    await page.waitForSelector(`#kept >> text=plan-${label}.txt`);
    await draftsFolder(page);
    await page.click(`text=Draft ${label}`);
    await page.waitForSelector("#compose-form");
    assert((await page.inputValue("#subject")) === `Draft ${label}`, "the draft reopens in the editor");
    assert((await page.textContent("#kept")).includes(`plan-${label}.txt`), "with its attachment");
    await page.fill("#to", "carol@localhost");
    await page.click("#send");
    await page.waitForSelector("text=Your message was sent.");
    await draftsFolder(page);
    assert(await page.isVisible("#empty-list"), "the sent draft left Drafts");

    // 4. Contacts: add one, import a file.
    await page.goto(`${base}/mail/contacts`);
    await page.fill("#c-name", `Dana ${label}`);
    await page.fill("#c-emails", `dana-${label}@example.org`);
    await page.click("#contact-save");
    await page.waitForSelector("text=The contact was added.");
    await page.setInputFiles("#vcf", {
      name: "more.vcf",
      mimeType: "text/vcard",
      buffer: Buffer.from(`BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Eve ${label}\r\nEMAIL:eve-${label}@example.org\r\nEND:VCARD\r\n`),
    });
    await page.click("#import");
    await page.waitForSelector("#imported");
    const table = await page.textContent("#contact-table");
    assert(table.includes(`Dana ${label}`) && table.includes(`Eve ${label}`), "both in the list");
    assert(table.includes("carol@localhost"), "Carol is listed");
    await shot(`contacts-${label}.png`);
  }
});
