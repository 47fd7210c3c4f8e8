//! Running a compiled script on one message: commands in order, tests, the actions they
//! collect with RFC 5228 §4's rules (implicit keep, duplicates) and the extensions'
//! conflicts (reject, vacation), and the run-time limits. A runtime error ends the run with
//! the message kept (RFC 5228 §2.10.6).

use super::compare::{self, Work};
use super::ir::{AddressPart, Command, DateZone, FlagOp, Index, Matcher, Test};
use super::mail::{Mail, addresses};
use super::variables::{Variables, apply_modifiers};
use super::{Action, Context, Message, Outcome, Script, date, flags, vacation};

enum Flow {
    Next,
    Stop,
}

/// An action as collected: stores keep their origin so duplicates merge (RFC 5228 §4.4).
enum Pending {
    Store {
        /// None: `keep` (INBOX).
        mailbox: Option<String>,
        flags: Vec<String>,
        create: bool,
    },
    Redirect(String),
    Reject {
        reason: String,
        ereject: bool,
    },
    Discard,
    Vacation(Box<super::Vacation>),
}

struct Run<'a, 'm> {
    msg: &'a Message<'m>,
    ctx: &'a Context<'a>,
    mail: Mail<'m>,
    vars: Variables,
    uses_variables: bool,
    /// The imap4flags internal variable.
    flags: Vec<String>,
    pending: Vec<Pending>,
    implicit_keep: bool,
    work: Work,
    actions_run: usize,
    redirects: usize,
}

pub(crate) fn run(script: &Script, msg: &Message, ctx: &Context) -> Outcome {
    let limits = ctx.limits;
    let mut r = Run {
        msg,
        ctx,
        mail: Mail::new(msg.raw),
        vars: Variables::new(limits.max_variables, limits.max_variable_bytes),
        uses_variables: script.required().iter().any(|e| e == "variables"),
        flags: Vec::new(),
        pending: Vec::new(),
        implicit_keep: true,
        work: Work {
            units: 0,
            limit: limits.max_instructions,
        },
        actions_run: 0,
        redirects: 0,
    };
    match r.block(&script.commands) {
        Ok(_) => Outcome {
            actions: r.finish(),
            error: None,
        },
        Err(e) => Outcome {
            actions: vec![Action::Keep { flags: Vec::new() }],
            error: Some(e),
        },
    }
}

fn is_inbox(mailbox: Option<&str>) -> bool {
    mailbox.is_none_or(|m| m.eq_ignore_ascii_case("INBOX"))
}

impl Run<'_, '_> {
    fn tick(&mut self) -> Result<(), String> {
        self.work.units = self.work.units.saturating_add(1);
        self.check_work()
    }

    fn check_work(&self) -> Result<(), String> {
        if self.work.units > self.ctx.limits.max_instructions {
            return Err(format!(
                "more than {} instructions",
                self.ctx.limits.max_instructions
            ));
        }
        Ok(())
    }

    fn s(&self, s: &str) -> String {
        if self.uses_variables {
            self.vars.expand(s)
        } else {
            s.to_string()
        }
    }

    fn list(&self, l: &[String]) -> Vec<String> {
        l.iter().map(|s| self.s(s)).collect()
    }

