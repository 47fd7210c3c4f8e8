// The two-factor journey: turn on an authenticator app (codes computed here from the key the
// page shows, with node's HMAC), sign out, sign in with password + code; a recovery code works
// once; a passkey registered with Chromium's virtual authenticator (DevTools WebAuthn domain)
// signs in instead of the password, and as the second step.
import crypto from "node:crypto";
import { run, env, assert } from "./lib.mjs";

// WebAuthn needs a host name (an IP address is no RP ID): localhost is a secure context.
const base = env("BASE_URL").replace("127.0.0.1", "localhost");
const address = env("ADDRESS");
const password = env("PASSWORD");

function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text.replace(/[\s=]/g, "").toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

// RFC 6238 with HMAC-SHA1, 6 digits, 30 s.
function totp(secret, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const h = crypto.createHmac("sha1", secret).update(counter).digest();
  const o = h[19] & 15;
  const n = (((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]) % 1_000_000;
  return String(n).padStart(6, "0");
}

const now = () => Date.now() / 1000;

async function signOut(page) {
  await page.click("form[action='/mail/logout'] button");
  await page.waitForURL(/\/mail\/login/);
}

async function password_step(page) {
  await page.goto(`${base}/mail`);
  await page.fill("#address", address);
  await page.fill("#password", password);
  await page.click("form.form button[type=submit]");
}

await run("two_factor", async (page, { shot }) => {
  await password_step(page);
  await page.waitForSelector(".compose-button");

  // Turn on an authenticator app.
  await page.goto(`${base}/mail/settings`);
  await page.click("#two-factor-link");
  await page.click("#totp-begin");
  await page.waitForSelector("#totp-qr svg");
  const secret = base32(await page.textContent("#totp-secret"));
  assert(secret.length === 20, `a 160-bit key, got ${secret.length} bytes`);
  await shot("two-factor-setup.png");
  await page.fill("#totp-code", totp(secret, now()));
  await page.click("form[action$='/totp/confirm'] button");
  await page.waitForSelector("#recovery-codes");
  const codes = await page.$$eval("#recovery-codes code", (els) => els.map((e) => e.textContent));
  assert(codes.length === 10, `ten recovery codes, got ${codes.length}`);
  await shot("two-factor-codes.png");
  await page.click("#codes-continue");
  assert((await page.textContent("#totp-state")).includes("On"), "TOTP on");

  // Sign out, then password + code. The code of the next step: this one was spent confirming.
  await signOut(page);
  await password_step(page);
  await page.waitForURL(/\/mail\/login\/second/);
  await page.fill("#code", "000000" === totp(secret, now() + 30) ? "111111" : "000000");
  await page.click("#code-form button");
  await page.waitForSelector("#second-error");
  assert((await page.textContent("#second-error")).includes("wrong"), "a wrong code is refused");
  await shot("two-factor-second-step.png");
  await page.fill("#code", totp(secret, now() + 30));
  await page.click("#code-form button");
  await page.waitForSelector(".compose-button");

  // A recovery code works once.
  await signOut(page);
  await password_step(page);
  await page.waitForURL(/\/mail\/login\/second/);
  await page.fill("#code", codes[0]);
  await page.click("#code-form button");
  await page.waitForSelector(".compose-button");
  await signOut(page);
  await password_step(page);
  await page.waitForURL(/\/mail\/login\/second/);
  await page.fill("#code", codes[0]);
  await page.click("#code-form button");
  await page.waitForSelector("#second-error");
  await page.fill("#code", codes[1]);
  await page.click("#code-form button");
  await page.waitForSelector(".compose-button");

  // A passkey, with the DevTools virtual authenticator (resident keys, user verification).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await page.goto(`${base}/mail/settings/two-factor`);
  await page.fill("#passkey-name", "Chromium");
  await page.click("#passkey-add button");
  await page.waitForURL(/done=passkey-added/);
  assert((await page.textContent("#passkey-list")).includes("Chromium"), "the passkey is listed");
  await shot("two-factor-passkey.png");

  // Instead of the password.
  await signOut(page);
  await page.click("#passkey-sign-in");
  await page.waitForSelector(".compose-button");

  // As the second step.
  await signOut(page);
  await password_step(page);
  await page.waitForURL(/\/mail\/login\/second/);
  await page.click("#passkey-second");
  await page.waitForSelector(".compose-button");
});
