//! Delivery status notifications (RFC 3464): the one bounce a sender gets for the recipients a
//! message could not reach, built with mail-builder as `multipart/report`.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

use crate::mime::{header_section, rfc5322_now, unique_id};

/// One recipient that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub recipient: String,
    /// Why, as the peer said it (`550 5.1.1 ...`) or as we saw it (a DNS or connection error).
    pub diagnostic: String,
    /// True when a remote server answered (the diagnostic is an SMTP reply).
    pub from_peer: bool,
}

impl Failure {
    /// The RFC 3463 status: the peer's enhanced code when it gave one, else a generic one.
    pub fn status(&self) -> String {
        let mut words = self.diagnostic.split_whitespace();
        let code = words.next().unwrap_or("");
        if self.from_peer
            && let Some(enhanced) = words.next()
            && is_enhanced(enhanced)
        {
            return enhanced.to_string();
        }
        match code.chars().next() {
            Some('5') if self.from_peer => "5.0.0".into(),
            // Not from a peer: we gave up (expiry, no MX host, null MX).
            _ => "5.4.7".into(),
        }
    }
}

fn is_enhanced(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts.first(), Some(&"2" | &"4" | &"5"))
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The DSN for `failures` of the message `original` (sent by `sender`, queued at `arrival`).
pub fn build(
    hostname: &str,
    sender: &str,
    original: &[u8],
    arrival: i64,
    failures: &[Failure],
) -> Vec<u8> {
    let mut text = format!(
        "This is the mail server at {hostname}.\r\n\r\n\
         Your message could not be delivered to the following recipients:\r\n\r\n"
    );
    for f in failures {
        text.push_str(&format!(
            "  {}\r\n    {}\r\n\r\n",
            f.recipient,
            one_line(&f.diagnostic)
        ));
    }
    text.push_str("The headers of your message are attached.\r\n");

    let arrival_date = time::OffsetDateTime::from_unix_timestamp(arrival)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_else(rfc5322_now);
    let mut status = format!("Reporting-MTA: dns; {hostname}\r\nArrival-Date: {arrival_date}\r\n");
    for f in failures {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\n",
            f.recipient,
            f.status()
        ));
        let kind = if f.from_peer { "smtp" } else { "X-Mailroom" };
        status.push_str(&format!(
            "Diagnostic-Code: {kind}; {}\r\n",
            one_line(&f.diagnostic)
        ));
    }

    let headers = header_section(original);
    let headers_encoding = if headers.is_ascii() { "7bit" } else { "8bit" };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", text),
            MimePart::new("message/delivery-status", status.into_bytes()).transfer_encoding("7bit"),
            MimePart::new("text/rfc822-headers", headers.to_vec())
                .transfer_encoding(headers_encoding),
        ],
    );
    let daemon = format!("MAILER-DAEMON@{hostname}");
    let message = MessageBuilder::new()
        .from(("Mail Delivery System", daemon.as_str()))
        .to(sender)
        .subject("Undelivered mail returned to sender")
        .message_id(format!("{}@{hostname}", unique_id()))
        // RFC 3834: an automatic reply, so no auto-responder answers it.
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report);
    message.write_to_vec().unwrap_or_default()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_comes_from_the_peer_when_it_gave_one() {
        let f = |d: &str, p| Failure {
            recipient: "a@b".into(),
            diagnostic: d.into(),
            from_peer: p,
        };
        assert_eq!(f("550 5.1.1 no such user", true).status(), "5.1.1");
        assert_eq!(f("550 no such user", true).status(), "5.0.0");
        assert_eq!(
            f("example.org accepts no mail (null MX)", false).status(),
            "5.4.7"
        );
    }

    #[test]
    fn a_dsn_is_a_delivery_status_report_with_the_original_headers() {
        let original = b"From: a@example.org\r\nSubject: hello\r\n\r\nsecret body\r\n";
        let dsn = build(
            "mx.example.org",
            "a@example.org",
            original,
            0,
            &[Failure {
                recipient: "x@remote.test".into(),
                diagnostic: "550 5.1.1 <x@remote.test>: no such user".into(),
                from_peer: true,
            }],
        );
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("multipart/report"), "{text}");
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status"),
            "{text}"
        );
        assert!(
            text.contains("Final-Recipient: rfc822; x@remote.test"),
            "{text}"
        );
        assert!(text.contains("Status: 5.1.1"), "{text}");
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(text.contains("Subject: hello"), "{text}");
        assert!(!text.contains("secret body"), "{text}");
    }
}
