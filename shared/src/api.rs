//! The HTTP API both ingestion paths serve (the edge Worker and the API
//! Gateway function): routes, write keys, CORS, limits, and every status code
//! in one place, so the two answer every request the same way.
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1/events` (schema v1) | `200 {"accepted":N}`; 413 over a limit; 415 bad type or encoding; 400 empty, too deep, or (strict) malformed; 401 bad key; 403 origin not allowed |
//! | `POST /v1/track`, `/v1/batch`, … ([Segment's Tracking API](crate::segment)) | `200 {"success":true}`; 413 over Segment's limits; 400 not JSON; 401, 403, 415 as above |
//! | `POST /v1/ingest/<name>` ([any-JSON sources](crate::source)) | `200 {"accepted":N}`; 400 for a bad name; 403 for a key the source does not allow; the rest as `/v1/events` |
//! | `POST /com.snowplowanalytics.snowplow/tp2`, `GET /i` ([Snowplow's trackers](crate::snowplow)) | `200 ok` (text), a GIF for `/i`; 400 not the `payload_data` envelope; 413 over `MAX_EVENTS`; CORS with credentials |
//! | `POST /e/`, `/batch/`, `/i/v0/e/`, `/capture/`, `/i/v1/analytics/events` ([PostHog's SDKs](crate::posthog)) | `200 {"status":1}`; on v1 a result per event; 400 not a PostHog payload; 401 two tokens; 413 over a limit; 415 a compression not read |
//! | `POST /flags/`, `/decide/`, `GET /array/<token>/config[.js]` (PostHog's start calls) | `200`: no flags, a configuration that turns nothing on |
//! | `OPTIONS` on any of them | 204 CORS preflight for allowed origins, 403 otherwise |
//! | past a rate limit whose owner says refuse ([`crate::rate_limit`]) | `429` with `Retry-After`, naming the limit |
//! | `POST /v1/m` (analytics-next's own usage metrics) | 204, nothing stored: they count the SDK's calls, not events |
//! | `GET /healthz` | `200 {"status":"ok"}` |
//! | another method | 405 with `Allow` |
//! | another path | 404 |
//!
//! Write keys are read from `x-edgehose-key`, `Authorization: Bearer <key>`,
//! `Authorization: Basic base64(<key>:)` (Segment's and RudderStack's SDKs),
//! `?key=` (sendBeacon), and on the Segment routes from the body's
//! `writeKey`. An unknown key is a visible 401 on every route: Segment
//! answers 200 and drops the events, which leaves a mistyped key unnoticed
//! while its data is lost; a 401 shows in the SDK's error callback and logs.
//!
//! A `POST` from an origin outside `ALLOWED_ORIGINS` is answered 403 with
//! that origin in `Access-Control-Allow-Origin`: the page may read the
//! refusal (and nothing else), so a tracker can tell it from a network
//! failure and stop instead of retrying.
//!
//! Errors are JSON: `{"error":"<code>","code":"<code>","message":"<what and
//! which limit>"}` (`code` as Segment's Python SDKs read it: RudderStack's
//! retries a 4xx whose body lacks it).
//! A shell calls [`prepare`] with the request head, reads the body only if
//! told to, then calls [`accept`].

use sha2::{Digest, Sha256};

use crate::clock::RandomSource;
use crate::decode::{self, DecodeError, Item};
use crate::envelope::{self, Dialect, EdgeMeta, RequestContext};
use crate::limits::Limits;
use crate::outcome::{self, Cell};
use crate::posthog::{self, PostHogError};
use crate::segment::{self, SegmentError};
use crate::settings::{SettingError, Settings};
use crate::sigv4::verify::constant_time_eq;
use crate::snowplow::{self, SnowplowError};
use crate::source::{self, Sources};
use crate::timestamp::Timestamp;
use crate::{token, verdicts};

/// The events endpoint.
pub const EVENTS_PATH: &str = "/v1/events";
/// The health endpoint.
pub const HEALTH_PATH: &str = "/healthz";
/// Where analytics-next posts its own usage metrics (`{apiHost}/m`).
pub const SDK_METRICS_PATH: &str = "/v1/m";
/// The header that carries a write key (`Authorization: Bearer <key>` works too).
pub const KEY_HEADER: &str = "x-edgehose-key";
/// The query parameter that carries a write key, for `navigator.sendBeacon`,
/// which cannot set headers.
pub const KEY_QUERY_PARAM: &str = "key";
/// Request headers a browser may send cross-origin.
/// (`x-retry-count`: analytics-next and analytics-node send it on retries.)
const ALLOWED_REQUEST_HEADERS: &str = "content-type, content-encoding, x-edgehose-key, authorization, x-retry-count";
/// And Snowplow's trackers' anonymity header.
const ALLOWED_SNOWPLOW_HEADERS: &str =
    "content-type, content-encoding, x-edgehose-key, authorization, x-retry-count, sp-anonymous";
/// And the headers of PostHog's v1 capture.
const ALLOWED_POSTHOG_HEADERS: &str = "content-type, content-encoding, x-edgehose-key, authorization, x-retry-count, posthog-request-id, posthog-attempt, posthog-sdk-info, posthog-request-timestamp";

/// How the API is configured for one deployment.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    /// Decoding limits.
    pub limits: Limits,
    /// Refuse malformed payloads with 400 instead of quarantining them.
    pub strict: bool,
    /// Keep the client's IP address in the envelope.
    pub store_client_ip: bool,
    /// Which origins browsers may post from.
    pub origins: Origins,
    /// Accepted write keys; empty means no key is required, which
    /// [`ApiConfig::from_settings`] allows only with `ALLOW_ANONYMOUS`.
    pub write_keys: WriteKeys,
    /// What is declared for any-JSON sources (`SOURCES`).
    pub sources: Sources,
    /// What an `ok` verdict means where this runs (`verdicts.rs`): each
    /// shell says, by its mode.
    pub ok_means: String,
    /// Secrets signed ingest tokens are checked with (`TOKEN_SECRETS`;
    /// `token.rs`): the first mints, the rest are kept while they rotate out.
    pub token_secrets: TokenSecrets,
    /// Keys that browsers may only use through a token
    /// (`TOKEN_REQUIRED_KEYS`): their bare key is refused with an `Origin`.
    pub token_required: Vec<String>,
    /// Rate limits per key (`RATE_LIMITS`).
    pub rate_limits: crate::rate_limit::RateLimits,
    /// Where each key's bot-labelled events go (`BOT_ROUTES`).
    pub bot_routes: crate::bot::BotRoutes,
    /// The first-party identity cookie, when on (`IDENTITY_COOKIE_DAYS`;
    /// [`crate::identity`]).
    pub identity: Option<crate::identity::IdentityCookie>,
}

