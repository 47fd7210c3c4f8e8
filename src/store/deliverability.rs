//! Deliverability settings (issue 23, migration 0020): where the required addresses
//! `postmaster@` and `abuse@` go, MTA-STS publishing per domain, and the smarthost.

use sqlx::Row;

use super::accounts::Account;
use super::{Result, Store, StoreError, now};
use crate::address::Address;

/// The local parts every domain must accept (RFC 5321 §4.5.1, RFC 2142).
pub const REQUIRED_LOCALS: [&str; 2] = ["postmaster", "abuse"];

/// Whether `local` is a required address's local part (compared without case).
pub fn required_local(local: &str) -> Option<&'static str> {
    REQUIRED_LOCALS
        .into_iter()
        .find(|r| r.eq_ignore_ascii_case(local))
}

/// An admin's choice for a required address: for one domain, or for all (`domain: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredRoute {
    pub domain: Option<String>,
    pub local: String,
    pub target: String,
}

/// MTA-STS publishing of a domain (RFC 8461).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MtaStsMode {
    #[default]
    Off,
    Testing,
    Enforce,
}

impl MtaStsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MtaStsMode::Off => "off",
            MtaStsMode::Testing => "testing",
            MtaStsMode::Enforce => "enforce",
        }
    }

    pub fn parse(s: &str) -> Option<MtaStsMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Some(MtaStsMode::Off),
            "testing" => Some(MtaStsMode::Testing),
            "enforce" => Some(MtaStsMode::Enforce),
            _ => None,
        }
    }
}

/// How the connection to a smarthost is protected. Both require a verified certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayTls {
    /// TLS from the first byte (usually port 465).
    Implicit,
    /// STARTTLS, required (usually port 587).
    Starttls,
}

impl RelayTls {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayTls::Implicit => "implicit",
            RelayTls::Starttls => "starttls",
        }
    }

    pub fn parse(s: &str) -> Option<RelayTls> {
        match s.trim().to_ascii_lowercase().as_str() {
            "implicit" | "tls" => Some(RelayTls::Implicit),
            "starttls" => Some(RelayTls::Starttls),
            _ => None,
        }
    }
}

/// A relay that outbound mail goes through instead of the recipients' MX hosts.
#[derive(Clone, PartialEq, Eq)]
pub struct Smarthost {
    /// The sending domain it is for; `None` for every domain without its own.
    pub domain: Option<String>,
    pub host: String,
    pub port: u16,
    pub tls: RelayTls,
    pub username: String,
    pub password: String,
}

// The password stays out of logs and debug output.
impl std::fmt::Debug for Smarthost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smarthost")
            .field("domain", &self.domain)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Bounds of what an admin may store (they are sent to a relay and shown on pages).
pub const MAX_SMARTHOST_FIELD: usize = 255;

impl Store {
    /// The domain's id, or an `Invalid` error naming it when it is not ours.
    async fn domain_id_of(&self, domain: Option<&str>) -> Result<Option<i64>> {
        let Some(domain) = domain else {
            return Ok(None);
        };
        let name = domain.trim().trim_end_matches('.');
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM domains WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        id.map(Some)
            .ok_or_else(|| StoreError::Invalid(format!("{name} is not one of our domains")))
    }

