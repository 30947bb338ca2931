//! Rate limits per write key, per client address and per anonymous / user
//! id, in events and in bytes per window, configured per key
//! (`RATE_LIMITS`), and what happens past one: a 429 with `Retry-After`, or
//! the events accepted and labelled `limited` into their own table.
//!
//! ```text
//! RATE_LIMITS = {"web":{"address":{"events":200,"bytes":262144},"user":{"events":100},"key":{"events":50000},"over":"refuse"},
//!                "*":{"address":{"events":2000},"over":"label"}}
//! ```
//!
//! Every figure is per [`PERIOD_S`] seconds. `*` holds for keys without an
//! entry of their own (and for a deployment without keys).
//!
//! **How the edge counts.** Cloudflare's Rate Limiting binding counts calls
//! to `limit({key})` per counter and location, up to the binding's fixed
//! `simple.limit` a period; its documented call takes no weight. So a
//! scope's budget is split into [`UNITS`] calls: a request of `n` events and
//! `b` bytes uses `x = UNITS × max(n / events, b / bytes)` of them, paid as
//! whole calls, the fraction carried to the counter's next request in the
//! isolate ([`Memory`]; a counter new to an isolate starts from a random
//! fraction). So the calls made are the share of the budget used, a flood
//! of small requests is counted as exactly as a few large ones, and a
//! browser's one-event request against a budget of 200 events costs half a
//! call on average. A counter found spent is remembered by the isolate until
//! its window ends: from then on the isolate answers without a call. Counts
//! are per location and approximate, as Cloudflare says of the binding:
//! it is a guard, not a bill (an exact budget: docs/src/abuse.md, "Rate limits").
//!
//! `ingest-api` counts the same plan against [`Windows`], one per Lambda
//! instance (exact for that instance), behind the API stage's own throttle.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::clock::RandomSource;
use crate::envelope::Envelope;
use crate::settings::{SettingError, Settings};

/// The rate-limiting binding's period, in seconds (`simple.period` in
/// `wrangler.toml`: Cloudflare takes 10 or 60,
/// <https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/>).
/// Every figure in `RATE_LIMITS` is per this window.
pub const PERIOD_S: u64 = 10;

/// Calls a counter takes per period before the binding answers
/// `success: false` (`simple.limit` in `wrangler.toml`): a budget's units.
pub const UNITS: u32 = 100;

/// Distinct anonymous / user ids one request is charged for; the events of
/// the rest count against the address and the key only.
pub const MAX_USERS_CHARGED: usize = 8;

/// Counters an isolate remembers at most (spent ones, and fractions owed);
/// past it the spent ones whose period ended are forgotten first, then all.
pub const DENIALS_KEPT: usize = 4096;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Everything a write key sends.
    Key,
    /// What one client address sends with a key (an IPv6 address counts as its /64).
    Address,
    /// What one anonymous or user id sends with a key.
    User,
}

impl Scope {
    /// Its name in settings, labels and counts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::Address => "address",
            Scope::User => "user",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Scope::Key => "with this write key",
            Scope::Address => "from one address",
            Scope::User => "for one anonymous or user id",
        }
    }
}

/// A budget per window: events, bytes, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    /// Events per window.
    pub events: Option<u64>,
    /// Envelope bytes per window.
    pub bytes: Option<u64>,
}

/// What happens past a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Over {
    /// `429` with `Retry-After`: nothing is accepted.
    #[default]
    Refuse,
    /// Accepted, labelled `limited`, into the `limited` table.
    Label,
}

/// One key's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyLimits {
    /// Everything the key sends.
    pub key: Option<Budget>,
    /// Per client address.
    pub address: Option<Budget>,
    /// Per anonymous / user id.
    pub user: Option<Budget>,
    /// Past a limit: `refuse` (the default) or `label`.
    pub over: Over,
}

impl KeyLimits {
    fn budget(&self, scope: Scope) -> Option<Budget> {
        match scope {
            Scope::Key => self.key,
            Scope::Address => self.address,
            Scope::User => self.user,
        }
    }

