//! Bot signals: a verdict on each request from what Cloudflare says of it
//! (`request.cf.botManagement`, where the plan has Bot Management;
//! `cf.clientTrustScore` where present) and a small user-agent rule set,
//! and the lane each key's owner sends labelled events down (`BOT_ROUTES`).
//!
//! | verdict | from |
//! |---|---|
//! | `verified` | `cf.botManagement.verifiedBot` or `cf.verifiedBotCategory`: search engines, monitors — labelled, never treated as an attack |
//! | `bot` | a bot score of [`LIKELY_AUTOMATED_SCORE`] or less (Cloudflare: 1 is automated, 2–29 likely automated), or a user agent that names a crawler or a headless browser |
//! | `tool` | a user agent of an HTTP library or command-line client (`curl`, `python-requests`, …) |
//!
//! The user-agent rules ([`USER_AGENT_RULES`]) match a lower-cased
//! substring. A user agent is the client's say and costs nothing to forge:
//! the rules catch scripts that do not bother, and Cloudflare's score is the
//! signal to trust where the plan gives it. Server-side SDKs send their own
//! user agents (`analytics-node-next/…`, `analytics-python/…`) and match no
//! rule. The verdict never refuses a request: it labels the events, and the
//! owner says per key and verdict where they go ([`BotRoutes`]).
//!
//! `BOT_ROUTES` (JSON, per write key id or `*` for every other key):
//! `{"web":{"bot":"bots","tool":"quarantine","verified":"keep"}}`. `keep`
//! (the default): with every other event, labelled; `bots`: their own
//! table; `quarantine`: kept as `rejected` lines under the error prefix.

use std::collections::BTreeMap;

use crate::label::{Label, Lane};
use crate::settings::{SettingError, Settings};

/// Cloudflare's bot score at or under which a request is "likely automated"
/// (<https://developers.cloudflare.com/bots/concepts/bot-score/>: 1 is
/// automated, 2–29 likely automated, 30–99 likely human).
pub const LIKELY_AUTOMATED_SCORE: u8 = 29;

/// What the edge knows of a request's client.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals<'a> {
    /// `cf.botManagement.score` (1–99), with Bot Management.
    pub score: Option<u8>,
    /// `cf.botManagement.verifiedBot`.
    pub verified_bot: bool,
    /// `cf.verifiedBotCategory` (`Search Engine Crawler`, `Monitoring & Analytics`, …).
    pub verified_category: Option<&'a str>,
    /// `cf.clientTrustScore` (1–99, the older field some plans still send).
    pub trust_score: Option<u8>,
    /// `User-Agent`.
    pub user_agent: Option<&'a str>,
}

/// A verdict on a request's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// A bot Cloudflare verified: a search engine, a monitor.
    Verified,
    /// Automated, by Cloudflare's score or a crawler's or headless browser's user agent.
    Bot,
    /// An HTTP library or command-line client, by its user agent.
    Tool,
}

impl Verdict {
    /// Every verdict.
    pub const ALL: [Verdict; 3] = [Verdict::Verified, Verdict::Bot, Verdict::Tool];

    /// Its name in labels, settings and counts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Bot => "bot",
            Verdict::Tool => "tool",
        }
    }
}

/// A verdict and the signal that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The verdict.
    pub verdict: Verdict,
    /// The signal: `cf.verified_bot`, `cf.bot_score`, `cf.client_trust_score`, `user_agent:<rule>`.
    pub signal: String,
    /// Cloudflare's score, when it sent one.
    pub score: Option<u8>,
}

/// The user-agent rules, in order: the first whose pattern the lower-cased
/// user agent contains gives the verdict; its name is the rule.
pub const USER_AGENT_RULES: &[(&str, Verdict, &str)] = &[
    ("headlesschrome", Verdict::Bot, "headless_chrome"),
    ("phantomjs", Verdict::Bot, "phantomjs"),
    ("bot/", Verdict::Bot, "crawler"),
    ("bot;", Verdict::Bot, "crawler"),
    ("bot)", Verdict::Bot, "crawler"),
    ("crawler", Verdict::Bot, "crawler"),
    ("spider", Verdict::Bot, "crawler"),
    ("curl/", Verdict::Tool, "curl"),
    ("wget/", Verdict::Tool, "wget"),
    ("python-requests/", Verdict::Tool, "python_requests"),
    ("python-urllib/", Verdict::Tool, "python_urllib"),
    ("aiohttp/", Verdict::Tool, "aiohttp"),
    ("go-http-client/", Verdict::Tool, "go_http_client"),
    ("libwww-perl/", Verdict::Tool, "libwww_perl"),
    ("scrapy/", Verdict::Tool, "scrapy"),
    ("httpie/", Verdict::Tool, "httpie"),
];