/// The secrets of signed ingest tokens; never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenSecrets(pub Vec<Vec<u8>>);

impl std::fmt::Debug for TokenSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSecrets({} secrets, not shown)", self.0.len())
    }
}

impl ApiConfig {
    /// Reads `MAX_BODY_BYTES`, `MAX_EVENT_BYTES`, `MAX_EVENTS`, `MAX_DEPTH`,
    /// `STRICT`, `STORE_CLIENT_IP`, `ALLOWED_ORIGINS`, `WRITE_KEYS`,
    /// `ALLOW_ANONYMOUS` and `SOURCES` (a source may only name keys that
    /// `WRITE_KEYS` defines). Fails closed: no `WRITE_KEYS` is an error
    /// unless `ALLOW_ANONYMOUS = "true"` says anyone may post.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        let limits = Limits::from_settings(s)?;
        let write_keys = WriteKeys::parse(&s.list("WRITE_KEYS")).map_err(|e| SettingError::new("WRITE_KEYS", e))?;
        let sources = Sources::from_settings(s)?;
        for (name, declared) in sources.iter() {
            for key in declared.keys.iter().flatten() {
                if !write_keys.has_id(key) {
                    return Err(SettingError::new(
                        "SOURCES",
                        format!("source {name:?} allows key {key:?}, which WRITE_KEYS does not define"),
                    ));
                }
            }
        }
        let config = Self {
            limits,
            strict: s.bool_or("STRICT", false)?,
            store_client_ip: s.bool_or("STORE_CLIENT_IP", false)?,
            origins: Origins::parse(&s.list("ALLOWED_ORIGINS")).map_err(|e| SettingError::new("ALLOWED_ORIGINS", e))?,
            write_keys,
            sources,
            ok_means: verdicts::OK_MEANS_CHECKED.to_owned(),
            token_secrets: token_secrets(s)?,
            token_required: s.list("TOKEN_REQUIRED_KEYS"),
            rate_limits: crate::rate_limit::RateLimits::from_settings(s)?,
            bot_routes: crate::bot::BotRoutes::from_settings(s)?,
            identity: crate::identity::IdentityCookie::from_settings(s)?,
        };
        for (setting, id) in config
            .rate_limits
            .keys()
            .map(|k| ("RATE_LIMITS", k))
            .chain(config.bot_routes.keys().map(|k| ("BOT_ROUTES", k)))
        {
            if !config.write_keys.has_id(id) {
                return Err(SettingError::new(
                    setting,
                    format!("names key {id:?}, which WRITE_KEYS does not define (\"*\" is every other key)"),
                ));
            }
        }
        for id in &config.token_required {
            if !config.write_keys.has_id(id) {
                return Err(SettingError::new(
                    "TOKEN_REQUIRED_KEYS",
                    format!("names key {id:?}, which WRITE_KEYS does not define"),
                ));
            }
        }
        if !config.token_required.is_empty() && config.token_secrets.0.is_empty() {
            return Err(SettingError::new(
                "TOKEN_REQUIRED_KEYS",
                "requires tokens, and TOKEN_SECRETS (the secrets they are signed with) is not set",
            ));
        }
        let write_keys = &config.write_keys;
        match (write_keys.is_enabled(), s.bool_or("ALLOW_ANONYMOUS", false)?) {
            (false, false) => {
                return Err(SettingError::new(
                    "WRITE_KEYS",
                    "is not set: without write keys anyone may post. Set WRITE_KEYS (\"id:key,id:key\"), or ALLOW_ANONYMOUS = \"true\" to accept events without a key",
                ));
            }
            (true, true) => {
                return Err(SettingError::new(
                    "ALLOW_ANONYMOUS",
                    "= \"true\" with WRITE_KEYS set: keys are then required; remove one of the two",
                ));
            }
            _ => {}
        }
        Ok(config)
    }
}

/// `TOKEN_SECRETS`: comma-separated, each at least [`token::MIN_SECRET_BYTES`].
fn token_secrets<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<TokenSecrets, SettingError> {
    let secrets = s.list("TOKEN_SECRETS");
    if let Some(i) = secrets.iter().position(|x| x.len() < token::MIN_SECRET_BYTES) {
        return Err(SettingError::new(
            "TOKEN_SECRETS",
            format!("secret {} is shorter than {} bytes", i + 1, token::MIN_SECRET_BYTES),
        ));
    }
    Ok(TokenSecrets(secrets.into_iter().map(String::into_bytes).collect()))
}

