//! The guard both shells run on an accepted request before they answer it:
//! a bot verdict ([`crate::bot::judge`], from the request head) labels its
//! events, its rate limits are
//! charged ([`crate::rate_limit`]), and the result settles it — a 429 with
//! `Retry-After`, or accepted with its label written into every envelope.
//!
//! A shell calls [`limit`]; for [`Limit::Ask`] it makes each call to its
//! counters (the edge: the Rate Limiting binding; `ingest-api`: its
//! instance's [`Windows`](crate::rate_limit::Windows)), remembers a spent one
//! ([`Memory::spend`]), and hands the first spent scope to [`settle`].
//! [`refuse_early`] answers a request whose key or address the isolate
//! already knows spent before its body is read.

use crate::api::{Accepted, ApiConfig, ApiError, Reply};
use crate::bot::{self, Finding};
use crate::clock::RandomSource;
use crate::label::{self, Lane};
use crate::rate_limit::{self, Memory, Over, Scope, Usage};

/// What the rate limits say of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// No limit applies, or none is reached.
    Within,
    /// Over a limit of this scope: the isolate knows its counter spent.
    Over(Scope),
    /// Make these calls, one per entry, and the first refused one's scope is over.
    Ask(Vec<(String, Scope)>),
}

/// Plans a request's rate-limit charges (`address`: the client's address).
pub fn limit(
    accepted: &Accepted,
    config: &ApiConfig,
    address: Option<&str>,
    memory: &mut Memory,
    now_ms: u64,
    random: &dyn RandomSource,
) -> Limit {
    let key_id = key_of(accepted);
    let Some(limits) = config.rate_limits.of(key_id) else {
        return Limit::Within;
    };
    let usage = Usage::of(&accepted.lines, limits.user.is_some());
    let charges = rate_limit::plan(limits, key_id, address, &usage, memory, random);
    if let Some(scope) = memory.spent(&charges, now_ms) {
        return Limit::Over(scope);
    }
    let calls: Vec<(String, Scope)> = charges
        .into_iter()
        .flat_map(|c| std::iter::repeat_n((c.counter, c.scope), c.calls as usize))
        .collect();
    if calls.is_empty() {
        Limit::Within
    } else {
        Limit::Ask(calls)
    }
}

/// Makes [`Limit::Ask`]'s calls against counters kept in memory (`ingest-api`'s
/// instance, and tests standing in for the binding): the scope of the first
/// refused, remembered spent in `memory`; `None` when all passed.
pub fn ask_local(
    calls: &[(String, Scope)],
    windows: &mut rate_limit::Windows,
    memory: &mut Memory,
    now_ms: u64,
) -> Option<Scope> {
    calls.iter().find_map(|(counter, scope)| {
        (!windows.limit(counter, now_ms)).then(|| {
            memory.spend(counter, now_ms);
            *scope
        })
    })
}

/// The answer to a request whose key or address this isolate knows spent,
/// for a key whose owner says refuse: given before its body is read.
pub fn refuse_early(
    config: &ApiConfig,
    key_id: Option<&str>,
    address: Option<&str>,
    cors: &[(&'static str, String)],
    memory: &Memory,
    now_ms: u64,
) -> Option<Reply> {
    let limits = config.rate_limits.of(key_id)?;
    if limits.over != Over::Refuse {
        return None;
    }
    let scope = if limits.key.is_some() && memory.is_spent(&rate_limit::key_counter(key_id), now_ms) {
        Scope::Key
    } else if limits.address.is_some()
        && address.is_some_and(|a| memory.is_spent(&rate_limit::address_counter(key_id, a), now_ms))
    {
        Scope::Address
    } else {
        return None;
    };
    Some(too_many(config, key_id, scope, cors, now_ms))
}

/// Settles an accepted request: `over` is the scope of the limit it went
/// past, if any. Refused (429) when its key's owner says refuse; otherwise
/// its lines carry the label of the limit and of the bot verdict, if any,
/// and `accepted.label` says which for the counts.
pub fn settle(
    mut accepted: Accepted,
    config: &ApiConfig,
    finding: Option<&Finding>,
    over: Option<Scope>,
    now_ms: u64,
) -> Result<Accepted, Reply> {
    let key_id = key_of(&accepted).map(str::to_owned);
    let key_id = key_id.as_deref();
    if let (Some(scope), Some(limits)) = (over, config.rate_limits.of(key_id))
        && limits.over == Over::Refuse
    {
        return Err(too_many(config, key_id, scope, &accepted.reply.headers, now_ms));
    }
    let mut label = match finding {
        Some(finding) => bot::label(finding, &config.bot_routes, key_id),
        None => label::Label::default(),
    };
    if let Some(scope) = over {
        label.limited = Some(scope.as_str().to_owned());
        label.lane = Some(Lane::Limited);
    }
    label::apply(&mut accepted.lines, &label);
    accepted.label_answer(&label);
    accepted.label = label;
    Ok(accepted)
}

fn key_of(accepted: &Accepted) -> Option<&str> {
    Some(accepted.cell.key.as_str()).filter(|k| !k.is_empty())
}

fn too_many(
    config: &ApiConfig,
    key_id: Option<&str>,
    scope: Scope,
    cors: &[(&'static str, String)],
    now_ms: u64,
) -> Reply {
    let limits = config.rate_limits.of(key_id).copied().unwrap_or_default();
    ApiError::RateLimited {
        message: rate_limit::message(&limits, key_id, scope),
        retry_after_s: rate_limit::retry_after_s(now_ms),
    }
    .reply(cors.to_vec())
}

#[cfg(test)]
mod tests;
