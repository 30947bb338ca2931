//! The first-party identity cookie: a network user id the collector sets on
//! its answer and reads back from the next request, so an anonymous visitor
//! keeps one id across page loads — also where browsers cap what a page's
//! script may store to seven days (Safari's ITP), since a cookie set by the
//! server, `HttpOnly`, is not script storage. Off unless the deployment sets
//! `IDENTITY_COOKIE_DAYS`: it identifies visitors, which in many places
//! needs their consent first.
//!
//! | setting | meaning |
//! |---|---|
//! | `IDENTITY_COOKIE_DAYS` | its lifetime, renewed by every answer (0, the default: no cookie) |
//! | `IDENTITY_COOKIE_NAME` | its name (`edgehose_id`) |
//! | `IDENTITY_COOKIE_DOMAIN` | its `Domain` (none: the collector's host alone) |
//! | `IDENTITY_COOKIE_SAMESITE` | `lax` (the default), `strict` or `none` |
//!
//! `SameSite=Lax` by default: the Worker is meant to answer on the site's own
//! domain (`collect.shop.example` for `shop.example`), where a page's
//! requests to it are same-site and carry a `Lax` cookie, and no other site
//! can make them carry it. `None` is for a collector on another site; most
//! browsers block such third-party cookies anyway. Always `Secure` and
//! `HttpOnly`: no script reads or forges it.
//!
//! Through every door: the id is the Snowplow pixel's `nuid` parameter if
//! it sends one, else the cookie's, else a new random one, and every event
//! of the request carries it in its envelope (`nuid`). A request with
//! Snowplow's anonymity header (`SP-Anonymous`) gets no id, and a cookie it
//! brings is expired. A browser sends and keeps the cookie on a
//! cross-origin request only with credentials (Snowplow's tracker sends
//! them; with the cookie on, every door's CORS allows them).

use crate::api::Accepted;
use crate::clock::RandomSource;
use crate::settings::{SettingError, Settings};

/// How the cookie is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCookie {
    /// Its name.
    pub name: String,
    /// Its lifetime in days, renewed by every answer.
    pub days: u32,
    /// Its `Domain`, if any.
    pub domain: Option<String>,
    /// Its `SameSite`: `Lax`, `Strict` or `None`.
    pub same_site: &'static str,
}

/// The cookie's name unless `IDENTITY_COOKIE_NAME` says otherwise.
pub const DEFAULT_NAME: &str = "edgehose_id";

impl IdentityCookie {
    /// Reads the settings; `None` when `IDENTITY_COOKIE_DAYS` is unset or 0.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Option<Self>, SettingError> {
        let days = s.usize_or("IDENTITY_COOKIE_DAYS", 0)?;
        if days == 0 {
            return Ok(None);
        }
        if days > 400 {
            return Err(SettingError::new(
                "IDENTITY_COOKIE_DAYS",
                format!("= {days}: browsers keep a cookie at most 400 days"),
            ));
        }
        let name = s.get("IDENTITY_COOKIE_NAME").unwrap_or_else(|| DEFAULT_NAME.to_owned());
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(SettingError::new(
                "IDENTITY_COOKIE_NAME",
                format!("= {name:?}: letters, digits, _ and - only"),
            ));
        }
        let domain = s.get("IDENTITY_COOKIE_DOMAIN").filter(|d| !d.is_empty());
        if let Some(d) = &domain
            && !d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(SettingError::new(
                "IDENTITY_COOKIE_DOMAIN",
                format!("= {d:?} is not a domain like .shop.example"),
            ));
        }
        let same_site = match s
            .get("IDENTITY_COOKIE_SAMESITE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("lax") => "Lax",
            Some("strict") => "Strict",
            Some("none") => "None",
            Some(other) => {
                return Err(SettingError::new(
                    "IDENTITY_COOKIE_SAMESITE",
                    format!("= {other:?}: lax, strict or none"),
                ));
            }
        };
        Ok(Some(Self {
            name,
            days: days as u32,
            domain,
            same_site,
        }))
    }

    /// The `Set-Cookie` value that keeps `id` for the cookie's lifetime.
    pub fn set(&self, id: &str) -> String {
        self.header(id, u64::from(self.days) * 86_400)
    }

    /// The `Set-Cookie` value that ends the cookie.
    pub fn expire(&self) -> String {
        self.header("", 0)
    }

    fn header(&self, value: &str, max_age: u64) -> String {
        let domain = self
            .domain
            .as_deref()
            .map(|d| format!("; Domain={d}"))
            .unwrap_or_default();
        format!(
            "{}={value}; Max-Age={max_age}; Path=/{domain}; SameSite={}; Secure; HttpOnly",
            self.name, self.same_site
        )
    }

    /// The id a `Cookie` header holds under the cookie's name, if it is one
    /// this collector could have set (a UUID).
    pub fn read(&self, cookie_header: Option<&str>) -> Option<String> {
        cookie_header?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == self.name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| uuid::Uuid::try_parse(v).is_ok())
    }
}

/// What a request says about its visitor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Visitor<'a> {
    /// The `Cookie` header.
    pub cookie: Option<&'a str>,
    /// Whether it came with `SP-Anonymous`.
    pub anonymous: bool,
    /// Its query string (a Snowplow pixel's `nuid`).
    pub query: Option<&'a str>,
}

/// Gives an accepted request's events their visitor's id (a member `nuid`
/// of each envelope) and its answer the cookie that keeps it; with
/// `SP-Anonymous`, no id, and a cookie it brought expired.
pub fn settle(
    accepted: &mut Accepted,
    cookie: Option<&IdentityCookie>,
    visitor: &Visitor<'_>,
    random: &dyn RandomSource,
) {
    let Some(cookie) = cookie else {
        return;
    };
    let held = cookie.read(visitor.cookie);
    if visitor.anonymous {
        if held.is_some() || visitor.cookie.is_some_and(|c| c.contains(&format!("{}=", cookie.name))) {
            accepted.reply.headers.push(("set-cookie", cookie.expire()));
        }
        return;
    }
    let given = visitor
        .query
        .and_then(|q| crate::api::query_param(q, "nuid"))
        .filter(|v| uuid::Uuid::try_parse(v).is_ok());
    let id = given.or(held).unwrap_or_else(|| {
        let mut bytes = [0u8; 16];
        random.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string()
    });
    crate::label::insert_member(&mut accepted.lines, &format!(r#""nuid":"{id}","#));
    accepted.reply.headers.push(("set-cookie", cookie.set(&id)));
}

#[cfg(test)]
mod tests;