    /// A budget's figures, for messages: `200 events and 262144 bytes`.
    pub fn describe(&self, scope: Scope) -> String {
        let b = self.budget(scope).unwrap_or_default();
        let parts: Vec<String> = [
            b.events.map(|e| format!("{e} events")),
            b.bytes.map(|e| format!("{e} bytes")),
        ]
        .into_iter()
        .flatten()
        .collect();
        parts.join(" or ")
    }
}

/// `RATE_LIMITS`: limits per write key id, `*` for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits {
    by_key: BTreeMap<String, KeyLimits>,
    rest: Option<KeyLimits>,
}

impl RateLimits {
    /// Reads `RATE_LIMITS`; absent: no limits.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        match s.get("RATE_LIMITS") {
            Some(text) => Self::parse(&text).map_err(|e| SettingError::new("RATE_LIMITS", e)),
            None => Ok(Self::default()),
        }
    }

    /// Parses the JSON form; a budget of 0, or a key entry with no budget, is refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw = crate::settings::objects_by_key(text, &["key", "address", "user", "over"])?;
        let mut out = Self::default();
        for (key, members) in raw {
            let budget = |scope: &str| -> Result<Option<Budget>, String> {
                let Some(v) = members.get(scope) else { return Ok(None) };
                let serde_json::Value::Object(b) = v else {
                    return Err(format!("{key}.{scope}: is not an object of events and bytes"));
                };
                if let Some(unknown) = b.keys().find(|m| !matches!(m.as_str(), "events" | "bytes")) {
                    return Err(format!(
                        "{key}.{scope}: unknown member {unknown:?}, expected events or bytes"
                    ));
                }
                let figure = |name: &str| match b.get(name) {
                    None => Ok(None),
                    Some(n) => n
                        .as_u64()
                        .map(Some)
                        .ok_or(format!("{key}.{scope}.{name}: is not a whole number")),
                };
                Ok(Some(Budget {
                    events: figure("events")?,
                    bytes: figure("bytes")?,
                }))
            };
            let over = match members.get("over").map(|v| v.as_str()) {
                None | Some(Some("refuse")) => Over::Refuse,
                Some(Some("label")) => Over::Label,
                Some(_) => return Err(format!("{key}.over: is not \"refuse\" or \"label\"")),
            };
            let limits = KeyLimits {
                key: budget("key")?,
                address: budget("address")?,
                user: budget("user")?,
                over,
            };
            let budgets = [limits.key, limits.address, limits.user];
            if budgets.iter().all(Option::is_none) {
                return Err(format!("{key}: names no budget (key, address or user)"));
            }
            for b in budgets.into_iter().flatten() {
                if b.events == Some(0) || b.bytes == Some(0) || (b.events.is_none() && b.bytes.is_none()) {
                    return Err(format!("{key}: a budget needs events or bytes above 0"));
                }
            }
            if key == "*" {
                out.rest = Some(limits);
            } else {
                out.by_key.insert(key, limits);
            }
        }
        Ok(out)
    }

    /// Whether any limit is configured.
    pub fn is_enabled(&self) -> bool {
        self.rest.is_some() || !self.by_key.is_empty()
    }

    /// The key ids named (for checking against `WRITE_KEYS`).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.by_key.keys().map(String::as_str)
    }

    /// The limits of `key_id`, if any.
    pub fn of(&self, key_id: Option<&str>) -> Option<&KeyLimits> {
        key_id.and_then(|k| self.by_key.get(k)).or(self.rest.as_ref())
    }
}

/// What one request uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Its events (envelope lines).
    pub events: u64,
    /// Their envelope bytes.
    pub bytes: u64,
    /// Per anonymous / user id (the first [`MAX_USERS_CHARGED`] seen): events, bytes.
    pub users: Vec<(String, u64, u64)>,
}

impl Usage {
    /// Reads a request's envelope lines; the ids only when a user budget needs them.
    pub fn of(lines: &[String], with_users: bool) -> Self {
        let mut usage = Self::default();
        for line in lines {
            usage.events += 1;
            usage.bytes += line.len() as u64;
            if !with_users {
                continue;
            }
            let Some(id) = user_of(line) else { continue };
            let full = usage.users.len() >= MAX_USERS_CHARGED;
            match usage.users.iter_mut().find(|(u, ..)| *u == id) {
                Some(entry) => {
                    entry.1 += 1;
                    entry.2 += line.len() as u64;
                }
                None if !full => usage.users.push((id, 1, line.len() as u64)),
                None => {}
            }
        }
        usage
    }
}