/// The verdict on a request, or `None` when no signal fired. Cloudflare's
/// verification wins over everything; then its score; then the user agent.
pub fn judge(signals: &Signals<'_>) -> Option<Finding> {
    let score = signals.score;
    if signals.verified_bot || signals.verified_category.is_some_and(|c| !c.is_empty()) {
        return Some(Finding {
            verdict: Verdict::Verified,
            signal: "cf.verified_bot".to_owned(),
            score,
        });
    }
    if let Some(s) = score.filter(|&s| (1..=LIKELY_AUTOMATED_SCORE).contains(&s)) {
        return Some(Finding {
            verdict: Verdict::Bot,
            signal: "cf.bot_score".to_owned(),
            score: Some(s),
        });
    }
    if score.is_none()
        && signals
            .trust_score
            .is_some_and(|s| (1..=LIKELY_AUTOMATED_SCORE).contains(&s))
    {
        return Some(Finding {
            verdict: Verdict::Bot,
            signal: "cf.client_trust_score".to_owned(),
            score: signals.trust_score,
        });
    }
    let ua = signals.user_agent?.to_ascii_lowercase();
    USER_AGENT_RULES
        .iter()
        .find(|(pattern, ..)| ua.contains(pattern))
        .map(|&(_, verdict, rule)| Finding {
            verdict,
            signal: format!("user_agent:{rule}"),
            score,
        })
}

/// Where a key's owner sends events with each verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Route {
    /// With every other event, labelled.
    #[default]
    Keep,
    /// Their own table (`bots/`).
    Bots,
    /// `rejected` lines under the error prefix.
    Quarantine,
}

impl Route {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "keep" => Ok(Route::Keep),
            "bots" => Ok(Route::Bots),
            "quarantine" => Ok(Route::Quarantine),
            other => Err(format!("route {other:?} is not keep, bots or quarantine")),
        }
    }

    /// The lane events take.
    pub fn lane(self) -> Option<Lane> {
        match self {
            Route::Keep => None,
            Route::Bots => Some(Lane::Bots),
            Route::Quarantine => Some(Lane::Quarantine),
        }
    }
}

/// One key's routes, a verdict's absent meaning `keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyRoutes {
    /// For `verified`.
    pub verified: Route,
    /// For `bot`.
    pub bot: Route,
    /// For `tool`.
    pub tool: Route,
}

impl KeyRoutes {
    /// The route for `verdict`.
    pub fn of(&self, verdict: Verdict) -> Route {
        match verdict {
            Verdict::Verified => self.verified,
            Verdict::Bot => self.bot,
            Verdict::Tool => self.tool,
        }
    }
}

/// `BOT_ROUTES`: routes per write key id, `*` for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotRoutes {
    by_key: BTreeMap<String, KeyRoutes>,
    rest: KeyRoutes,
}

impl BotRoutes {
    /// Reads `BOT_ROUTES`; absent: every verdict kept with its label.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        match s.get("BOT_ROUTES") {
            Some(text) => Self::parse(&text).map_err(|e| SettingError::new("BOT_ROUTES", e)),
            None => Ok(Self::default()),
        }
    }

    /// Parses the JSON form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw = crate::settings::objects_by_key(text, &["verified", "bot", "tool"])?;
        let mut out = Self::default();
        for (key, members) in raw {
            let route = |verdict: &str| match members.get(verdict) {
                None => Ok(Route::Keep),
                Some(v) => v
                    .as_str()
                    .ok_or_else(|| format!("{v} is not a string"))
                    .and_then(Route::parse)
                    .map_err(|e| format!("{key}.{verdict}: {e}")),
            };
            let routes = KeyRoutes {
                verified: route("verified")?,
                bot: route("bot")?,
                tool: route("tool")?,
            };
            if key == "*" {
                out.rest = routes;
            } else {
                out.by_key.insert(key, routes);
            }
        }
        Ok(out)
    }

    /// The key ids named (for checking against `WRITE_KEYS`).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.by_key.keys().map(String::as_str)
    }

    /// The routes of `key_id`.
    pub fn of(&self, key_id: Option<&str>) -> KeyRoutes {
        key_id.and_then(|k| self.by_key.get(k)).copied().unwrap_or(self.rest)
    }
}