/// The origins allowed to post from browsers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origins {
    /// No browser origin is allowed (devices and servers, which send no
    /// `Origin`, are unaffected).
    #[default]
    None,
    /// Any origin (`*`).
    Any,
    /// These exact origins (`https://shop.example`).
    List(Vec<String>),
}

impl Origins {
    /// Parses a list of origins; `*` alone means any.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        if items.is_empty() {
            return Ok(Self::None);
        }
        if items.iter().any(|o| o == "*") {
            return if items.len() == 1 {
                Ok(Self::Any)
            } else {
                Err("= \"*\" cannot be combined with other origins".into())
            };
        }
        for o in items {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && !o.ends_with('/')
                && !o.contains(char::is_whitespace);
            if !ok {
                return Err(format!(
                    "has {o:?}, which is not an origin like https://shop.example (no path, no trailing slash)"
                ));
            }
        }
        Ok(Self::List(items.iter().map(|o| o.to_ascii_lowercase()).collect()))
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            Self::None => false,
            Self::Any => true,
            Self::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// The write keys a deployment accepts, each with a public id that is kept
/// in the envelope (the key itself never is).
#[derive(Clone, Default)]
pub struct WriteKeys {
    keys: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for WriteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|(id, _)| id)).finish()
    }
}

impl WriteKeys {
    /// Parses `id:key` items (`web:wk_3f9…,ios:wk_81c…`).
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some((id, key)) = item
                .split_once(':')
                .filter(|(id, key)| !id.is_empty() && key.len() >= 8)
            else {
                return Err(format!(
                    "item {} is not id:key with a key of at least 8 characters",
                    i + 1
                ));
            };
            keys.push((id.trim().to_owned(), Sha256::digest(key.trim().as_bytes()).into()));
        }
        Ok(Self { keys })
    }

    /// Whether any key is configured.
    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether a key with this id is configured.
    pub fn has_id(&self, id: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == id)
    }

    /// The id of the key presented, comparing digests in constant time
    /// against every configured key.
    fn identify(&self, presented: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (id, key) in &self.keys {
            if constant_time_eq(&digest, key) {
                found = Some(id.as_str());
            }
        }
        found
    }
}

/// The parts of a request head the API looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// `Origin`.
    pub origin: Option<&'a str>,
    /// `x-edgehose-key`.
    pub key_header: Option<&'a str>,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `Content-Length`, when sent.
    pub content_length: Option<u64>,
    /// The client library the request names in a header: PostHog's
    /// `PostHog-Sdk-Info` (`posthog-node/5.74.0`), which its v1 route sends
    /// instead of each event's `$lib`.
    pub sdk_info: Option<&'a str>,
    /// When the request arrived: a signed token's expiry is checked against it.
    pub received_at: Timestamp,
}

/// A finished answer: status, headers and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers beyond `content-type: application/json`, which a
    /// `content-type` here replaces.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body (empty for 204), or the text a `content-type` header
    /// names (empty for a pixel: [`Reply::bytes`]).
    pub body: String,
}

impl Reply {
    /// The body's content type: its `content-type` header, else JSON (none
    /// for an empty body).
    pub fn content_type(&self) -> Option<&str> {
        match self.headers.iter().find(|(k, _)| *k == "content-type") {
            Some((_, v)) => Some(v.as_str()),
            None => (!self.body.is_empty()).then_some("application/json"),
        }
    }

    /// The body's bytes: Snowplow's 1×1 GIF for a pixel answer, else the text.
    pub fn bytes(&self) -> &[u8] {
        if self.content_type() == Some(snowplow::PIXEL_CONTENT_TYPE) {
            snowplow::PIXEL_GIF
        } else {
            self.body.as_bytes()
        }
    }

