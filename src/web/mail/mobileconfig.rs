//! `GET /mail/settings/mobileconfig`: an Apple configuration profile (iOS, iPadOS, macOS) that
//! sets up the signed-in account in Mail: IMAP and SMTP on the ports this server really bound,
//! implicit TLS preferred (IMAPS, submissions), STARTTLS ports otherwise.
//!
//! Choices:
//! - The profile is **unsigned**: the device shows it as "Not Verified" before installing.
//!   Signing needs a certificate trusted by the device and an S/MIME (CMS) signer; the server's
//!   own certificate would do only with ACME, and CMS is not in our crates. Installing still
//!   asks for confirmation, and for the password (the GET's profile carries none; the POST's
//!   carries an app password, see below).
//! - Identifiers and UUIDs are derived from the host name and the address, so downloading the
//!   profile again replaces the installed one instead of adding a second account.
//! - With two-factor sign-in on, the account password no longer works for IMAP and SMTP, so
//!   the profile must carry an app password: the GET sends the user to the app-password page,
//!   whose form POSTs here (a CSRF-checked form, since it makes something); the POST makes an
//!   app password for IMAP and SMTP named after the profile and puts it in the profile (the
//!   only place it is ever shown). The POST works without two-factor sign-in too: a device
//!   set up that way can be revoked on its own.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::super::session::Posted;
use super::super::{WebError, WebState};
use super::Reader;
use crate::auth::app_passwords::{IMAP, SMTP};

/// The name of the app passwords made for profiles.
pub const PROFILE_APP_PASSWORD: &str = "iPhone, iPad or Mac profile";

/// `GET`: the profile without a password (the device asks for it), unless two-factor sign-in
/// is on: then the app-password page, which offers the profile with an app password.
pub async fn profile(reader: Reader, State(state): State<WebState>) -> Result<Response, WebError> {
    if state.store.second_factor_on(reader.0.account.id).await? {
        return Ok(
            Redirect::to("/mail/settings/app-passwords?done=profile-needs-app-password")
                .into_response(),
        );
    }
    render(&state, &reader, None)
}

/// The form carries only its token.
#[derive(Deserialize)]
pub struct ProfileForm {}

/// `POST`: the profile with a new app password for IMAP and SMTP in it.
pub async fn with_app_password(
    State(state): State<WebState>,
    Posted(reader, _f): Posted<Reader, ProfileForm>,
) -> Result<Response, WebError> {
    let Some((row, password)) = state
        .auth
        .create_app_password(reader.0.account.id, PROFILE_APP_PASSWORD, IMAP | SMTP)
        .await?
    else {
        return Err(WebError::BadRequest(format!(
            "You have {} app passwords, the most there can be: revoke one you no longer use \
             on the App passwords page, then download the profile again.",
            crate::store::app_passwords::MAX_PER_ACCOUNT
        )));
    };
    tracing::info!(
        account = reader.0.account.address,
        app_password = row.id,
        "app password created for a mobileconfig profile"
    );
    render(&state, &reader, Some(&password))
}

fn render(state: &WebState, reader: &Reader, password: Option<&str>) -> Result<Response, WebError> {
    let account = &reader.0.account;
    let port = |kinds: [&str; 2]| {
        kinds.iter().find_map(|kind| {
            state
                .services
                .iter()
                .find(|s| s.kind == *kind)
                .map(|s| s.port)
        })
    };
    let (Some(imap), Some(smtp)) = (port(["imaps", "imap"]), port(["submissions", "submission"]))
    else {
        return Err(WebError::BadRequest(
            "This server has no IMAP or no submission listener, so there is no profile to set \
             up. Ask the administrator."
                .into(),
        ));
    };
    let host = escape(&state.hostname);
    let address = escape(&account.address);
    let name = if account.display_name.is_empty() {
        address.clone()
    } else {
        escape(&account.display_name)
    };
    let identifier = escape(&format!(
        "{}.mailroom.{}",
        state
            .hostname
            .split('.')
            .rev()
            .collect::<Vec<_>>()
            .join("."),
        account.address.replace(['@', '.'], "-")
    ));
    let seed = format!("{}\n{}", state.hostname, account.address.to_lowercase());
    let profile_uuid = uuid(&format!("profile\n{seed}"));
    let mail_uuid = uuid(&format!("mail\n{seed}"));
    // The app password's alphabet needs no escaping; escaped all the same.
    let passwords = match password {
        Some(p) => {
            let p = escape(p);
            format!(
                "\n      <key>IncomingPassword</key><string>{p}</string>\n      \
                 <key>OutgoingPassword</key><string>{p}</string>"
            )
        }
        None => String::new(),
    };
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key><string>{address}</string>
      <key>EmailAccountName</key><string>{name}</string>
      <key>EmailAccountType</key><string>EmailTypeIMAP</string>
      <key>EmailAddress</key><string>{address}</string>
      <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key><string>{host}</string>
      <key>IncomingMailServerPortNumber</key><integer>{imap}</integer>
      <key>IncomingMailServerUseSSL</key><true/>
      <key>IncomingMailServerUsername</key><string>{address}</string>{passwords}
      <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key><string>{host}</string>
      <key>OutgoingMailServerPortNumber</key><integer>{smtp}</integer>
      <key>OutgoingMailServerUseSSL</key><true/>
      <key>OutgoingMailServerUsername</key><string>{address}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key><true/>
      <key>PayloadDescription</key><string>Mail for {address}</string>
      <key>PayloadDisplayName</key><string>{address}</string>
      <key>PayloadIdentifier</key><string>{identifier}.mail</string>
      <key>PayloadType</key><string>com.apple.mail.managed</string>
      <key>PayloadUUID</key><string>{mail_uuid}</string>
      <key>PayloadVersion</key><integer>1</integer>
    </dict>
  </array>
  <key>PayloadDescription</key><string>Sets up {address} in Mail.</string>
  <key>PayloadDisplayName</key><string>Mail on {host}</string>
  <key>PayloadIdentifier</key><string>{identifier}</string>
  <key>PayloadRemovalDisallowed</key><false/>
  <key>PayloadType</key><string>Configuration</string>
  <key>PayloadUUID</key><string>{profile_uuid}</string>
  <key>PayloadVersion</key><integer>1</integer>
</dict>
</plist>
"#
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-apple-aspen-config"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mail.mobileconfig\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// A UUID (RFC 9562 version 8, "custom") from the SHA-256 of `seed`: stable for one seed.
fn uuid(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::uuid;

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let a = uuid("x");
        assert_eq!(a, uuid("x"));
        assert_ne!(a, uuid("y"));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'), "{a}");
    }
}
