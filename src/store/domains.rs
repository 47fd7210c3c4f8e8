//! Domains and aliases.

use sqlx::Row;

use super::{Result, Store, StoreError, dkim, now};
use crate::address::{Address, AliasSource, validate_domain};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: i64,
    pub name: String,
    pub accounts: i64,
    pub aliases: i64,
    pub created_at: i64,
}

/// One alias source with all its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub source: String,
    pub targets: Vec<String>,
}

impl Store {
    pub async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = validate_domain(name).map_err(|e| {
            StoreError::Invalid(format!("{:?} is not a valid domain: {e}", name.trim()))
        })?;
        let exists = |id: Option<i64>| match id {
            Some(_) => Err(StoreError::Conflict(format!(
                "domain {name} already exists"
            ))),
            None => Ok(()),
        };
        // A cheap early answer for a duplicate, before spending CPU on keys; the check inside
        // the transaction below is the one that counts.
        exists(
            sqlx::query_scalar("SELECT id FROM domains WHERE name = ?")
                .bind(&name)
                .fetch_optional(&self.reader)
                .await?,
        )?;
        let created_at = now();
        // Outside the transaction: generating the RSA key takes a while and the writer is
        // shared by every delivery.
        let keys = dkim::generate(created_at).await?;
        let mut tx = self.write().await?;
        exists(
            sqlx::query_scalar("SELECT id FROM domains WHERE name = ?")
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await?,
        )?;
        let id = sqlx::query(
            "INSERT INTO domains (name, created_at, dkim_selector, dkim_rsa_key, dkim_ed25519_key)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&name)
        .bind(created_at)
        .bind(&keys.selector)
        .bind(&keys.rsa_pem)
        .bind(&keys.ed25519_pem)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        tx.commit().await?;
        Ok(Domain {
            id,
            name,
            accounts: 0,
            aliases: 0,
            created_at,
        })
    }

    pub async fn domains(&self) -> Result<Vec<Domain>> {
        let rows = sqlx::query(
            "SELECT d.id, d.name, d.created_at,
                    (SELECT COUNT(*) FROM accounts a WHERE a.domain_id = d.id) AS accounts,
                    (SELECT COUNT(DISTINCT source) FROM aliases l WHERE l.domain_id = d.id) AS aliases
             FROM domains d ORDER BY d.name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Domain {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    accounts: r.try_get("accounts")?,
                    aliases: r.try_get("aliases")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn domain(&self, name: &str) -> Result<Option<Domain>> {
        let name = name.trim().trim_end_matches('.');
        Ok(self
            .domains()
            .await?
            .into_iter()
            .find(|d| d.name.eq_ignore_ascii_case(name)))
    }

    /// Removes a domain and its aliases; refused while it has accounts.
    pub async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = validate_domain(name).map_err(StoreError::Invalid)?;
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM domains WHERE name = ?")
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {name}")))?;
        let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE domain_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if accounts > 0 {
            return Err(StoreError::Conflict(format!(
                "domain {name} still has {accounts} account(s); remove them first"
            )));
        }
        sqlx::query("DELETE FROM aliases WHERE domain_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM domains WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds targets to an alias (creating it). The source's domain must be local and must not be
    /// an account's address; targets may be local or remote addresses.
    pub async fn add_alias(&self, source: &str, targets: &[String]) -> Result<Alias> {
        let source = AliasSource::parse(source).map_err(StoreError::Invalid)?;
        if targets.is_empty() {
            return Err(StoreError::Invalid(
                "an alias needs at least one target".into(),
            ));
        }
        let targets = targets
            .iter()
            .map(|t| Address::parse(t).map(|a| a.to_string()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(StoreError::Invalid)?;
        let source_text = source.to_string();
        if targets.iter().any(|t| t.eq_ignore_ascii_case(&source_text)) {
            return Err(StoreError::Invalid(format!(
                "{source_text} cannot point to itself"
            )));
        }
        let mut tx = self.write().await?;
        let domain_id: i64 = sqlx::query_scalar("SELECT id FROM domains WHERE name = ?")
            .bind(source.domain())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("domain {}", source.domain())))?;
        let account: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE address = ?")
            .bind(&source_text)
            .fetch_optional(&mut *tx)
            .await?;
        if account.is_some() {
            return Err(StoreError::Conflict(format!(
                "{source_text} is an account; an alias cannot have the same address"
            )));
        }
        let created_at = now();
        for target in &targets {
            sqlx::query(
                "INSERT INTO aliases (domain_id, source, target, created_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (source, target) DO NOTHING",
            )
            .bind(domain_id)
            .bind(&source_text)
            .bind(target)
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.alias(&source_text)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("alias {source_text}")))
    }

    pub async fn alias(&self, source: &str) -> Result<Option<Alias>> {
        let targets: Vec<String> =
            sqlx::query_scalar("SELECT target FROM aliases WHERE source = ? ORDER BY target")
                .bind(source.trim())
                .fetch_all(&self.reader)
                .await?;
        Ok((!targets.is_empty()).then(|| Alias {
            source: source.trim().to_string(),
            targets,
        }))
    }

    /// Every alias, optionally only those of one domain.
    pub async fn aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>> {
        let rows = sqlx::query(
            "SELECT l.source, l.target FROM aliases l JOIN domains d ON d.id = l.domain_id
             WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, l.source, l.target",
        )
        .bind(domain)
        .fetch_all(&self.reader)
        .await?;
        let mut out: Vec<Alias> = Vec::new();
        for r in rows {
            let source: String = r.try_get("source")?;
            let target: String = r.try_get("target")?;
            match out.last_mut() {
                Some(last) if last.source == source => last.targets.push(target),
                _ => out.push(Alias {
                    source,
                    targets: vec![target],
                }),
            }
        }
        Ok(out)
    }

    /// Removes one target of an alias, or the whole alias when `target` is `None`.
    pub async fn remove_alias(&self, source: &str, target: Option<&str>) -> Result<()> {
        let removed =
            sqlx::query("DELETE FROM aliases WHERE source = ?1 AND (?2 IS NULL OR target = ?2)")
                .bind(source.trim())
                .bind(target.map(str::trim))
                .execute(&self.writer)
                .await?
                .rows_affected();
        if removed == 0 {
            return Err(StoreError::NotFound(match target {
                Some(t) => format!("alias {} -> {t}", source.trim()),
                None => format!("alias {}", source.trim()),
            }));
        }
        Ok(())
    }
}