    fn block(&mut self, commands: &[Command]) -> Result<Flow, String> {
        for c in commands {
            if let Flow::Stop = self.command(c)? {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Next)
    }

    fn count_action(&mut self) -> Result<(), String> {
        self.actions_run += 1;
        if self.actions_run > self.ctx.limits.max_actions {
            return Err(format!("more than {} actions", self.ctx.limits.max_actions));
        }
        Ok(())
    }

    fn has_reject(&self) -> bool {
        self.pending
            .iter()
            .any(|p| matches!(p, Pending::Reject { .. }))
    }

    fn command(&mut self, c: &Command) -> Result<Flow, String> {
        self.tick()?;
        match c {
            Command::If {
                branches,
                otherwise,
            } => {
                for (test, body) in branches {
                    if self.test(test)? {
                        return self.block(body);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body);
                }
            }
            Command::Stop => return Ok(Flow::Stop),
            Command::Keep { flags } => {
                let flags = self.action_flags(flags.as_deref());
                self.store(None, flags, false, false)?;
            }
            Command::FileInto {
                mailbox,
                copy,
                create,
                flags,
            } => {
                let mailbox = self.s(mailbox);
                if mailbox.is_empty() || mailbox.chars().any(char::is_control) {
                    return Err(format!("invalid mailbox name {mailbox:?}"));
                }
                let flags = self.action_flags(flags.as_deref());
                self.store(Some(mailbox), flags, *create, *copy)?;
            }
            Command::Redirect { address, copy } => {
                self.count_action()?;
                if self.has_reject() {
                    return Err("redirect conflicts with reject".into());
                }
                let address = self.s(address);
                let Some(bare) = super::validate::redirect_address(&address) else {
                    return Err(format!("invalid redirect address {address:?}"));
                };
                let bare = bare.as_str();
                if !*copy {
                    self.implicit_keep = false;
                }
                let duplicate = self
                    .pending
                    .iter()
                    .any(|p| matches!(p, Pending::Redirect(a) if a.eq_ignore_ascii_case(bare)));
                if !duplicate {
                    self.redirects += 1;
                    if self.redirects > self.ctx.limits.max_redirects {
                        return Err(format!(
                            "more than {} redirects",
                            self.ctx.limits.max_redirects
                        ));
                    }
                    self.pending.push(Pending::Redirect(bare.to_string()));
                }
            }
            Command::Discard => {
                self.count_action()?;
                self.implicit_keep = false;
                if !self.pending.iter().any(|p| matches!(p, Pending::Discard)) {
                    self.pending.push(Pending::Discard);
                }
            }
            Command::Reject { reason, ereject } => {
                self.count_action()?;
                if self.has_reject() {
                    return Err("more than one reject".into());
                }
                if self.pending.iter().any(|p| {
                    matches!(
                        p,
                        Pending::Store { .. } | Pending::Redirect(_) | Pending::Vacation(_)
                    )
                }) {
                    return Err(
                        "reject conflicts with an earlier keep, fileinto, redirect or vacation"
                            .into(),
                    );
                }
                self.implicit_keep = false;
                self.pending.push(Pending::Reject {
                    reason: self.s(reason),
                    ereject: *ereject,
                });
            }
            Command::Vacation(v) => {
                self.count_action()?;
                if self.has_reject() {
                    return Err("vacation conflicts with reject".into());
                }
                if self
                    .pending
                    .iter()
                    .any(|p| matches!(p, Pending::Vacation(_)))
                {
                    return Err("more than one vacation".into());
                }
                let req = vacation::Request {
                    period: v.period,
                    seconds: v.seconds,
                    subject: v.subject.as_deref().map(|s| self.s(s)),
                    from: v.from.as_deref().map(|s| self.s(s)),
                    addresses: self.list(&v.addresses),
                    mime: v.mime,
                    handle: v.handle.as_deref().map(|s| self.s(s)),
                    reason: self.s(&v.reason),
                };
                if let Some(reply) =
                    vacation::reply(req, self.msg, &self.mail, self.ctx.own_addresses)
                {
                    self.pending.push(Pending::Vacation(Box::new(reply)));
                }
            }
            Command::Flags {
                op,
                variable,
                flags,
            } => {
                let given = flags::parse(&self.list(flags));
                let current = match variable {
                    Some(v) => flags::parse(&[self.vars.get(v).unwrap_or_default().to_string()]),
                    None => std::mem::take(&mut self.flags),
                };
                let updated = match op {
                    FlagOp::Set => given,
                    FlagOp::Add => flags::union(current, given),
                    FlagOp::Remove => flags::without(current, &given),
                };
                match variable {
                    Some(v) => self.vars.set(v, updated.join(" "))?,
                    None => self.flags = updated,
                }
            }
            Command::Set {
                modifiers,
                name,
                value,
            } => {
                let value = apply_modifiers(modifiers, self.s(value));
                self.vars.set(name, value)?;
            }
        }
        Ok(Flow::Next)
    }

    /// `:flags` as given, or else the internal variable's current flags.
    fn action_flags(&self, given: Option<&[String]>) -> Vec<String> {
        match given {
            Some(list) => flags::parse(&self.list(list)),
            None => self.flags.clone(),
        }
    }

    /// keep / fileinto: a second store into the same mailbox merges into the first, taking
    /// the later flags (as Pigeonhole does).
    fn store(
        &mut self,
        mailbox: Option<String>,
        flags: Vec<String>,
        create: bool,
        copy: bool,
    ) -> Result<(), String> {
        self.count_action()?;
        if self.has_reject() {
            return Err("keep or fileinto conflicts with reject".into());
        }
        if !copy {
            self.implicit_keep = false;
        }
        let same = |m: &Option<String>| match (m, &mailbox) {
            (a, b) if is_inbox(a.as_deref()) && is_inbox(b.as_deref()) => true,
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        for p in &mut self.pending {
            if let Pending::Store {
                mailbox: m,
                flags: f,
                create: c,
            } = p
                && same(m)
            {
                *f = flags;
                *c |= create;
                return Ok(());
            }
        }
        self.pending.push(Pending::Store {
            mailbox,
            flags,
            create,
        });
        Ok(())
    }

    /// The final action list: implicit keep resolved, discard only when nothing else keeps
    /// or forwards the message.
    fn finish(mut self) -> Vec<Action> {
        if self.implicit_keep {
            let stored = self.pending.iter().any(
                |p| matches!(p, Pending::Store { mailbox, .. } if is_inbox(mailbox.as_deref())),
            );
            if !stored {
                self.pending.push(Pending::Store {
                    mailbox: None,
                    flags: self.flags.clone(),
                    create: false,
                });
            }
        }
        let delivered = self
            .pending
            .iter()
            .any(|p| matches!(p, Pending::Store { .. } | Pending::Redirect(_)));
        self.pending
            .into_iter()
            .filter_map(|p| match p {
                Pending::Store {
                    mailbox: None,
                    flags,
                    ..
                } => Some(Action::Keep { flags }),
                Pending::Store {
                    mailbox: Some(mailbox),
                    flags,
                    create,
                } => Some(Action::FileInto {
                    mailbox,
                    flags,
                    create,
                }),
                Pending::Redirect(address) => Some(Action::Redirect { address }),
                Pending::Reject { reason, ereject } => Some(Action::Reject { reason, ereject }),
                Pending::Discard => (!delivered).then_some(Action::Discard),
                Pending::Vacation(v) => Some(Action::Vacation(*v)),
            })
            .collect()
    }

    fn matches(&mut self, m: &Matcher, values: &[String], keys: &[String]) -> Result<bool, String> {
        let keys = self.list(keys);
        let found = compare::test(m, values, &keys, &mut self.work);
        self.check_work()?;
        if let (true, Some(captures)) = (self.uses_variables, found.captures) {
            self.vars.set_matched(captures);
        }
        Ok(found.matched)
    }

    fn test(&mut self, t: &Test) -> Result<bool, String> {
        self.tick()?;
        Ok(match t {
            Test::True => true,
            Test::False => false,
            Test::Not(inner) => !self.test(inner)?,
            Test::AllOf(tests) => {
                for t in tests {
                    if !self.test(t)? {
                        return Ok(false);
                    }
                }
                true
            }
            Test::AnyOf(tests) => {
                for t in tests {
                    if self.test(t)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Exists(names) => self.list(names).iter().all(|n| self.mail.exists(n)),
            Test::Size { over, limit } => {
                let size = u64::try_from(self.mail.size()).unwrap_or(u64::MAX);
                if *over { size > *limit } else { size < *limit }
            }
            Test::Header {
                matcher,
                index,
                names,
                keys,
            } => {
                let mut values = Vec::new();
                for n in self.list(names) {
                    values.extend(pick(self.mail.values(&n), *index));
                }
                self.matches(matcher, &values, keys)?
            }
            Test::Address {
                matcher,
                part,
                index,
                names,
                keys,
            } => {
                let mut values = Vec::new();
                for n in self.list(names) {
                    for v in pick(self.mail.raw_values(&n), *index) {
                        values.extend(addresses(&v).iter().filter_map(|a| address_part(a, *part)));
                    }
                }
                self.matches(matcher, &values, keys)?
            }
            Test::Envelope {
                matcher,
                part,
                names,
                keys,
            } => {
                let mut values = Vec::new();
                for n in self.list(names) {
                    let addr = match n.to_ascii_lowercase().as_str() {
                        "from" => Some(self.msg.envelope_from),
                        "to" => Some(self.msg.envelope_to),
                        "auth" => self.msg.auth,
                        _ => None,
                    };
                    if let Some(a) = addr {
                        let a = a.trim().trim_start_matches('<').trim_end_matches('>');
                        // The null sender is "" for every part (RFC 5228 §5.4).
                        if a.is_empty() {
                            values.push(String::new());
                        } else {
                            values.extend(address_part(a, *part));
                        }
                    }
                }
                self.matches(matcher, &values, keys)?
            }
            Test::Body {
                matcher,
                transform,
                keys,
            } => {
                let transform = match transform {
                    super::ir::BodyTransform::Content(types) => {
                        super::ir::BodyTransform::Content(self.list(types))
                    }
                    other => other.clone(),
                };
                let values = self.mail.body(&transform);
                self.matches(matcher, &values, keys)?
            }
            Test::HasFlag {
                matcher,
                variables,
                keys,
            } => {
                let values = if variables.is_empty() {
                    self.flags.clone()
                } else {
                    let texts: Vec<String> = variables
                        .iter()
                        .map(|v| self.vars.get(&self.s(v)).unwrap_or_default().to_string())
                        .collect();
                    flags::parse(&texts)
                };
                let keys: Vec<String> = flags::parse(&self.list(keys));
                self.matches(matcher, &values, &keys)?
            }
            Test::String {
                matcher,
                sources,
                keys,
            } => {
                let mut values = self.list(sources);
                // RFC 5229 §5: empty strings do not count.
                if matches!(matcher.kind, super::ir::MatchType::Count(_)) {
                    values.retain(|v| !v.is_empty());
                }
                self.matches(matcher, &values, keys)?
            }
            Test::Date {
                matcher,
                zone,
                index,
                header,
                part,
                keys,
            } => {
                let header = self.s(header);
                let part = self.s(part).to_ascii_lowercase();
                let mut values = Vec::new();
                let fields = self.mail.values(&header);
                let chosen = match index {
                    Some(_) => pick(fields, *index),
                    None => fields.into_iter().take(1).collect(),
                };
                for v in chosen {
                    let Some(dt) = date::parse_header_date(&v) else {
                        continue;
                    };
                    let dt = match zone {
                        DateZone::Original => dt,
                        DateZone::Local => date::to_offset(dt, self.ctx.now.offset()),
                        DateZone::Zone(z) => match date::parse_zone(&self.s(z)) {
                            Some(off) => date::to_offset(dt, off),
                            None => dt,
                        },
                    };
                    values.extend(date::part(dt, &part));
                }
                self.matches(matcher, &values, keys)?
            }
            Test::CurrentDate {
                matcher,
                zone,
                part,
                keys,
            } => {
                let part = self.s(part).to_ascii_lowercase();
                let now = match zone.as_deref().map(|z| date::parse_zone(&self.s(z))) {
                    Some(Some(off)) => date::to_offset(self.ctx.now, off),
                    _ => self.ctx.now,
                };
                let values: Vec<String> = date::part(now, &part).into_iter().collect();
                self.matches(matcher, &values, keys)?
            }
            Test::MailboxExists(names) => self
                .list(names)
                .iter()
                .all(|n| (self.ctx.mailbox_exists)(n)),
            Test::Spam {
                matcher,
                percent,
                value,
            } => {
                let v = match (self.msg.spam_percent, percent) {
                    (None, _) => 0,
                    (Some(p), true) => p.min(100),
                    // RFC 5235 §3.1: 1 (not spam) to 10 (spam). The RFC leaves the scale to us:
                    // Pigeonhole's, 1 + floor(9p/100 + 0.001), so scripts moved from Dovecot
                    // behave the same.
                    (Some(p), false) => {
                        1 + u8::try_from((u32::from(p.min(100)) * 9000 + 100) / 100_000)
                            .unwrap_or(9)
                    }
                };
                let values = vec![v.to_string()];
                self.matches(matcher, &values, std::slice::from_ref(value))?
            }
        })
    }
}

/// `:index n` (from the end with `:last`) of `fields`, or all of them.
fn pick(fields: Vec<String>, index: Option<Index>) -> Vec<String> {
    let Some(Index { n, last }) = index else {
        return fields;
    };
    let Ok(n) = usize::try_from(n) else {
        return Vec::new();
    };
    let i = if last {
        fields.len().checked_sub(n)
    } else {
        n.checked_sub(1)
    };
    i.and_then(|i| fields.into_iter().nth(i))
        .into_iter()
        .collect()
}

/// The part of `addr` the test compares (RFC 5228 §2.7.4; RFC 5233 with "+" as separator).
/// None: the part does not exist (`:detail` of an address without "+").
fn address_part(addr: &str, part: AddressPart) -> Option<String> {
    let (local, domain) = match addr.rsplit_once('@') {
        Some((l, d)) => (l, d),
        None => (addr, ""),
    };
    match part {
        AddressPart::All => Some(addr.to_string()),
        AddressPart::LocalPart => Some(local.to_string()),
        AddressPart::Domain => Some(domain.to_string()),
        AddressPart::User => Some(local.split_once('+').map_or(local, |(u, _)| u).to_string()),
        AddressPart::Detail => local.split_once('+').map(|(_, d)| d.to_string()),
    }
}