    /// The first admin account (the oldest; an enabled one before a disabled one): where the
    /// required addresses go unless the admin chose otherwise.
    pub async fn first_admin(&self) -> Result<Option<Account>> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE is_admin = 1 ORDER BY disabled, id LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        match id {
            Some(id) => self.account(id).await,
            None => Ok(None),
        }
    }

    /// Where mail to the required address `local@domain` goes when no account or alias has that
    /// name: the domain's route, the global one, or the first admin. `None` when `local` is not
    /// a required local part or there is nowhere to send it (no admin at all).
    pub(super) async fn required_targets(&self, address: &Address) -> Result<Option<Vec<String>>> {
        let Some(local) = required_local(&address.local) else {
            return Ok(None);
        };
        let target: Option<String> = sqlx::query_scalar(
            "SELECT r.target FROM required_address_routes r
             LEFT JOIN domains d ON d.id = r.domain_id
             WHERE r.local = ? AND (r.domain_id IS NULL OR d.name = ?)
             ORDER BY r.domain_id IS NULL LIMIT 1",
        )
        .bind(local)
        .bind(address.domain.trim_end_matches('.'))
        .fetch_optional(&self.reader)
        .await?;
        if let Some(target) = target {
            return Ok(Some(vec![target]));
        }
        Ok(self.first_admin().await?.map(|a| vec![a.address]))
    }

    /// Every route an admin set, global ones first.
    pub async fn required_routes(&self) -> Result<Vec<RequiredRoute>> {
        let rows = sqlx::query(
            "SELECT d.name AS domain, r.local, r.target FROM required_address_routes r
             LEFT JOIN domains d ON d.id = r.domain_id
             ORDER BY r.domain_id IS NOT NULL, d.name, r.local",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RequiredRoute {
                    domain: r.try_get("domain")?,
                    local: r.try_get("local")?,
                    target: r.try_get("target")?,
                })
            })
            .collect()
    }

    /// Points the required address `local` of `domain` (or of every domain) at `target`, or
    /// back to the default (the first admin) with `None`. The target is any valid address.
    pub async fn set_required_route(
        &self,
        domain: Option<&str>,
        local: &str,
        target: Option<&str>,
    ) -> Result<()> {
        let local = required_local(local)
            .ok_or_else(|| StoreError::Invalid(format!("{local:?} is not postmaster or abuse")))?;
        let domain_id = self.domain_id_of(domain).await?;
        let mut tx = self.write().await?;
        sqlx::query(
            "DELETE FROM required_address_routes WHERE COALESCE(domain_id, 0) = ? AND local = ?",
        )
        .bind(domain_id.unwrap_or(0))
        .bind(local)
        .execute(&mut *tx)
        .await?;
        if let Some(target) = target.map(str::trim).filter(|t| !t.is_empty()) {
            let target = Address::parse(target).map_err(StoreError::Invalid)?;
            sqlx::query(
                "INSERT INTO required_address_routes (domain_id, local, target, updated)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(domain_id)
            .bind(local)
            .bind(target.to_string().to_lowercase())
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A domain's MTA-STS publishing mode (`Off` for a domain that is not ours).
    pub async fn mta_sts_mode(&self, domain: &str) -> Result<MtaStsMode> {
        let mode: Option<String> =
            sqlx::query_scalar("SELECT mta_sts_mode FROM domains WHERE name = ?")
                .bind(domain.trim().trim_end_matches('.'))
                .fetch_optional(&self.reader)
                .await?;
        Ok(mode
            .as_deref()
            .and_then(MtaStsMode::parse)
            .unwrap_or_default())
    }

    /// The domains that publish an MTA-STS policy, by name, with their mode.
    pub async fn mta_sts_domains(&self) -> Result<Vec<(String, MtaStsMode)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, mta_sts_mode FROM domains WHERE mta_sts_mode != 'off' ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, mode)| Some((name, MtaStsMode::parse(&mode)?)))
            .filter(|(_, mode)| *mode != MtaStsMode::Off)
            .collect())
    }

    pub async fn set_mta_sts_mode(&self, domain: &str, mode: MtaStsMode) -> Result<()> {
        let done = sqlx::query("UPDATE domains SET mta_sts_mode = ? WHERE name = ?")
            .bind(mode.as_str())
            .bind(domain.trim().trim_end_matches('.'))
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("domain {}", domain.trim())));
        }
        Ok(())
    }

    /// Every smarthost set, the global one first.
    pub async fn smarthosts(&self) -> Result<Vec<Smarthost>> {
        let rows = sqlx::query(
            "SELECT d.name AS domain, s.host, s.port, s.tls, s.username, s.password
             FROM smarthosts s LEFT JOIN domains d ON d.id = s.domain_id
             ORDER BY s.domain_id IS NOT NULL, d.name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(smarthost_row).collect()
    }

    /// The relay for mail sent from `sender_domain`: its own, else the global one.
    pub async fn smarthost_for(&self, sender_domain: &str) -> Result<Option<Smarthost>> {
        let row = sqlx::query(
            "SELECT d.name AS domain, s.host, s.port, s.tls, s.username, s.password
             FROM smarthosts s LEFT JOIN domains d ON d.id = s.domain_id
             WHERE s.domain_id IS NULL OR d.name = ?
             ORDER BY s.domain_id IS NULL LIMIT 1",
        )
        .bind(sender_domain.trim().trim_end_matches('.'))
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(smarthost_row).transpose()
    }

    /// Sets the relay of `relay.domain` (or the global one). An empty password keeps the one
    /// stored (forms never show it back).
    pub async fn set_smarthost(&self, relay: &Smarthost) -> Result<()> {
        let host = relay.host.trim().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty()
            || host.len() > MAX_SMARTHOST_FIELD
            || host.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(StoreError::Invalid(format!(
                "{:?} is not a host name or address",
                relay.host
            )));
        }
        if relay.port == 0 {
            return Err(StoreError::Invalid("the port must be 1 to 65535".into()));
        }
        for (what, value) in [("username", &relay.username), ("password", &relay.password)] {
            if value.len() > MAX_SMARTHOST_FIELD || value.chars().any(char::is_control) {
                return Err(StoreError::Invalid(format!(
                    "the {what} must be at most {MAX_SMARTHOST_FIELD} bytes without control characters"
                )));
            }
        }
        let domain_id = self.domain_id_of(relay.domain.as_deref()).await?;
        let mut tx = self.write().await?;
        let old: Option<String> =
            sqlx::query_scalar("SELECT password FROM smarthosts WHERE COALESCE(domain_id, 0) = ?")
                .bind(domain_id.unwrap_or(0))
                .fetch_optional(&mut *tx)
                .await?;
        let password = match (relay.password.is_empty(), old) {
            (true, Some(old)) => old,
            _ => relay.password.clone(),
        };
        sqlx::query("DELETE FROM smarthosts WHERE COALESCE(domain_id, 0) = ?")
            .bind(domain_id.unwrap_or(0))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO smarthosts (domain_id, host, port, tls, username, password, updated)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(domain_id)
        .bind(&host)
        .bind(i64::from(relay.port))
        .bind(relay.tls.as_str())
        .bind(relay.username.trim())
        .bind(&password)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the relay of `domain` (or the global one); true when there was one.
    pub async fn clear_smarthost(&self, domain: Option<&str>) -> Result<bool> {
        let domain_id = self.domain_id_of(domain).await?;
        let done = sqlx::query("DELETE FROM smarthosts WHERE COALESCE(domain_id, 0) = ?")
            .bind(domain_id.unwrap_or(0))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn smarthost_row(r: &sqlx::sqlite::SqliteRow) -> Result<Smarthost> {
    let tls: String = r.try_get("tls")?;
    let port: i64 = r.try_get("port")?;
    Ok(Smarthost {
        domain: r.try_get("domain")?,
        host: r.try_get("host")?,
        port: u16::try_from(port)
            .map_err(|_| StoreError::Corrupt(format!("smarthost port {port}")))?,
        tls: RelayTls::parse(&tls)
            .ok_or_else(|| StoreError::Corrupt(format!("smarthost tls {tls:?}")))?,
        username: r.try_get("username")?,
        password: r.try_get("password")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_locals_ignore_case() {
        assert_eq!(required_local("PostMaster"), Some("postmaster"));
        assert_eq!(required_local("abuse"), Some("abuse"));
        assert_eq!(required_local("hostmaster"), None);
    }

    #[test]
    fn modes_round_trip() {
        for m in [MtaStsMode::Off, MtaStsMode::Testing, MtaStsMode::Enforce] {
            assert_eq!(MtaStsMode::parse(m.as_str()), Some(m));
        }
        for t in [RelayTls::Implicit, RelayTls::Starttls] {
            assert_eq!(RelayTls::parse(t.as_str()), Some(t));
        }
        assert_eq!(MtaStsMode::parse("on"), None);
    }
}