    /// The headers a shell writes: [`Reply::headers`], with the content type
    /// first when the reply does not name one.
    pub fn all_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        if !self.headers.iter().any(|(k, _)| *k == "content-type") && !self.body.is_empty() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        headers.extend(self.headers.iter().cloned());
        headers
    }
}

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body broke a decoding rule or limit.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A Segment request broke a rule of its own.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A Snowplow request broke the tracker protocol as a whole.
    #[error(transparent)]
    Snowplow(#[from] SnowplowError),
    /// A PostHog request broke PostHog's capture as a whole.
    #[error(transparent)]
    PostHog(#[from] PostHogError),
    /// Write keys are configured and none was sent.
    #[error(
        "a write key is required: send it in the x-edgehose-key header, as Authorization: Bearer <key> or Basic (Segment's SDKs), as ?key= for sendBeacon, or as writeKey in a Segment body or api_key in a PostHog one"
    )]
    MissingKey,
    /// The key sent is not one of the configured keys.
    #[error("the write key is not valid")]
    UnknownKey,
    /// A browser origin outside `ALLOWED_ORIGINS`.
    #[error("origin {0:?} is not allowed to send events (ALLOWED_ORIGINS)")]
    OriginNotAllowed(String),
    /// A source name that breaks the naming rule.
    #[error("{0}")]
    BadSourceName(String),
    /// A query parameter with a value it does not take.
    #[error("{0}")]
    BadParameter(String),
    /// A signed ingest token that does not hold.
    #[error(transparent)]
    Token(#[from] token::TokenError),
    /// A bare key a browser may not use: the key requires tokens.
    #[error(
        "key {0:?} requires a signed ingest token from browsers (TOKEN_REQUIRED_KEYS); mint one on your server: docs/src/abuse.md, \"Signed ingest tokens\""
    )]
    TokenRequired(String),
    /// A key the source's `keys` setting does not list.
    #[error("write key {key:?} may not post to source {name:?} (SOURCES)")]
    KeyNotAllowed {
        /// The key's id.
        key: String,
        /// The source's name.
        name: String,
    },
    /// No such path.
    #[error(
        "no route for {0}; events go to POST /v1/events, Segment's /v1/track, /v1/page, /v1/identify, … /v1/batch, or /v1/ingest/<source>"
    )]
    NotFound(String),
    /// The path exists, the method does not.
    #[error("method {method} is not allowed here; use {allow}")]
    MethodNotAllowed {
        /// The method sent.
        method: String,
        /// The methods the path takes.
        allow: &'static str,
    },
    /// The deployment is misconfigured. Clients are told which setting, never
    /// its value or the problem (the operator's log says that).
    #[error("the service is misconfigured (setting {}); its operator finds why in the service's log", .0.name)]
    Misconfigured(#[from] SettingError),
    /// Accepting now would risk losing events (the queue or the sink is down).
    #[error("events cannot be accepted right now ({0}); retry later")]
    Unavailable(String),
    /// Past a rate limit whose key's owner says refuse.
    #[error("{message}; retry after {retry_after_s} s")]
    RateLimited {
        /// Which limit, with its figures and setting.
        message: String,
        /// Seconds until the limit's window ends.
        retry_after_s: u64,
    },
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Decode(e) => e.status(),
            Self::Segment(e) => e.status(),
            Self::Snowplow(e) => e.status(),
            Self::PostHog(e) => e.status(),
            Self::MissingKey | Self::UnknownKey | Self::Token(_) | Self::TokenRequired(_) => 401,
            Self::BadSourceName(_) | Self::BadParameter(_) => 400,
            Self::OriginNotAllowed(_) | Self::KeyNotAllowed { .. } => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Misconfigured(_) => 500,
            Self::Unavailable(_) => 503,
            Self::RateLimited { .. } => 429,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.code(),
            Self::Segment(e) => e.code(),
            Self::Snowplow(e) => e.code(),
            Self::PostHog(e) => e.code(),
            Self::BadSourceName(_) => "invalid_source_name",
            Self::BadParameter(_) => "invalid_parameter",
            Self::Token(e) => e.code(),
            Self::TokenRequired(_) => "token_required",
            Self::KeyNotAllowed { .. } => "key_not_allowed",
            Self::MissingKey => "missing_write_key",
            Self::UnknownKey => "invalid_write_key",
            Self::OriginNotAllowed(_) => "origin_not_allowed",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Misconfigured(_) => "misconfigured",
            Self::Unavailable(_) => "unavailable",
            Self::RateLimited { .. } => "rate_limited",
        }
    }

    /// The JSON reply, with `cors` headers added.
    pub fn reply(&self, cors: Vec<(&'static str, String)>) -> Reply {
        let mut headers = cors;
        if let Self::MethodNotAllowed { allow, .. } = self {
            headers.push(("allow", (*allow).to_owned()));
        }
        if matches!(self, Self::Unavailable(_)) {
            headers.push(("retry-after", "5".to_owned()));
        }
        if let Self::RateLimited { retry_after_s, .. } = self {
            headers.push(("retry-after", retry_after_s.to_string()));
        }
        // A page's script reads `Retry-After` only when CORS exposes it
        // (analytics-next and edgehose.js wait as long as it says).
        if matches!(self, Self::Unavailable(_) | Self::RateLimited { .. })
            && headers.iter().any(|(k, _)| *k == "access-control-allow-origin")
        {
            headers.push(("access-control-expose-headers", "retry-after".to_owned()));
        }
        let body =
            serde_json::json!({"error": self.code(), "code": self.code(), "message": self.to_string()}).to_string();
        Reply {
            status: self.status(),
            headers,
            body,
        }
    }
}

/// What [`prepare`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Answer now, without reading the body.
    Reply(Reply),
    /// Read the body and call [`accept`] with this.
    Ingest(Ingest),
}

/// The door a request came through, which says how its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Door {
    /// `POST /v1/events`: schema v1.
    Events,
    /// One of Segment's Tracking API routes.
    Segment(segment::Route),
    /// `POST /v1/ingest/<name>`: an any-JSON source.
    Source(String),
    /// Snowplow's tracker protocol: a POST of events, or a pixel.
    Snowplow(snowplow::Route),
    /// PostHog's capture: the classic routes, or v1.
    PostHog(posthog::Route),
}

impl Door {
    /// Its name where events are counted: `v1`, `segment`, `source:<name>`
    /// (as [`outcome::door_of`] names an envelope's).
    pub fn name(&self) -> String {
        match self {
            Door::Events => outcome::door_of(None, None),
            Door::Segment(_) => outcome::door_of(Some("segment"), None),
            Door::Source(name) => outcome::door_of(Some("source"), Some(name)),
            Door::Snowplow(_) => outcome::door_of(Some("snowplow"), None),
            Door::PostHog(_) => outcome::door_of(Some("posthog"), None),
        }
    }

    /// The door of a path (a trailing slash already removed): `Ok(None)`
    /// when no route has this path.
    pub fn of_path(path: &str) -> Result<Option<Self>, ApiError> {
        if path == EVENTS_PATH {
            return Ok(Some(Self::Events));
        }
        if let Some(name) = path
            .strip_prefix(source::INGEST_PATH_PREFIX)
            .or_else(|| (path == source::INGEST_PATH_PREFIX.trim_end_matches('/')).then_some(""))
        {
            source::check_name(name).map_err(ApiError::BadSourceName)?;
            return Ok(Some(Self::Source(name.to_owned())));
        }
        if let Some(route) = snowplow::route(path) {
            return Ok(Some(Self::Snowplow(route)));
        }
        if let Some(route) = posthog::route(path) {
            return Ok(Some(Self::PostHog(route)));
        }
        Ok(segment::route(path).map(Self::Segment))
    }

