//! Reading the script [`super::to_sieve`] writes back into rules, with the Sieve module's own
//! lexer and parser; the caller compares the result written again with the source.

use super::super::parser::{Arg, ArgValue, CommandNode, TestNode};
use super::{Field, Filter, FilterAction, ForwardRule, Op, Rules, VacationRule, size_text};

/// The rules a script written by [`super::to_sieve`] holds; `None` for any other script.
pub fn from_sieve(source: &str) -> Option<Rules> {
    if !source.starts_with(super::HEADER)
        || source.len() > super::super::Limits::default().max_script_bytes
    {
        return None;
    }
    let tokens = super::super::lexer::tokenize(source).ok()?;
    let nodes = super::super::parser::parse(&tokens, super::super::end_position(source), 4).ok()?;
    let mut rules = Rules::default();
    for node in &nodes {
        match node.name.as_str() {
            // Both follow from the rest; the final comparison checks them.
            "require" | "stop" => {}
            "redirect" if rules.forward.is_none() => {
                let (keep, address) = copy_and_string(&node.args)?;
                rules.forward = Some(ForwardRule { address, keep });
            }
            "vacation" if rules.vacation.is_none() => {
                rules.vacation = Some(vacation(node, true, &[])?)
            }
            "if" => {
                let (enabled, tests) = conditions(node)?;
                let block = node.block.as_deref()?;
                match block.first()?.name.as_str() {
                    "vacation" if rules.vacation.is_none() => {
                        rules.vacation = Some(vacation(block.first()?, enabled, &tests)?);
                    }
                    _ => rules.filters.push(filter(enabled, &tests, block)?),
                }
            }
            _ => return None,
        }
    }
    (super::to_sieve(&rules) == source).then_some(rules)
}

/// Whether an `if` is enabled (no leading `false`), and its other tests.
fn conditions(node: &CommandNode) -> Option<(bool, Vec<TestNode>)> {
    let [test] = node.tests.as_slice() else {
        return None;
    };
    let tests = if test.name == "allof" {
        test.tests.clone()
    } else {
        vec![test.clone()]
    };
    match tests.split_first() {
        Some((first, rest)) if first.name == "false" => Some((false, rest.to_vec())),
        _ => Some((true, tests)),
    }
}

fn vacation(node: &CommandNode, enabled: bool, tests: &[TestNode]) -> Option<VacationRule> {
    let mut v = VacationRule {
        enabled,
        first_day: None,
        last_day: None,
        subject: String::new(),
        message: String::new(),
        days: 0,
        addresses: Vec::new(),
    };
    for t in tests {
        let strings = all_strings(&t.args);
        match strings.as_slice() {
            [rel, part, day] if t.name == "currentdate" && part == "date" => match rel.as_str() {
                "ge" => v.first_day = Some(day.clone()),
                "le" => v.last_day = Some(day.clone()),
                _ => return None,
            },
            _ => return None,
        }
    }
    let mut args = node.args.iter();
    while let Some(arg) = args.next() {
        match &arg.value {
            ArgValue::Tag(tag) => {
                let next = &args.next()?.value;
                match (tag.as_str(), next) {
                    ("days", ArgValue::Number(n)) => v.days = u32::try_from(*n).ok()?,
                    ("subject", ArgValue::Strings { values, .. }) => {
                        v.subject = values.first()?.clone()
                    }
                    ("addresses", ArgValue::Strings { values, .. }) => v.addresses = values.clone(),
                    _ => return None,
                }
            }
            ArgValue::Strings { values, .. } => v.message = values.first()?.clone(),
            ArgValue::Number(_) => return None,
        }
    }
    Some(v)
}

fn filter(enabled: bool, tests: &[TestNode], block: &[CommandNode]) -> Option<Filter> {
    let [test] = tests else { return None };
    let (field, op, value) = condition(test)?;
    let (action, rest) = block.split_first()?;
    let stop = match rest {
        [] => false,
        [s] if s.name == "stop" => true,
        _ => return None,
    };
    let action = match action.name.as_str() {
        "fileinto" => match copy_and_string(&action.args)? {
            (true, folder) => FilterAction::CopyTo(folder),
            (false, folder) => FilterAction::MoveTo(folder),
        },
        "addflag" => match all_strings(&action.args).as_slice() {
            [f] if f == "\\Seen" => FilterAction::MarkRead,
            [f] if f == "\\Flagged" => FilterAction::Flag,
            _ => return None,
        },
        "redirect" => {
            let (keep, address) = copy_and_string(&action.args)?;
            FilterAction::Forward { address, keep }
        }
        "reject" => FilterAction::Reject(copy_and_string(&action.args)?.1),
        "discard" => FilterAction::Delete,
        _ => return None,
    };
    Some(Filter {
        enabled,
        field,
        op,
        value,
        action,
        stop,
    })
}

fn condition(test: &TestNode) -> Option<(Field, Op, String)> {
    let tag = |name: &str| {
        test.args
            .iter()
            .any(|a| matches!(&a.value, ArgValue::Tag(t) if t == name))
    };
    let strings = all_strings(&test.args);
    match test.name.as_str() {
        "header" => {
            let op = if tag("contains") {
                Op::Contains
            } else if tag("matches") {
                Op::Matches
            } else {
                Op::Is
            };
            let names = test.args.iter().find_map(|a| match &a.value {
                ArgValue::Strings { values, .. } => Some(values.as_slice()),
                _ => None,
            })?;
            let field = match names {
                [n] if n == "from" => Field::From,
                [n] if n == "subject" => Field::Subject,
                [t, c] if t == "to" && c == "cc" => Field::ToOrCc,
                [n] => Field::Header(n.clone()),
                _ => return None,
            };
            Some((field, op, strings.last()?.clone()))
        }
        "size" => {
            let op = if tag("under") {
                Op::LessThan
            } else {
                Op::GreaterThan
            };
            let n = test.args.iter().find_map(|a| match a.value {
                ArgValue::Number(n) => Some(n),
                _ => None,
            })?;
            Some((Field::Size, op, size_text(n)))
        }
        "spamtest" => {
            let op = match strings.first()?.as_str() {
                "gt" => Op::GreaterThan,
                "lt" => Op::LessThan,
                "eq" => Op::Is,
                _ => return None,
            };
            Some((Field::SpamScore, op, strings.last()?.clone()))
        }
        _ => None,
    }
}

/// The strings of the arguments, in order (a list's items one after another).
fn all_strings(args: &[Arg]) -> Vec<String> {
    args.iter()
        .filter_map(|a| match &a.value {
            ArgValue::Strings { values, .. } => Some(values.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Whether `:copy` is among the arguments, and the last string.
fn copy_and_string(args: &[Arg]) -> Option<(bool, String)> {
    let copy = args
        .iter()
        .any(|a| matches!(&a.value, ArgValue::Tag(t) if t == "copy"));
    Some((copy, all_strings(args).pop()?))
}
