//! The messages Sieve sends on an account's behalf, built with mail-builder: the vacation
//! reply (RFC 5230 §5, RFC 3834) and the refusal of `reject` when the message could no longer
//! be refused in SMTP (RFC 5429 §2.1: an MDN, RFC 8098, with the disposition "deleted").
//! Both are automatic replies (`Auto-Submitted: auto-replied`), so no responder answers them,
//! and both go out with the null envelope sender (RFC 3834 §4), so no bounce comes back.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

use super::Vacation;
use crate::mime::{header_section, unique_id};

/// The reply `vacation` asks for, from `from` (the account's address, or the script's
/// `:from`). The body is the script's reason: plain text, or with `:mime` a MIME entity
/// whose own header section comes first.
pub fn vacation(hostname: &str, from: &str, v: &Vacation) -> Vec<u8> {
    let mut m = MessageBuilder::new()
        .from(from)
        .to(v.to.as_str())
        .subject(v.subject.as_str())
        .message_id(format!("{}@{hostname}", unique_id()))
        .header("Auto-Submitted", Raw::new("auto-replied (vacation)"));
    let bare = |id: &str| id.trim().trim_matches(|c| c == '<' || c == '>').to_string();
    if let Some(id) = v
        .in_reply_to
        .as_deref()
        .map(bare)
        .filter(|id| !id.is_empty())
    {
        m = m.in_reply_to(id);
    }
    // The interpreter wrote the thread: the original's References, then its Message-ID
    // (RFC 5322 §3.6.4). A long thread is cut from the front (the newest matter).
    let mut refs: Vec<String> = v
        .references
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(bare)
        .filter(|r| !r.is_empty())
        .collect();
    if !refs.is_empty() {
        let keep = refs.len().saturating_sub(crate::thread::MAX_REFS);
        m = m.references(refs.split_off(keep));
    }
    if !v.mime {
        return m
            .text_body(v.body.as_str())
            .write_to_vec()
            .unwrap_or_default();
    }
    // :mime: the reason is an entity of its own (its fields, a blank line, its body): our
    // fields but the MIME ones, then it.
    let head = m.text_body("").write_to_vec().unwrap_or_default();
    let ours = crate::mime::drop_fields(header_section(&head), |line| {
        let line = String::from_utf8_lossy(line).to_ascii_lowercase();
        line.starts_with("mime-version:") || line.starts_with("content-")
    });
    let ours = ours.strip_suffix(b"\r\n").unwrap_or(&ours);
    let entity = v.body.replace("\r\n", "\n").replace('\n', "\r\n");
    [ours, b"MIME-Version: 1.0\r\n", entity.as_bytes()].concat()
}

/// The MDN that tells `sender` the account `recipient` refused `original` for `reason`.
pub fn refusal(
    hostname: &str,
    recipient: &str,
    sender: &str,
    original: &[u8],
    reason: &str,
) -> Vec<u8> {
    let headers = header_section(original);
    let original_id = crate::thread::header_field(headers, "message-id")
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    let subject = crate::thread::header_field(headers, "subject")
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    let text = format!(
        "Your message to {recipient} was automatically rejected:\r\n\r\n{}\r\n",
        reason.trim()
    );
    let mut notification =
        format!("Reporting-UA: {hostname}; Mailroom\r\nFinal-Recipient: rfc822; {recipient}\r\n");
    if !original_id.is_empty() {
        notification.push_str(&format!("Original-Message-ID: {original_id}\r\n"));
    }
    notification.push_str("Disposition: automatic-action/MDN-sent-automatically; deleted\r\n");
    let headers_encoding = if headers.is_ascii() { "7bit" } else { "8bit" };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "disposition-notification"),
        vec![
            MimePart::new("text/plain", text),
            MimePart::new(
                "message/disposition-notification",
                notification.into_bytes(),
            )
            .transfer_encoding("7bit"),
            MimePart::new("text/rfc822-headers", headers.to_vec())
                .transfer_encoding(headers_encoding),
        ],
    );
    MessageBuilder::new()
        .from(recipient)
        .to(sender)
        .subject(format!("Rejected: {subject}").trim_end())
        .message_id(format!("{}@{hostname}", unique_id()))
        .header("Auto-Submitted", Raw::new("auto-replied (rejected)"))
        .body(report)
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> Vacation {
        Vacation {
            to: "friend@remote.test".into(),
            from: None,
            subject: "Away: über den Berg".into(),
            body: "Back on Monday.".into(),
            mime: false,
            handle: "h".into(),
            period_secs: 7 * 86_400,
            in_reply_to: Some("<abc@remote.test>".into()),
            references: Some("<root@remote.test> <abc@remote.test>".into()),
        }
    }

    #[test]
    fn a_vacation_reply_is_an_automatic_reply_in_the_thread() {
        let raw = vacation("mx.example.org", "alice@example.org", &reply());
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains("Auto-Submitted: auto-replied (vacation)"),
            "{text}"
        );
        assert!(text.contains("In-Reply-To: <abc@remote.test>"), "{text}");
        assert!(
            text.contains("References: <root@remote.test> <abc@remote.test>"),
            "{text}"
        );
        assert!(text.contains("To: <friend@remote.test>"), "{text}");
        // The non-ASCII subject is encoded, the body is there.
        assert!(text.contains("Subject: =?utf-8?"), "{text}");
        assert!(text.contains("Back on Monday."), "{text}");
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Away: über den Berg"));
    }

    #[test]
    fn a_mime_reason_is_the_body_entity() {
        let mut v = reply();
        v.mime = true;
        v.body = "Content-Type: text/html\r\n\r\n<p>Away</p>\r\n".into();
        let raw = vacation("mx.example.org", "alice@example.org", &v);
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.body_html(0).as_deref(), Some("<p>Away</p>\r\n"));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Auto-Submitted"), "{text}");
        assert_eq!(text.matches("MIME-Version").count(), 1, "{text}");
    }

    #[test]
    fn a_refusal_is_an_mdn_with_the_reason_and_the_header() {
        let original = b"From: x@remote.test\r\nSubject: Offer\r\nMessage-ID: <m1@remote.test>\r\n\r\nbody\r\n";
        let raw = refusal(
            "mx.example.org",
            "alice@example.org",
            "x@remote.test",
            original,
            "I do not want offers",
        );
        let text = String::from_utf8_lossy(&raw);
        for want in [
            "report-type=\"disposition-notification\"",
            "Disposition: automatic-action/MDN-sent-automatically; deleted",
            "Final-Recipient: rfc822; alice@example.org",
            "Original-Message-ID: <m1@remote.test>",
            "I do not want offers",
            "Subject: Rejected: Offer",
            "Auto-Submitted: auto-replied (rejected)",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        // The original body is not sent back, only its header.
        assert!(!text.contains("body\r\n--"), "{text}");
    }
}
