// The app-password journey (issue 19): sign in to the webmail, open Settings, App passwords,
// create one for IMAP, sign in with it over IMAP, revoke it (the IMAP session signed in with it
// is told BYE), and see that it no longer signs in.
import net from "node:net";
import { run, env, assert } from "./lib.mjs";

const base = env("BASE_URL");
const imapPort = Number(env("IMAP_PORT"));

/** An IMAP connection on loopback: `cmd` sends a tagged command and resolves with the lines up
 * to its tagged reply; `next` resolves with the next line. */
function imap() {
  return new Promise((resolve, reject) => {
    const socket = net.connect(imapPort, "127.0.0.1");
    socket.setEncoding("utf8");
    socket.setTimeout(10000, () => socket.destroy(new Error("IMAP timeout")));
    let buffer = "";
    const lines = [];
    const waiting = [];
    let n = 0;
    const pump = () => {
      while (waiting.length && lines.length) waiting.shift()(lines.shift());
    };
    socket.on("data", (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf("\r\n")) >= 0) {
        lines.push(buffer.slice(0, i));
        buffer = buffer.slice(i + 2);
      }
      pump();
    });
    socket.on("close", () => {
      lines.push(null);
      pump();
    });
    socket.on("error", reject);
    const next = () => new Promise((r) => { waiting.push(r); pump(); });
    const cmd = async (command) => {
      const tag = `b${++n}`;
      socket.write(`${tag} ${command}\r\n`);
      const got = [];
      for (;;) {
        const line = await next();
        if (line === null) throw new Error(`closed during ${command}: ${got.join(" | ")}`);
        got.push(line);
        if (line.startsWith(`${tag} `)) return got;
      }
    };
    next().then((greeting) => resolve({ cmd, next, close: () => socket.destroy(), greeting }));
  });
}

await run("app_passwords", async (page, { shot }) => {
  await page.goto(`${base}/mail`);
  await page.fill("#address", "alice@localhost");
  await page.fill("#password", "secret");
  await page.click("button[type=submit]");
  await page.waitForURL(/\/mail\/box\//);

  await page.goto(`${base}/mail/settings`);
  await page.click("a[href='/mail/settings/app-passwords']");
  await page.waitForSelector("#create-app-password");
  await page.fill("#app-name", "Browser phone");
  // IMAP and sending are ticked by default; POP3 is not.
  assert(await page.isChecked("input[name=imap]"), "IMAP ticked by default");
  assert(!(await page.isChecked("input[name=pop3]")), "POP3 not ticked by default");
  await page.click("#create-app-password button[type=submit]");
  await page.waitForSelector("#app-password-value");
  const password = (await page.textContent("#app-password-value")).trim();
  assert(/^[a-z2-7]{4}(-[a-z2-7]{4}){6}$/.test(password), `the shape of ${password}`);
  await shot("app-password-created.png");
  // Shown once: reloading the list does not show it again.
  await page.goto(`${base}/mail/settings/app-passwords`);
  assert(!(await page.content()).includes(password), "shown once");
  assert((await page.textContent("#app-password-table")).includes("Browser phone"), "listed");

  const session = await imap();
  const login = await session.cmd(`LOGIN alice@localhost ${password}`);
  assert(login[login.length - 1].includes("OK"), `IMAP LOGIN: ${login.join(" | ")}`);
  await session.cmd("SELECT INBOX");

  // Revoke (the confirmation dialog is accepted by lib.mjs).
  const row = page.locator("#app-password-table tr", { hasText: "Browser phone" });
  await row.locator("button", { hasText: "Revoke" }).click();
  await page.waitForURL(/done=app-password-revoked/);
  assert(!(await page.textContent("#app-password-table")).includes("Browser phone"), "gone from the list");
  const bye = await session.next();
  assert(bye && bye.startsWith("* BYE") && bye.includes("revoked"), `session ended: ${bye}`);
  session.close();

  const again = await imap();
  const refused = await again.cmd(`LOGIN alice@localhost ${password}`);
  assert(refused[refused.length - 1].includes("NO [AUTHENTICATIONFAILED]"), `refused: ${refused.join(" | ")}`);
  again.close();
});
