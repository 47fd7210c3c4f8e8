// Reading a message (issue 24), at desktop and phone sizes: links in plain text open a new tab
// without opener or referrer; a file name with a right-to-left override is shown isolated and
// neutralised (it does not read "invoiceexe.pdf", and what follows it stays in order); the
// remote-images notice appears only when the sanitized HTML had remote images, and "Show
// images" then shows them; the download keeps its own Content-Security-Policy; the favicon.
import { run, env, smtpSend, assert } from "./lib.mjs";

const base = env("BASE_URL");
const smtpPort = Number(env("SMTP_PORT"));

const plain = `From: Alice <alice@localhost>
To: bob@localhost
Subject: Invoice and docs
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/plain; charset=utf-8

The docs are at https://example.org/docs. Questions to <mailto:help@example.org>.
--b1
Content-Type: application/pdf
Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--b1--
`;
const scripted = `From: Alice <alice@localhost>
To: bob@localhost
Subject: Only script text
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<p id="hello">Hello</p><script>document.write("<img src='http://tracker.example/a.gif'>")</script>
`;
const remote = `From: Alice <alice@localhost>
To: bob@localhost
Subject: With a remote image
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<p>Look:</p><img id="pic" src="https://cdn.example/pic.png" alt="pic">
`;

/** Opens the message whose subject is `subject` from the INBOX. */
async function open(page, subject) {
  await page.goto(`${base}/mail`);
  await page.waitForSelector("#messages");
  await page.click(`#messages a:has-text("${subject}")`);
  await page.waitForSelector("#subject");
}

await run("reading", async (page, { shot }) => {
  for (const m of [plain, scripted, remote]) await smtpSend(smtpPort, "alice@localhost", "bob@localhost", m);
  await page.goto(`${base}/mail`);
  await page.fill("#address", "bob@localhost");
  await page.fill("#password", "secret");
  await page.click("button[type=submit]");
  await page.waitForSelector("#messages");

  for (const [label, size] of [["desktop", { width: 1200, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
    await page.setViewportSize(size);

    // The favicon is linked and answers, also at /favicon.ico.
    const icon = await page.getAttribute("link[rel=icon]", "href");
    assert(icon === "/static/favicon.svg", `${label}: icon link ${icon}`);
    for (const p of [icon, "/favicon.ico"]) {
      const r = await page.request.get(`${base}${p}`);
      assert(r.status() === 200 && r.headers()["content-type"] === "image/svg+xml", `${label}: ${p}`);
    }

    // Plain text: the links.
    await open(page, "Invoice and docs");
    const link = page.locator('#text-body a[href="https://example.org/docs"]');
    assert(await link.count() === 1, `${label}: the address is a link (the full stop outside it)`);
    assert(await link.getAttribute("target") === "_blank", `${label}: new tab`);
    assert(await link.getAttribute("rel") === "noopener noreferrer", `${label}: rel`);
    assert(await page.locator('#text-body a[href="mailto:help@example.org"]').count() === 1, `${label}: mailto link`);

    // The file name: isolated, neutralised, and shown in the order it is written.
    const row = page.locator("#attachments li").first();
    assert(await row.locator("bdi").count() === 1, `${label}: the name is in a <bdi>`);
    const shown = await row.evaluate((li) => {
      const bdi = li.querySelector("bdi");
      const text = bdi.firstChild;
      const rect = (node, from, to) => {
        const r = document.createRange();
        r.setStart(node, from);
        r.setEnd(node, to);
        return r.getBoundingClientRect();
      };
      const name = text.textContent;
      const small = li.querySelector("small").getBoundingClientRect();
      const invoice = rect(text, 0, 7);
      const ext = rect(text, name.indexOf("exe"), name.indexOf("exe") + 3);
      const pdf = rect(text, name.indexOf("fdp"), name.indexOf("fdp") + 3);
      return {
        name,
        // Visual order, left to right, on one line (the phone may wrap the size below).
        pdfBeforeExe: pdf.left < ext.left,
        invoiceFirst: invoice.left < pdf.left,
        smallAfter: small.left >= bdi.getBoundingClientRect().right - 1 || small.top >= bdi.getBoundingClientRect().bottom - 1,
        text: li.innerText,
      };
    });
    assert(!shown.name.includes("\u202e"), `${label}: the override is not on the page`);
    assert(shown.name === "invoice\ufffdfdp.exe", `${label}: name ${JSON.stringify(shown.name)}`);
    assert(shown.invoiceFirst && shown.pdfBeforeExe, `${label}: the name reads as written: ${JSON.stringify(shown)}`);
    assert(shown.smallAfter, `${label}: the type and size follow the name: ${JSON.stringify(shown)}`);
    assert(!shown.text.includes("invoiceexe.pdf"), `${label}: ${shown.text}`);
    const href = await row.locator("a").getAttribute("href");
    const download = await page.request.get(`${base}${href}`);
    assert(download.status() === 200, `${label}: download`);
    assert(download.headers()["content-security-policy"] === "default-src 'none'; sandbox",
      `${label}: the download keeps its own policy: ${download.headers()["content-security-policy"]}`);
    const pageCsp = (await page.request.get(page.url())).headers()["content-security-policy"];
    assert(pageCsp.startsWith("default-src 'self'"), `${label}: pages keep the site-wide policy: ${pageCsp}`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert(wide <= size.width + 1, `${label}: the page fits (${wide} px)`);
    await shot(`reading-plain-${label}.png`);

    // Script text that mentions an image: no notice.
    await open(page, "Only script text");
    await page.frameLocator("#html-body").locator("p", { hasText: "Hello" }).waitFor();
    assert(await page.locator("#images-blocked").count() === 0, `${label}: no notice without remote images`);

    // A real remote image: the notice, and "Show images" shows it.
    await open(page, "With a remote image");
    assert(await page.locator("#images-blocked").isVisible(), `${label}: the notice`);
    assert(await page.frameLocator("#html-body").locator("img").count() === 1, `${label}: the image element stays`);
    assert(await page.frameLocator("#html-body").locator("img").getAttribute("src") === null, `${label}: without its source`);
    await page.click("#show-images");
    await page.waitForURL(/images=1/);
    const src = await page.frameLocator("#html-body").locator("img").getAttribute("src");
    assert(src === "https://cdn.example/pic.png", `${label}: shown: ${src}`);
    assert(await page.locator("#images-blocked").count() === 0, `${label}: no notice once shown`);
    await shot(`reading-remote-${label}.png`);
  }
});