    /// The methods it takes.
    fn allow(&self) -> &'static str {
        match self {
            Door::Snowplow(snowplow::Route::Pixel) => "GET, HEAD, OPTIONS",
            _ => "POST, OPTIONS",
        }
    }

    /// Whether a browser sends it cookies (Snowplow's tracker does:
    /// `credentials: "include"`; any client may once the identity cookie is
    /// on), so that an answer must name the origin and allow credentials.
    fn with_credentials(&self, config: &ApiConfig) -> bool {
        matches!(self, Door::Snowplow(_)) || config.identity.is_some()
    }
}

/// A request cleared to have its body read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingest {
    /// The id of the write key used.
    pub key_id: Option<String>,
    /// CORS headers for the answer.
    pub cors: Vec<(&'static str, String)>,
    /// Which door, so which dialect.
    pub door: Door,
    /// Keys are required and the head carried none: a Segment body's
    /// `writeKey` must name one.
    pub key_in_body: bool,
    /// The most body bytes this request may send: checked against
    /// `Content-Length` before the body is read, and by the shell while it
    /// reads a body that came without one.
    pub body_limit: usize,
    /// The client asked for a verdict per event (`?verdicts=1`).
    pub verdicts: bool,
    /// The request's `Origin`, against which a token in a Segment body is checked.
    pub origin: Option<String>,
    /// The query string: a Snowplow pixel's event, a PostHog capture's
    /// `compression`.
    pub query: Option<String>,
    /// [`RequestHead::sdk_info`], on PostHog's v1 route.
    pub sdk_info: Option<String>,
}

impl Ingest {
    /// Where this request's events are counted (`shared::outcome`): its
    /// minute, the key that wrote them (`key_id`, which a Segment body's
    /// `writeKey` may name) and its door.
    pub fn cell(&self, key_id: Option<&str>, received_at: Timestamp) -> Cell {
        Cell {
            minute: outcome::minute_of(received_at),
            key: key_id.unwrap_or_default().to_owned(),
            door: self.door.name(),
            reason: String::new(),
        }
    }

    /// Whether its body may be gzip that says so nowhere but in its first
    /// bytes (posthog-js's `gzip-js`): a shell whose core cannot inflate
    /// looks at them and inflates it as if `Content-Encoding` said gzip.
    pub fn sniffs_gzip(&self) -> bool {
        self.door == Door::PostHog(posthog::Route::Capture)
    }

    /// The answer to a body longer than [`Ingest::body_limit`]: the same 413
    /// a `Content-Length` over the limit gets.
    pub fn too_large(&self) -> Reply {
        body_too_large(&self.door, self.body_limit).reply(self.cors.clone())
    }
}

fn body_too_large(door: &Door, limit: usize) -> ApiError {
    match door {
        Door::Segment(_) if limit == crate::limits::SEGMENT_MAX_BATCH_BYTES => SegmentError::BatchTooLarge {
            limit,
            decompressed: false,
        }
        .into(),
        _ => DecodeError::BodyTooLarge {
            limit,
            decompressed: false,
        }
        .into(),
    }
}

/// Routes a request and checks everything that needs no body: method,
/// origin, write key, `Content-Length`.
pub fn prepare(head: &RequestHead<'_>, config: &ApiConfig) -> Prepared {
    match prepare_inner(head, config) {
        Ok(p) => p,
        Err(ApiError::OriginNotAllowed(origin)) if head.method == "POST" => {
            let readable = vec![
                ("access-control-allow-origin", origin.clone()),
                ("vary", "Origin".to_owned()),
            ];
            Prepared::Reply(ApiError::OriginNotAllowed(origin).reply(readable))
        }
        Err(e) => {
            // A Snowplow tracker reads a refusal only with credentials allowed.
            let credentials = Door::of_path(trimmed(head.path))
                .ok()
                .flatten()
                .is_some_and(|d| d.with_credentials(config));
            let cors = if credentials {
                credentialed_cors(head.origin, config)
            } else {
                cors_headers(head.origin, config)
            };
            Prepared::Reply(e.reply(cors))
        }
    }
}

/// A path without its trailing slash (`/` stays).
fn trimmed(path: &str) -> &str {
    path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path)
}

