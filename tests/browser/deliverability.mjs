// The deliverability journey (issue 23): an admin points abuse@ of every domain at another
// address, switches MTA-STS to testing for the domain, sets a smarthost (whose password is
// never shown again), and reads the self-check page.
import { run, env, assert } from "./lib.mjs";

const base = env("BASE_URL");
const admin = env("ADMIN_ADDRESS");
const password = env("ADMIN_PASSWORD");

await run("deliverability", async (page, { shot }) => {
  await page.goto(`${base}/admin/login`);
  await page.fill("#address", admin);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/admin`);

  await page.click("nav >> text=Deliverability");
  await page.waitForURL(`${base}/admin/deliverability`);
  assert((await page.textContent("main, body")).includes(admin), "the first admin is the default");

  // abuse@ of every domain to another address.
  await page.selectOption("#required-local", "abuse");
  await page.selectOption("#required-domain", "");
  await page.fill("#required-target", "abuse-desk@elsewhere.test");
  await page.click("#required-form button[type=submit]");
  await page.waitForSelector("text=Saved.");
  assert((await page.textContent("#required-routes")).includes("abuse-desk@elsewhere.test"), "route listed");

  // A wrong target is refused next to the field.
  await page.fill("#required-target", "not an address");
  await page.click("#required-form button[type=submit]");
  await page.waitForSelector("#required-error");

  // MTA-STS in testing for localhost.
  await page.goto(`${base}/admin/deliverability`);
  await page.selectOption("select[aria-label='MTA-STS of localhost']", "testing");
  await page.click("#mta-sts-localhost button[type=submit]");
  await page.waitForSelector("text=Saved.");
  assert(
    (await page.inputValue("select[aria-label='MTA-STS of localhost']")) === "testing",
    "MTA-STS mode kept",
  );

  // A smarthost; its password never comes back.
  await page.fill("#smarthost-host", "relay.example.test");
  await page.fill("#smarthost-port", "587");
  await page.selectOption("#smarthost-tls", "starttls");
  await page.fill("#smarthost-username", "mailer");
  await page.fill("#smarthost-password", "relay-password-123");
  await page.click("#smarthost-form button[type=submit]");
  await page.waitForSelector("#smarthosts");
  const html = await page.content();
  assert(html.includes("relay.example.test:587"), "smarthost listed");
  assert(!html.includes("relay-password-123"), "password not shown back");
  assert((await page.inputValue("#smarthost-password")) === "", "password field empty");
  await shot("deliverability.png");

  // The self-check page: a line per finding, the smarthost noted for port 25.
  await page.click("nav >> text=Self-check");
  await page.waitForSelector("#check-findings");
  const findings = await page.textContent("#check-findings");
  assert(findings.includes("Outbound port 25"), "port 25 line");
  assert(findings.includes("relay.example.test"), "port 25 not tested while a smarthost is set");
  assert(findings.includes("MX record"), "the records are checked");
  await shot("self-check.png");
});