/// The label a finding puts on a key's events.
pub fn label(finding: &Finding, routes: &BotRoutes, key_id: Option<&str>) -> Label {
    Label {
        lane: routes.of(key_id).of(finding.verdict).lane(),
        bot: Some(finding.verdict.as_str().to_owned()),
        signal: Some(finding.signal.clone()),
        score: finding.score,
        limited: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ua(s: &str) -> Option<Finding> {
        judge(&Signals {
            user_agent: Some(s),
            ..Signals::default()
        })
    }

    #[test]
    fn browsers_and_server_sdks_match_no_rule() {
        for agent in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "analytics-node-next/latest",
            "analytics-python/2.3.3",
            "Mozilla/5.0 (Linux; Android 12; CUBOT_X30) AppleWebKit/537.36",
        ] {
            assert_eq!(ua(agent), None, "{agent}");
        }
        assert_eq!(judge(&Signals::default()), None);
    }

    #[test]
    fn user_agents_of_crawlers_headless_browsers_and_tools_are_labelled() {
        let v = |s: &str| ua(s).map(|f| (f.verdict, f.signal));
        assert_eq!(
            v("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
            Some((Verdict::Bot, "user_agent:crawler".into()))
        );
        assert_eq!(
            v(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
            ),
            Some((Verdict::Bot, "user_agent:headless_chrome".into()))
        );
        assert_eq!(v("curl/8.5.0"), Some((Verdict::Tool, "user_agent:curl".into())));
        assert_eq!(
            v("python-requests/2.32.3"),
            Some((Verdict::Tool, "user_agent:python_requests".into()))
        );
        assert_eq!(
            v("Go-http-client/1.1"),
            Some((Verdict::Tool, "user_agent:go_http_client".into()))
        );
    }

    #[test]
    fn cloudflares_verification_wins_then_its_score_then_the_user_agent() {
        let verified = judge(&Signals {
            verified_bot: true,
            score: Some(1),
            user_agent: Some("curl/8"),
            ..Signals::default()
        })
        .unwrap();
        assert_eq!(
            (verified.verdict, verified.signal.as_str()),
            (Verdict::Verified, "cf.verified_bot")
        );
        let by_category = judge(&Signals {
            verified_category: Some("Search Engine Crawler"),
            ..Signals::default()
        });
        assert_eq!(by_category.unwrap().verdict, Verdict::Verified);
        for (score, verdict) in [
            (1, Some(Verdict::Bot)),
            (29, Some(Verdict::Bot)),
            (30, None),
            (99, None),
        ] {
            let f = judge(&Signals {
                score: Some(score),
                ..Signals::default()
            });
            assert_eq!(f.as_ref().map(|f| f.verdict), verdict, "score {score}");
            if let Some(f) = f {
                assert_eq!((f.signal.as_str(), f.score), ("cf.bot_score", Some(score)));
            }
        }
        // A human score does not clear a tool's user agent; the score is kept.
        let f = judge(&Signals {
            score: Some(90),
            user_agent: Some("curl/8"),
            ..Signals::default()
        })
        .unwrap();
        assert_eq!((f.verdict, f.score), (Verdict::Tool, Some(90)));
        let f = judge(&Signals {
            trust_score: Some(5),
            ..Signals::default()
        })
        .unwrap();
        assert_eq!(f.signal, "cf.client_trust_score");
    }

    #[test]
    fn routes_are_per_key_with_a_default_and_keep_when_unsaid() {
        let routes = BotRoutes::parse(r#"{"web":{"bot":"bots","tool":"quarantine"},"*":{"tool":"bots"}}"#).unwrap();
        assert_eq!(routes.of(Some("web")).of(Verdict::Bot), Route::Bots);
        assert_eq!(routes.of(Some("web")).of(Verdict::Tool), Route::Quarantine);
        assert_eq!(routes.of(Some("web")).of(Verdict::Verified), Route::Keep);
        assert_eq!(routes.of(Some("server")).of(Verdict::Tool), Route::Bots);
        assert_eq!(routes.of(None).of(Verdict::Bot), Route::Keep);
        let f = ua("curl/8").unwrap();
        let l = label(&f, &routes, Some("web"));
        assert_eq!(
            l.to_json(),
            r#"{"lane":"quarantine","bot":"tool","signal":"user_agent:curl"}"#
        );
        assert!(
            BotRoutes::parse(r#"{"web":{"bot":"drop"}}"#)
                .unwrap_err()
                .contains("web.bot")
        );
        assert!(BotRoutes::parse(r#"{"web":{"robot":"keep"}}"#).is_err());
        assert!(BotRoutes::parse("[]").is_err());
    }
}
