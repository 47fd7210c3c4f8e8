// Passkeys (WebAuthn) for the sign-in page, its second step and the two-factor settings:
// the navigator.credentials calls, with the server's options in and the browser's answer out.
// Everything else works without this script; passkey buttons stay hidden where WebAuthn is
// not available.
"use strict";

const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const unb64 = (s) => {
  const t = s.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(t + "=".repeat((4 - (t.length % 4)) % 4)), (c) => c.charCodeAt(0));
};

async function post(url, fields) {
  const r = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
  });
  const j = await r.json().catch(() => ({ error: `The server answered ${r.status}.` }));
  if (!r.ok) throw new Error(j.error || `The server answered ${r.status}.`);
  return j;
}

function showError(e) {
  const p = document.getElementById("passkey-error");
  if (!p) return;
  p.textContent = e.name === "NotAllowedError" ? "The passkey was not used (cancelled or timed out)." : e.message;
  p.hidden = false;
}

// Sign in (instead of the password, or as the second step).
async function signIn(button) {
  const fields = {};
  if (button.dataset.loginToken) fields.login_token = button.dataset.loginToken;
  if (button.dataset.next) fields.next = button.dataset.next;
  const o = await post(button.dataset.passkeyGet, fields);
  const cred = await navigator.credentials.get({
    publicKey: {
      challenge: unb64(o.challenge),
      rpId: o.rpId,
      allowCredentials: o.allow.map((id) => ({ type: "public-key", id: unb64(id) })),
      userVerification: o.userVerification,
      timeout: 60000,
    },
  });
  const done = await post(button.dataset.passkeyFinish, {
    id: b64(cred.rawId),
    clientDataJSON: b64(cred.response.clientDataJSON),
    authenticatorData: b64(cred.response.authenticatorData),
    signature: b64(cred.response.signature),
  });
  window.location.assign(done.next);
}

// Register a new passkey from the settings page.
async function register(form) {
  const csrf = form.querySelector("input[name=csrf]").value;
  const name = form.querySelector("input[name=name]").value;
  const o = await post(form.dataset.passkeyOptions, { csrf });
  const cred = await navigator.credentials.create({
    publicKey: {
      challenge: unb64(o.challenge),
      rp: { id: o.rpId, name: o.rpName },
      user: { id: unb64(o.userId), name: o.userName, displayName: o.userName },
      pubKeyCredParams: o.algorithms.map((alg) => ({ type: "public-key", alg })),
      excludeCredentials: o.exclude.map((id) => ({ type: "public-key", id: unb64(id) })),
      authenticatorSelection: { residentKey: "required", userVerification: "preferred" },
      attestation: "none",
      timeout: 60000,
    },
  });
  const done = await post(form.action, {
    csrf,
    token: o.token,
    name,
    id: b64(cred.rawId),
    clientDataJSON: b64(cred.response.clientDataJSON),
    attestationObject: b64(cred.response.attestationObject),
  });
  window.location.assign(done.next);
}

document.addEventListener("DOMContentLoaded", () => {
  if (!window.PublicKeyCredential) return;
  for (const area of document.querySelectorAll("[data-passkey-area]")) area.hidden = false;
  for (const button of document.querySelectorAll("[data-passkey-get]")) {
    button.addEventListener("click", () => signIn(button).catch(showError));
  }
  for (const form of document.querySelectorAll("form[data-passkey-options]")) {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      register(form).catch(showError);
    });
  }
});
