//! The typed form of a validated script: what the interpreter runs and what the store keeps
//! as JSON (`Script::to_stored`). Strings are kept as written (encoded characters already
//! decoded); `${…}` variable references are expanded at run time when the script requires
//! "variables".

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Relation {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum MatchType {
    Is,
    Contains,
    Matches,
    Value(Relation),
    Count(Relation),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Matcher {
    pub comparator: Comparator,
    pub kind: MatchType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AddressPart {
    All,
    LocalPart,
    Domain,
    User,
    Detail,
}

/// `:index n` (1-based) with `:last` counting from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    pub n: u64,
    pub last: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum BodyTransform {
    Raw,
    Text,
    Content(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DateZone {
    /// Converted to the zone of `Context::now`.
    Local,
    Zone(String),
    Original,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Exists(Vec<String>),
    Size {
        over: bool,
        limit: u64,
    },
    Header {
        matcher: Matcher,
        index: Option<Index>,
        names: Vec<String>,
        keys: Vec<String>,
    },
    Address {
        matcher: Matcher,
        part: AddressPart,
        index: Option<Index>,
        names: Vec<String>,
        keys: Vec<String>,
    },
    Envelope {
        matcher: Matcher,
        part: AddressPart,
        names: Vec<String>,
        keys: Vec<String>,
    },
    Body {
        matcher: Matcher,
        transform: BodyTransform,
        keys: Vec<String>,
    },
    HasFlag {
        matcher: Matcher,
        variables: Vec<String>,
        keys: Vec<String>,
    },
    String {
        matcher: Matcher,
        sources: Vec<String>,
        keys: Vec<String>,
    },
    Date {
        matcher: Matcher,
        zone: DateZone,
        index: Option<Index>,
        header: String,
        part: String,
        keys: Vec<String>,
    },
    CurrentDate {
        matcher: Matcher,
        zone: Option<String>,
        part: String,
        keys: Vec<String>,
    },
    MailboxExists(Vec<String>),
    Spam {
        matcher: Matcher,
        percent: bool,
        value: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum FlagOp {
    Set,
    Add,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Modifier {
    Lower,
    Upper,
    LowerFirst,
    UpperFirst,
    QuoteWildcard,
    Length,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VacationCmd {
    /// Seconds as written (`:days` already multiplied); clamped at run time.
    pub period: Option<u64>,
    pub seconds: bool,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    pub handle: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Command {
    If {
        branches: Vec<(Test, Vec<Command>)>,
        otherwise: Option<Vec<Command>>,
    },
    Stop,
    Keep {
        flags: Option<Vec<String>>,
    },
    Discard,
    FileInto {
        mailbox: String,
        copy: bool,
        create: bool,
        flags: Option<Vec<String>>,
    },
    Redirect {
        address: String,
        copy: bool,
    },
    Reject {
        reason: String,
        ereject: bool,
    },
    Vacation(Box<VacationCmd>),
    Flags {
        op: FlagOp,
        variable: Option<String>,
        flags: Vec<String>,
    },
    Set {
        modifiers: Vec<Modifier>,
        name: String,
        value: String,
    },
}
