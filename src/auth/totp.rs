//! TOTP (RFC 6238) for the web's second step, through the `totp-rs` crate: HMAC-SHA1, six
//! digits, 30-second steps (what every authenticator app takes from a QR code), a 160-bit
//! random secret, and one step of clock skew either way. Which step matched is returned, so
//! the store can refuse a step already used (`Store::use_totp_step`): a code signs in once.

use totp_rs::{Algorithm, Builder, Totp};

/// Secret length: 160 bits, RFC 4226's recommendation for HMAC-SHA1.
pub const SECRET_BYTES: usize = 20;
const DIGITS: u8 = 6;
const STEP_SECS: u64 = 30;
/// Steps accepted either side of now (±30 s): a phone's clock a little off, a code typed as
/// it changes.
const SKEW: u16 = 1;

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    bytes.to_vec()
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, String> {
    let issuer = (!issuer.is_empty()).then(|| issuer.replace(':', ""));
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .with_issuer(issuer)
        .with_account_name(account.replace(':', ""))
        .build()
        .map_err(|e| format!("TOTP: {e}"))
}

/// The time step of `code` if it is valid for `secret` at `unix_time` (±1 step).
pub fn matching_step(secret: &[u8], code: &str, unix_time: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let t = totp(secret, "", "").ok()?;
    t.check(&code, u64::try_from(unix_time).ok()?)
        .and_then(|step| i64::try_from(step).ok())
}

/// The `otpauth://` URL an authenticator app reads from the QR code.
pub fn otpauth_url(secret: &[u8], issuer: &str, account: &str) -> Result<String, String> {
    totp(secret, issuer, account)?
        .to_url()
        .map_err(|e| format!("TOTP URL: {e}"))
}

/// The secret as people type it: base32, in groups of four.
pub fn secret_text(secret: &[u8]) -> String {
    let b32 = totp_rs::Secret::from(secret.to_vec()).to_base32();
    let chars: Vec<char> = b32.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A QR code of `text` as an SVG document, drawn here (no external service, no script).
pub fn qr_svg(text: &str) -> Result<String, String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| format!("QR code: {e}"))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The code for `secret` at `unix_time`, for tests and the setup page's self-check.
pub fn code_at(secret: &[u8], unix_time: u64) -> Option<String> {
    Some(totp(secret, "", "").ok()?.generate(unix_time).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the seed is the ASCII "12345678901234567890"), 8 digits.
    #[test]
    fn rfc6238_sha1_vectors() {
        let seed = b"12345678901234567890";
        let t = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(8)
            .with_step_duration(30)
            .with_secret(seed.to_vec())
            .build()
            .unwrap();
        for (time, code) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(t.generate(time).to_string(), code, "T = {time}");
        }
    }

    #[test]
    fn accepts_one_step_either_side_and_says_which() {
        let secret = new_secret();
        let now = 1_700_000_015i64;
        let step = now / 30;
        for (offset, expect) in [
            (-30i64, Some(step - 1)),
            (0, Some(step)),
            (30, Some(step + 1)),
        ] {
            let code = code_at(&secret, (now + offset) as u64).unwrap();
            assert_eq!(
                matching_step(&secret, &code, now),
                expect,
                "offset {offset}"
            );
        }
        for offset in [-90i64, -60, 60, 90] {
            let code = code_at(&secret, (now + offset) as u64).unwrap();
            // A code two steps away may collide with a near one by chance (1 in 10^6 each).
            if [-30i64, 0, 30]
                .iter()
                .all(|o| code_at(&secret, (now + o) as u64).unwrap() != code)
            {
                assert_eq!(matching_step(&secret, &code, now), None, "offset {offset}");
            }
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
        let spaced = code_at(&secret, now as u64).unwrap();
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(matching_step(&secret, &spaced, now), Some(step));
    }

    #[test]
    fn url_and_qr() {
        let secret = vec![7u8; 20];
        let url = otpauth_url(&secret, "mail.example.org", "alice@example.org").unwrap();
        assert!(url.starts_with("otpauth://totp/"), "{url}");
        assert!(url.contains("secret=A4DQ"), "{url}");
        assert!(url.contains("issuer=mail.example.org"), "{url}");
        let svg = qr_svg(&url).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
        assert_eq!(
            secret_text(&secret).replace(' ', ""),
            totp_rs::Secret::from(secret).to_base32()
        );
    }
}