fn prepare_inner(head: &RequestHead<'_>, config: &ApiConfig) -> Result<Prepared, ApiError> {
    let path = trimmed(head.path);
    if path == HEALTH_PATH {
        return match head.method {
            "GET" | "HEAD" => Ok(Prepared::Reply(Reply {
                status: 200,
                headers: Vec::new(),
                body: r#"{"status":"ok"}"#.to_owned(),
            })),
            m => Err(ApiError::MethodNotAllowed {
                method: m.to_owned(),
                allow: "GET, HEAD",
            }),
        };
    }
    if path == SDK_METRICS_PATH {
        return match head.method {
            "POST" if head.origin.is_none_or(|o| config.origins.allows(o)) => Ok(Prepared::Reply(Reply {
                status: 204,
                headers: cors_headers(head.origin, config),
                body: String::new(),
            })),
            "POST" => Err(ApiError::OriginNotAllowed(head.origin.unwrap_or_default().to_owned())),
            "OPTIONS" => preflight(head, config, None),
            m => Err(ApiError::MethodNotAllowed {
                method: m.to_owned(),
                allow: "POST, OPTIONS",
            }),
        };
    }
    if let Some(start) = posthog::start(path) {
        return posthog_start(head, config, start);
    }
    let Some(door) = Door::of_path(path)? else {
        return Err(ApiError::NotFound(head.path.to_owned()));
    };
    match (head.method, &door) {
        ("POST", Door::Snowplow(snowplow::Route::Pixel)) => {
            return Err(ApiError::MethodNotAllowed {
                method: head.method.to_owned(),
                allow: door.allow(),
            });
        }
        ("POST", _) | ("GET" | "HEAD", Door::Snowplow(snowplow::Route::Pixel)) => {}
        ("OPTIONS", _) => return preflight(head, config, Some(&door)),
        (m, _) => {
            return Err(ApiError::MethodNotAllowed {
                method: m.to_owned(),
                allow: door.allow(),
            });
        }
    }
    if let Some(origin) = head.origin
        && !config.origins.allows(origin)
    {
        return Err(ApiError::OriginNotAllowed(origin.to_owned()));
    }
    let (key_id, key_in_body) = match authenticate(head, config) {
        // Segment's browser SDK sends the key in the body (a text/plain
        // body needs no preflight, and sendBeacon sets no headers), and so
        // do PostHog's SDKs on their classic routes (`api_key`, `token`).
        Err(ApiError::MissingKey) if matches!(door, Door::Segment(_) | Door::PostHog(posthog::Route::Capture)) => {
            (None, true)
        }
        other => (other?, false),
    };
    let body_limit = match door {
        Door::Segment(_) => config.limits.for_segment().max_body_bytes,
        _ => config.limits.max_body_bytes,
    };
    if let Door::Source(name) = &door
        && let Some(declared) = config.sources.get(name)
        && !declared.allows_key(key_id.as_deref())
    {
        return Err(match &key_id {
            Some(key) => ApiError::KeyNotAllowed {
                key: key.clone(),
                name: name.clone(),
            },
            None => ApiError::MissingKey,
        });
    }
    if let Some(len) = head.content_length
        && len > body_limit as u64
    {
        return Err(body_too_large(&door, body_limit));
    }
    let pixel = door == Door::Snowplow(snowplow::Route::Pixel);
    let verdicts = if pixel {
        false
    } else {
        verdicts::asked(head.query).map_err(ApiError::BadParameter)?
    };
    let cors = if door.with_credentials(config) {
        credentialed_cors(head.origin, config)
    } else {
        cors_headers(head.origin, config)
    };
    Ok(Prepared::Ingest(Ingest {
        key_id,
        cors,
        key_in_body,
        body_limit,
        verdicts,
        origin: head.origin.map(str::to_owned),
        query: (pixel || ingest_query_needed(&door)).then(|| head.query.unwrap_or_default().to_owned()),
        sdk_info: head
            .sdk_info
            .filter(|_| door == Door::PostHog(posthog::Route::AnalyticsV1))
            .map(str::to_owned),
        door,
    }))
}

/// Whether a door reads its query string with its body.
fn ingest_query_needed(door: &Door) -> bool {
    matches!(door, Door::PostHog(posthog::Route::Capture))
}

fn authenticate(head: &RequestHead<'_>, config: &ApiConfig) -> Result<Option<String>, ApiError> {
    if !config.write_keys.is_enabled() {
        return Ok(None);
    }
    let from_authorization = head.authorization.and_then(|a| {
        let (scheme, value) = a.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(value.trim().to_owned())
        } else if scheme.eq_ignore_ascii_case("basic") {
            basic_user(value.trim())
        } else {
            None
        }
    });
    let from_query = head.query.and_then(|q| query_param(q, KEY_QUERY_PARAM));
    let presented = head.key_header.map(str::to_owned).or(from_authorization).or(from_query);
    let presented = presented
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingKey)?;
    identify(config, &presented, head.origin, head.received_at)
}

/// The key id a presented key or signed token stands for. A token is
/// checked against the request's origin and time; a bare key that requires
/// tokens is refused from a browser (a request with an `Origin`).
fn identify(
    config: &ApiConfig,
    presented: &str,
    origin: Option<&str>,
    now: Timestamp,
) -> Result<Option<String>, ApiError> {
    let presented = presented.trim();
    if token::is_token(presented) {
        let id = token::verify(&config.token_secrets.0, presented, origin, now)?;
        if !config.write_keys.has_id(&id) {
            return Err(token::TokenError::UnknownKey(id).into());
        }
        return Ok(Some(id));
    }
    let id = config.write_keys.identify(presented).ok_or(ApiError::UnknownKey)?;
    if origin.is_some() && config.token_required.iter().any(|k| k == id) {
        return Err(ApiError::TokenRequired(id.to_owned()));
    }
    Ok(Some(id.to_owned()))
}

/// The user of HTTP Basic credentials (`base64(user:password)`): Segment's
/// and RudderStack's SDKs send the write key as the user, with no password.
/// Credentials that do not decode are presented as they are, so they fail
/// as an invalid key rather than pass for a missing one.
fn basic_user(credentials: &str) -> Option<String> {
    use base64::Engine as _;
    let Some(text) = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
    else {
        return Some(credentials.to_owned());
    };
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    Some(user.to_owned())
}

/// The percent-decoded value of `name` in a query string (`+` is a space).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query_pairs(query).find_map(|(k, v)| (k == name).then_some(v))
}