/// The anonymous or user id an envelope's event carries (schema v1's
/// `anonymous_id` / `user_id`, Segment's `anonymousId` / `userId`); the
/// anonymous id first, since it stays with one browser.
pub fn user_of(line: &str) -> Option<String> {
    // Raw members borrowed from the line, not a `serde_json::Value` of the
    // whole event: on the request path, only the four ids are read.
    #[derive(Deserialize)]
    struct Ids<'a> {
        #[serde(borrow)]
        anonymous_id: Option<&'a RawValue>,
        #[serde(rename = "anonymousId", borrow)]
        anonymous_id_segment: Option<&'a RawValue>,
        #[serde(borrow)]
        user_id: Option<&'a RawValue>,
        #[serde(rename = "userId", borrow)]
        user_id_segment: Option<&'a RawValue>,
    }
    let envelope = Envelope::parse(line).ok()?;
    let event = envelope.event?;
    let ids: Ids<'_> = serde_json::from_str(event.get()).ok()?;
    [
        ids.anonymous_id,
        ids.anonymous_id_segment,
        ids.user_id,
        ids.user_id_segment,
    ]
    .into_iter()
    .flatten()
    .find_map(|raw| {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text).ok().filter(|s| !s.is_empty()),
            Some(b'-' | b'0'..=b'9') => Some(text.to_owned()),
            _ => None,
        }
    })
}

/// One counter a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Its scope.
    pub scope: Scope,
    /// The counter's name, the binding's key: `k:<key>`, `a:<key>:<hash>`, `u:<key>:<hash>`.
    pub counter: String,
    /// How many calls to make.
    pub calls: u32,
}

/// The counters a request is charged to and how many calls each, by its
/// usage (the module docs say how); `address` is the client's address.
///
/// Each counter of 0 calls is still checked against the isolate's
/// [`Memory`]. A request larger than a whole budget costs the whole budget:
/// it passes into a window no one has used yet (so a server's large batch
/// still goes, at most once a window) and is refused in any other, never
/// refused for good by a limit it could not meet. `memory` carries each
/// counter's unpaid fraction of a call from one request to the next, so
/// within an isolate the calls made are the budget used to within one call;
/// a counter new to the isolate starts from a random fraction, so across
/// isolates they are right on average.
pub fn plan(
    limits: &KeyLimits,
    key_id: Option<&str>,
    address: Option<&str>,
    usage: &Usage,
    memory: &mut Memory,
    random: &dyn RandomSource,
) -> Vec<Charge> {
    let key = key_id.unwrap_or("-");
    let mut charges = Vec::new();
    let mut charge = |scope: Scope, counter: String, events: u64, bytes: u64| {
        let Some(budget) = limits.budget(scope) else {
            return;
        };
        let share = |used: u64, limit: Option<u64>| limit.map_or(0.0, |l| used as f64 / l as f64);
        let fraction = share(events, budget.events).max(share(bytes, budget.bytes)).min(1.0);
        let owed = memory.carry(&counter, random) + fraction * f64::from(UNITS);
        let calls = owed.floor().min(f64::from(UNITS));
        memory
            .carried
            .insert(counter.clone(), (owed - calls).clamp(0.0, 0.999_999));
        // Kept with no call too: a counter the isolate knows spent holds it back.
        charges.push(Charge {
            scope,
            counter,
            calls: calls as u32,
        });
    };
    charge(Scope::Key, key_counter(key_id), usage.events, usage.bytes);
    if let Some(address) = address {
        let counter = address_counter(key_id, address);
        charge(Scope::Address, counter, usage.events, usage.bytes);
    }
    for (user, events, bytes) in &usage.users {
        charge(Scope::User, format!("u:{key}:{}", digest(user)), *events, *bytes);
    }
    charges
}

