// Shared by the browser journeys: launch Debian's Chromium headless, keep screenshots of
// failures, and speak just enough SMTP to deliver a test message.
import { chromium } from "playwright-core";
import net from "node:net";
import fs from "node:fs";
import path from "node:path";

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this from tests/it/browser.rs)`);
  return v;
};

/** Runs `journey(page)` in a fresh browser; on failure saves a screenshot and the HTML. */
export async function run(name, journey) {
  const artifacts = env("ARTIFACTS");
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => d.accept());
  page.setDefaultTimeout(15000);
  try {
    await journey(page, { artifacts, shot: (file) => page.screenshot({ path: path.join(artifacts, file), fullPage: true }) });
    if (errors.length) throw new Error(`JavaScript errors on the pages: ${errors.join("; ")}`);
    console.log(`${name}: ok`);
  } catch (e) {
    const base = path.join(artifacts, `${name}-failure`);
    await page.screenshot({ path: `${base}.png`, fullPage: true }).catch(() => {});
    fs.writeFileSync(`${base}.html`, await page.content().catch(() => ""));
    console.error(`${name}: FAILED at ${page.url()}: ${e.stack || e}`);
    console.error(`screenshot: ${base}.png`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

/** Delivers `message` from `from` to `to` over plain SMTP (the MX listener on loopback). */
export function smtpSend(port, from, to, message) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const steps = [
      null, // greeting
      "EHLO browser.test",
      `MAIL FROM:<${from}>`,
      `RCPT TO:<${to}>`,
      "DATA",
      message.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..") + "\r\n.",
      "QUIT",
    ];
    const expect = [220, 250, 250, 250, 354, 250, 221];
    let step = 0;
    let buffer = "";
    socket.setEncoding("utf8");
    socket.setTimeout(10000, () => reject(new Error("SMTP timeout")));
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      buffer += chunk;
      // A complete reply ends with a line "NNN text".
      const lines = buffer.split("\r\n");
      const last = lines[lines.length - 2];
      if (last === undefined || !/^\d{3} /.test(last)) return;
      buffer = "";
      const code = Number(last.slice(0, 3));
      if (code !== expect[step]) {
        socket.destroy();
        return reject(new Error(`SMTP step ${step}: expected ${expect[step]}, got ${last}`));
      }
      step += 1;
      if (step === steps.length) {
        socket.end();
        return resolve();
      }
      socket.write(steps[step] + "\r\n");
    });
  });
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}