/// Every `name=value` pair of a query string, both percent-decoded (`+`
/// is a space), in order; empty pieces skipped.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let decode = |s: &str| String::from_utf8_lossy(&crate::sigv4::percent_decode(&s.replace('+', " "))).into_owned();
    query.split('&').filter(|p| !p.is_empty()).map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn preflight(head: &RequestHead<'_>, config: &ApiConfig, door: Option<&Door>) -> Result<Prepared, ApiError> {
    let origin = head.origin.unwrap_or_default();
    if !config.origins.allows(origin) {
        return Err(ApiError::OriginNotAllowed(origin.to_owned()));
    }
    let (mut headers, allow, request_headers) = match door {
        Some(d @ Door::PostHog(_)) => (
            if d.with_credentials(config) {
                credentialed_cors(head.origin, config)
            } else {
                cors_headers(head.origin, config)
            },
            d.allow(),
            ALLOWED_POSTHOG_HEADERS,
        ),
        Some(d) if d.with_credentials(config) => (
            credentialed_cors(head.origin, config),
            d.allow(),
            ALLOWED_SNOWPLOW_HEADERS,
        ),
        Some(d) => (cors_headers(head.origin, config), d.allow(), ALLOWED_REQUEST_HEADERS),
        None => (
            cors_headers(head.origin, config),
            "POST, OPTIONS",
            ALLOWED_REQUEST_HEADERS,
        ),
    };
    headers.push(("access-control-allow-methods", allow.to_owned()));
    headers.push(("access-control-allow-headers", request_headers.to_owned()));
    headers.push(("access-control-max-age", "86400".to_owned()));
    Ok(Prepared::Reply(Reply {
        status: 204,
        headers,
        body: String::new(),
    }))
}

/// The CORS headers of an answer given before the configuration could be
/// read (a misconfigured deployment): the request's origin echoed, so a
/// browser can show the 500 rather than an opaque network error. The answer
/// carries no data.
pub fn cors_headers_without_config(origin: Option<&str>) -> Vec<(&'static str, String)> {
    origin.map_or_else(Vec::new, |o| {
        vec![
            ("access-control-allow-origin", o.to_owned()),
            ("vary", "Origin".to_owned()),
        ]
    })
}

/// The CORS headers for a response to `origin` that a browser sent with
/// its cookies: the origin named (a `*` would be discarded) and credentials
/// allowed, for any allowed origin.
pub fn credentialed_cors(origin: Option<&str>, config: &ApiConfig) -> Vec<(&'static str, String)> {
    match origin {
        Some(o) if config.origins.allows(o) => vec![
            ("access-control-allow-origin", o.to_owned()),
            ("access-control-allow-credentials", "true".to_owned()),
            ("vary", "Origin".to_owned()),
        ],
        _ => Vec::new(),
    }
}

/// The CORS headers for a response to `origin`, if it is allowed.
pub fn cors_headers(origin: Option<&str>, config: &ApiConfig) -> Vec<(&'static str, String)> {
    match (origin, &config.origins) {
        (_, Origins::Any) => vec![("access-control-allow-origin", "*".to_owned())],
        (Some(o), origins) if origins.allows(o) => {
            vec![
                ("access-control-allow-origin", o.to_owned()),
                ("vary", "Origin".to_owned()),
            ]
        }
        _ => Vec::new(),
    }
}

/// An accepted request: the answer and the envelope lines to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `200 {"accepted":N}` reply.
    pub reply: Reply,
    /// How many items were accepted (events and quarantined pieces).
    pub count: usize,
    /// One NDJSON envelope line per event or quarantine part.
    pub lines: Vec<String>,
    /// Of the lines, how many are quarantine envelopes.
    pub quarantined: usize,
    /// Where the lines are counted: the request's minute, the key that
    /// wrote them (a Segment body's `writeKey` included) and the door.
    pub cell: Cell,
    /// What [`crate::guard::settle`] wrote into every line: a limit passed,
    /// a bot verdict (empty until then, and for most requests).
    pub label: crate::label::Label,
    /// The answer carries a result per event (PostHog's v1 route), which
    /// [`Accepted::unavailable`] and the labels speak through.
    pub per_event: bool,
}

/// What the shell knows about the body.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// The bytes as received.
    pub bytes: &'a [u8],
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `Content-Encoding`.
    pub content_encoding: Option<&'a str>,
    /// A gzip body the runtime already inflated (the edge Worker's
    /// `DecompressionStream`); `None`: the core inflates it.
    pub inflated: Option<&'a decode::Inflated>,
}