/// The key's counter.
pub fn key_counter(key_id: Option<&str>) -> String {
    format!("k:{}", key_id.unwrap_or("-"))
}

/// An address's counter for a key.
pub fn address_counter(key_id: Option<&str>, address: &str) -> String {
    format!("a:{}:{}", key_id.unwrap_or("-"), digest(&address_group(address)))
}

/// The address a limit counts: an IPv6 address by its /64 (one subscriber's
/// network hands out the whole of it), anything else as it is.
pub fn address_group(address: &str) -> String {
    match address.parse::<std::net::Ipv6Addr>() {
        Ok(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| address.to_owned(), |v4| v4.to_string()),
        Err(_) => address.to_owned(),
    }
}

/// A counter's name carries no address or id, only 16 hex digits of its hash.
fn digest(s: &str) -> String {
    Sha256::digest(s.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// When the window holding `now_ms` ends (windows are aligned to the epoch,
/// as the binding's are).
pub fn window_end_ms(now_ms: u64) -> u64 {
    (now_ms / (PERIOD_S * 1000) + 1) * PERIOD_S * 1000
}

/// Whole seconds until the window ends, at least 1: the `Retry-After`.
pub fn retry_after_s(now_ms: u64) -> u64 {
    (window_end_ms(now_ms) - now_ms).div_ceil(1000).max(1)
}

/// The message of a 429 (and the reason a limited event's label gives).
pub fn message(limits: &KeyLimits, key_id: Option<&str>, scope: Scope) -> String {
    format!(
        "rate limit: more than {} per {PERIOD_S} s {} (RATE_LIMITS.{}.{})",
        limits.describe(scope),
        scope.what(),
        key_id.unwrap_or("*"),
        scope.as_str()
    )
}

/// What an isolate remembers of its counters: the ones it found spent,
/// until their window ends, and each one's unpaid fraction of a call.
#[derive(Debug, Default)]
pub struct Memory {
    until: HashMap<String, u64>,
    carried: HashMap<String, f64>,
}

impl Memory {
    /// The first of `charges` still spent at `now_ms`.
    pub fn spent(&self, charges: &[Charge], now_ms: u64) -> Option<Scope> {
        charges
            .iter()
            .find(|c| self.until.get(&c.counter).is_some_and(|&end| now_ms < end))
            .map(|c| c.scope)
    }

    /// Whether the counter named `counter` is spent at `now_ms`.
    pub fn is_spent(&self, counter: &str, now_ms: u64) -> bool {
        self.until.get(counter).is_some_and(|&end| now_ms < end)
    }

    /// Remembers `counter` spent until its window ends.
    pub fn spend(&mut self, counter: &str, now_ms: u64) {
        if self.until.len() >= DENIALS_KEPT {
            self.until.retain(|_, end| now_ms < *end);
            if self.until.len() >= DENIALS_KEPT {
                self.until.clear();
            }
        }
        self.until.insert(counter.to_owned(), window_end_ms(now_ms));
    }

    /// The fraction of a call `counter` owes; a random one for a counter new here.
    fn carry(&mut self, counter: &str, random: &dyn RandomSource) -> f64 {
        if let Some(&c) = self.carried.get(counter) {
            return c;
        }
        if self.carried.len() >= DENIALS_KEPT {
            // Forgetting starts them afresh from a random fraction: still right on average.
            self.carried.clear();
        }
        (random.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Counters kept in memory with the binding's semantics (a counter takes
/// [`UNITS`] calls a window, windows aligned to the epoch): `ingest-api`'s
/// per-instance limits, and the stand-in a test drives the plan through.
#[derive(Debug, Default)]
pub struct Windows {
    counts: HashMap<String, (u64, u32)>,
}

impl Windows {
    /// One `limit({key})` call at `now_ms`: `true` while the counter has units left.
    pub fn limit(&mut self, counter: &str, now_ms: u64) -> bool {
        let window = now_ms / (PERIOD_S * 1000);
        if self.counts.len() >= DENIALS_KEPT * 4 {
            self.counts.retain(|_, (w, _)| *w == window);
        }
        let entry = self.counts.entry(counter.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= UNITS {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests;