/// Decodes and envelopes a cleared request's body by its door's dialect.
///
/// On `/v1/events` and the source routes a malformed body (broken JSON,
/// corrupt gzip) is accepted and quarantined, unless `strict`; the Segment
/// routes refuse it, as Segment does. An over-limit body is always refused
/// with the limit named.
pub fn accept(
    ingest: &Ingest,
    body: Body<'_>,
    edge: &EdgeMeta,
    config: &ApiConfig,
    received_at: Timestamp,
    random: &dyn RandomSource,
) -> Result<Accepted, Reply> {
    let refuse = |e: ApiError| e.reply(ingest.cors.clone());
    let mut ctx = RequestContext {
        received_at,
        key_id: ingest.key_id.as_deref(),
        edge,
        content_type: body.content_type,
        dialect: Dialect::V1,
    };
    if let Door::PostHog(route) = &ingest.door {
        return accept_posthog(ingest, *route, body, edge, config, received_at, random);
    }
    if let Door::Snowplow(route) = &ingest.door {
        ctx.dialect = Dialect::Snowplow;
        let (lines, reply) = match route {
            snowplow::Route::Post => {
                decode::BodyFormat::from_content_type(body.content_type).map_err(|e| refuse(e.into()))?;
                let bytes = decode::decompress_with(body.bytes, body.content_encoding, body.inflated, &config.limits)
                    .map_err(|e| refuse(e.into()))?;
                let events = snowplow::events(&bytes, &config.limits).map_err(|e| refuse(e.into()))?;
                let lines: Vec<String> = events
                    .iter()
                    .map(|e| envelope::wrap_event(&ctx, e.get(), random))
                    .collect();
                let mut headers = ingest.cors.clone();
                headers.push(("content-type", "text/plain; charset=utf-8".to_owned()));
                (
                    lines,
                    Reply {
                        status: 200,
                        headers,
                        body: snowplow::POST_ANSWER.to_owned(),
                    },
                )
            }
            snowplow::Route::Pixel => {
                let event = snowplow::pixel_event(ingest.query.as_deref()).map_err(|e| refuse(e.into()))?;
                let mut headers = ingest.cors.clone();
                headers.push(("content-type", snowplow::PIXEL_CONTENT_TYPE.to_owned()));
                headers.push(("cache-control", "no-cache, no-store, must-revalidate".to_owned()));
                (
                    vec![envelope::wrap_event(&ctx, &event, random)],
                    Reply {
                        status: 200,
                        headers,
                        body: String::new(),
                    },
                )
            }
        };
        return Ok(Accepted {
            reply,
            count: lines.len(),
            cell: ingest.cell(ctx.key_id, received_at),
            quarantined: 0,
            lines,
            label: Default::default(),
            per_event: false,
        });
    }
    if let Door::Segment(route) = &ingest.door {
        let key_id;
        let (lines, reply_body) = {
            decode::BodyFormat::from_content_type(body.content_type).map_err(|e| refuse(e.into()))?;
            let bytes = segment::decompress(body.bytes, body.content_encoding, body.inflated, &config.limits)
                .map_err(|e| refuse(e.into()))?;
            let request = segment::parse(&bytes, *route, &config.limits).map_err(|e| refuse(e.into()))?;
            if ingest.key_in_body {
                let presented = request
                    .write_key
                    .as_deref()
                    .ok_or(ApiError::MissingKey)
                    .map_err(refuse)?;
                key_id = identify(config, presented, ingest.origin.as_deref(), received_at).map_err(refuse)?;
                ctx.key_id = key_id.as_deref();
            }
            ctx.dialect = Dialect::Segment {
                call: match route {
                    segment::Route::Single(call) => Some(call.as_str()),
                    segment::Route::Batch => None,
                },
                sent_at: request.sent_at,
            };
            let lines: Vec<String> = request
                .messages
                .iter()
                .map(|m| envelope::wrap_event(&ctx, m, random))
                .collect();
            (lines, r#"{"success":true}"#.to_owned())
        };
        let reply_body = with_verdicts(ingest, config, &lines, reply_body);
        return Ok(Accepted {
            reply: Reply {
                status: 200,
                headers: ingest.cors.clone(),
                body: reply_body,
            },
            count: lines.len(),
            cell: ingest.cell(ctx.key_id, received_at),
            quarantined: 0,
            lines,
            label: Default::default(),
            per_event: false,
        });
    }
    if let Door::Source(name) = &ingest.door {
        ctx.dialect = Dialect::Source {
            name,
            settings: config.sources.get(name),
        };
    }
    let mut inflated = None;
    let (count, quarantined, lines) = match decode::decode_with(
        &mut inflated,
        body.bytes,
        body.content_type,
        body.content_encoding,
        body.inflated,
        &config.limits,
    ) {
        Ok(decoded) => {
            if config.strict
                && let Some(Item::Malformed(m)) = decoded.items.iter().find(|i| matches!(i, Item::Malformed(_)))
            {
                return Err(refuse(
                    DecodeError::Malformed {
                        index: m.index,
                        reason: m.reason.clone(),
                    }
                    .into(),
                ));
            }
            let lines = envelope::wrap_items(&ctx, &decoded.items, random);
            let events = decoded.items.iter().filter(|i| matches!(i, Item::Event(_))).count();
            (decoded.len(), lines.len() - events, lines)
        }
        Err(e) if e.is_quarantinable() && !config.strict => {
            let lines = envelope::wrap_quarantine(&ctx, body.bytes, None, &e.to_string(), random);
            (1, lines.len(), lines)
        }
        Err(e) => return Err(refuse(e.into())),
    };
    let reply = Reply {
        status: 200,
        headers: ingest.cors.clone(),
        body: with_verdicts(ingest, config, &lines, format!(r#"{{"accepted":{count}}}"#)),
    };
    Ok(Accepted {
        reply,
        count,
        quarantined,
        cell: ingest.cell(ctx.key_id, received_at),
        lines,
        label: Default::default(),
        per_event: false,
    })
}

/// The answer's body with a verdict per event when the client asked.
fn with_verdicts(ingest: &Ingest, config: &ApiConfig, lines: &[String], body: String) -> String {
    if !ingest.verdicts {
        return body;
    }
    let rules = crate::judge::Rules {
        limits: &config.limits,
        sources: &config.sources,
    };
    verdicts::add_to_answer(&body, verdicts::results(lines, rules), &config.ok_means)
}

/// [`prepare`] then [`accept`] in one call, for callers that hold the whole
/// request at once (tests, replays of captured traffic).
pub fn handle(
    head: &RequestHead<'_>,
    body: Body<'_>,
    edge: &EdgeMeta,
    config: &ApiConfig,
    received_at: Timestamp,
    random: &dyn RandomSource,
) -> Result<Accepted, Reply> {
    match prepare(head, config) {
        Prepared::Reply(reply) => Err(reply),
        Prepared::Ingest(ingest) => accept(&ingest, body, edge, config, received_at, random),
    }
}

mod posthog_door;
use posthog_door::{accept_posthog, posthog_start};

#[cfg(test)]
mod tests;
