//! Residency routing: which region's sink, queue and dead-letter archive an
//! event goes to, decided at the edge from the country the request came
//! from, before anything leaves it; and what of an event may leave in each
//! region (fields stripped, or hashed with a key the region keeps).
//!
//! One setting, `REGIONS`, names the regions and the countries each serves:
//!
//! ```text
//! REGIONS = "eu: EEA CH GB; us: *"
//! ```
//!
//! Countries are ISO 3166-1 alpha-2 codes as Cloudflare reports them
//! (`request.cf.country`), or a group: `EU` or `EEA` ([`EU_COUNTRIES`],
//! [`EEA_EFTA_COUNTRIES`]). `*` marks the region every other request goes to
//! (exactly one region has it; a request whose country is unknown — none
//! sent, Tor's `T1`, `XX` — goes there too). A region with no countries
//! serves none of its own: it is another's standby.
//!
//! Each region's own settings carry its name as a prefix (`EU_AWS_REGION`,
//! `EU_FIREHOSE_STREAM`, …; the edge reads them, `edge/src/config.rs`), and
//! so do its policy's: `EU_STRIP` (fields taken out of each event before it
//! is sent on, as dotted paths in the event: `context.ip, userId`),
//! `EU_HASH` (fields whose values are replaced by their HMAC-SHA-256 under
//! `EU_HASH_SECRET`, so one user's events still join without the id
//! leaving), and `EU_STANDBY` (the region its events fail over to, which
//! must keep them in the same jurisdiction: [`jurisdiction_of`]; when and
//! how: [`crate::failover`]).
//!
//! Without `REGIONS` there is one region, unnamed, and every setting is
//! read as it always was.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::json::Members;
use crate::settings::{SettingError, Settings};

/// The European Union's 27 member states (ISO 3166-1 alpha-2; Greece is
/// `GR`, as ISO and Cloudflare write it, where the EU's own lists use `EL`),
/// and the EU territories geolocation reports under codes of their own
/// (Åland, French Guiana, Guadeloupe, Saint-Martin, Martinique, Réunion,
/// Mayotte), as Cloudflare's `ip.src.is_in_european_union` counts them.
/// Sources: Eurostat, "Glossary:Country codes"
/// (<https://ec.europa.eu/eurostat/statistics-explained/index.php?title=Glossary:Country_codes>);
/// Cloudflare, "ip.src.is_in_european_union"
/// (<https://developers.cloudflare.com/ruleset-engine/rules-language/fields/reference/ip.src.is_in_european_union/>).
pub const EU_COUNTRIES: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT",
    "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", // the 27
    "AX", "GF", "GP", "MF", "MQ", "RE", "YT", // EU territories with codes of their own
];

/// The EFTA states in the European Economic Area: Iceland, Liechtenstein,
/// Norway (not Switzerland, which is in EFTA and not the EEA). Source:
/// EUR-Lex, "European Economic Area (EEA)"
/// (<https://eur-lex.europa.eu/summary/glossary/eea.html>); EFTA
/// (<https://www.efta.int/eea>).
pub const EEA_EFTA_COUNTRIES: &[&str] = &["IS", "LI", "NO"];

/// The AWS regions in EU member states, where an event whose residency is
/// the EU may be stored (`eu-west-2` is London and `eu-central-2` Zurich:
/// outside the EU despite their names). Source: AWS, "Regions and
/// Availability Zones" (<https://aws.amazon.com/about-aws/global-infrastructure/regions_az/>).
pub const AWS_EU_REGIONS: &[&str] = &[
    "eu-west-1",    // Ireland
    "eu-central-1", // Frankfurt
    "eu-west-3",    // Paris
    "eu-north-1",   // Stockholm
    "eu-south-1",   // Milan
    "eu-south-2",   // Spain
];

/// The jurisdiction an AWS region keeps data in, for failover: `eu` for
/// [`AWS_EU_REGIONS`], else the region's own name (a standby outside the EU
/// must then be the same region, or is refused).
pub fn jurisdiction_of(aws_region: &str) -> &str {
    if AWS_EU_REGIONS.contains(&aws_region) {
        "eu"
    } else {
        aws_region
    }
}

/// The countries of a group name (`EU`, `EEA`), if it is one.
pub fn group(name: &str) -> Option<Vec<&'static str>> {
    match name.to_ascii_uppercase().as_str() {
        "EU" => Some(EU_COUNTRIES.to_vec()),
        "EEA" => Some(EU_COUNTRIES.iter().chain(EEA_EFTA_COUNTRIES).copied().collect()),
        _ => None,
    }
}

/// One region of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Its name (`eu`), lower case; its settings' prefix is its upper case
    /// and `_` (`EU_`).
    pub name: String,
    /// The countries it serves.
    pub countries: Vec<String>,
    /// Whether it serves every other request.
    pub default: bool,
    /// Fields taken out of each event (`<NAME>_STRIP`).
    pub strip: Vec<String>,
    /// Fields replaced by their keyed hash (`<NAME>_HASH`).
    pub hash: Vec<String>,
    /// The key of those hashes (`<NAME>_HASH_SECRET`), when any are hashed.
    pub hash_secret: Option<HashSecret>,
    /// The region its events fail over to (`<NAME>_STANDBY`).
    pub standby: Option<String>,
}

impl Region {
    /// The prefix of its settings and bindings: `EU_` for `eu`.
    pub fn prefix(&self) -> String {
        prefix_of(&self.name)
    }
}

/// The prefix of region `name`'s settings and bindings.
pub fn prefix_of(name: &str) -> String {
    format!("{}_", name.to_ascii_uppercase())
}

/// A hash key; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct HashSecret(pub Vec<u8>);

impl std::fmt::Debug for HashSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashSecret(** redacted **)")
    }
}

/// The least a hash key may be, in bytes: a short key can be guessed, and
/// with it every hashed id checked against a list.
pub const MIN_HASH_SECRET_BYTES: usize = 16;

/// The regions and which countries each serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    regions: Vec<Region>,
}

impl Policy {
    /// The setting that names the regions.
    pub const SETTING: &'static str = "REGIONS";

    /// Parses `REGIONS` (`"eu: EEA CH; us: *"`): regions separated by `;`,
    /// each a name, `:`, and its countries or groups (space- or
    /// comma-separated), `*` for the default.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut regions: Vec<Region> = Vec::new();
        for item in text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, countries) = item
                .split_once(':')
                .ok_or_else(|| format!("has {item:?}, which is not name: countries (eu: EEA CH)"))?;
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) || name.len() > 16 {
                return Err(format!(
                    "has region name {name:?}: a region is named by 1 to 16 letters and digits (eu, us, eu2)"
                ));
            }
            if regions.iter().any(|r| r.name == name) {
                return Err(format!("names region {name:?} twice"));
            }
            let mut region = Region {
                name,
                countries: Vec::new(),
                default: false,
                strip: Vec::new(),
                hash: Vec::new(),
                hash_secret: None,
                standby: None,
            };
            for code in countries.split([' ', ',']).map(str::trim).filter(|c| !c.is_empty()) {
                if code == "*" {
                    region.default = true;
                } else if let Some(members) = group(code) {
                    region.countries.extend(members.into_iter().map(str::to_owned));
                } else if code.len() == 2 && code.chars().all(|c| c.is_ascii_alphabetic()) {
                    region.countries.push(code.to_ascii_uppercase());
                } else {
                    return Err(format!(
                        "has {code:?} in region {:?}: a country is an ISO 3166-1 alpha-2 code (DE), a group (EU, EEA), or * for every other",
                        region.name
                    ));
                }
            }
            regions.push(region);
        }
        match regions.iter().filter(|r| r.default).count() {
            1 => {}
            0 => return Err("has no region marked * (where every other request goes)".to_owned()),
            _ => return Err("marks more than one region * (where every other request goes)".to_owned()),
        }
        for (i, r) in regions.iter().enumerate() {
            for c in &r.countries {
                if let Some(other) = regions[..i].iter().find(|o| o.countries.contains(c)) {
                    return Err(format!(
                        "puts country {c} in both region {:?} and region {:?}",
                        other.name, r.name
                    ));
                }
            }
        }
        Ok(Self { regions })
    }

    /// Reads `REGIONS` and each region's `_STRIP`, `_HASH`, `_HASH_SECRET`
    /// and `_STANDBY`; `None` without `REGIONS`.
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Option<Self>, SettingError> {
        let Some(text) = s.get(Self::SETTING) else {
            return Ok(None);
        };
        let mut policy = Self::parse(&text).map_err(|e| SettingError::new(Self::SETTING, e))?;
        let names: Vec<String> = policy.regions.iter().map(|r| r.name.clone()).collect();
        for region in &mut policy.regions {
            let p = region.prefix();
            region.strip = s.list(&format!("{p}STRIP"));
            region.hash = s.list(&format!("{p}HASH"));
            for (setting, paths) in [("STRIP", &region.strip), ("HASH", &region.hash)] {
                if let Some(bad) = paths.iter().find(|f| f.split('.').any(str::is_empty)) {
                    return Err(SettingError::new(
                        &format!("{p}{setting}"),
                        format!("has {bad:?}: a field is a dotted path in the event (userId, context.ip)"),
                    ));
                }
            }
            if !region.hash.is_empty() {
                let name = format!("{p}HASH_SECRET");
                let secret = s.required(&name)?;
                if secret.len() < MIN_HASH_SECRET_BYTES {
                    return Err(SettingError::new(
                        &name,
                        format!("is shorter than {MIN_HASH_SECRET_BYTES} bytes"),
                    ));
                }
                region.hash_secret = Some(HashSecret(secret.into_bytes()));
            }
            if let Some(standby) = s.get(&format!("{p}STANDBY")) {
                let standby = standby.to_ascii_lowercase();
                if standby == region.name || !names.contains(&standby) {
                    return Err(SettingError::new(
                        &format!("{p}STANDBY"),
                        format!("= {standby:?} is not another region of REGIONS ({})", names.join(", ")),
                    ));
                }
                region.standby = Some(standby);
            }
        }
        Ok(Some(policy))
    }

    /// Every region, in the setting's order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The region named `name`.
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// The region a request from `country` (`request.cf.country`) goes to.
    pub fn route(&self, country: Option<&str>) -> &Region {
        let country = country.map(str::trim).unwrap_or_default();
        self.regions
            .iter()
            .find(|r| r.countries.iter().any(|c| c.eq_ignore_ascii_case(country)))
            .or_else(|| self.regions.iter().find(|r| r.default))
            .unwrap_or_else(|| unreachable!("a parsed policy has its default region"))
    }
}

/// Readies envelope lines for `region`: the region written into each (its
/// consumer and redrive send it there, and nowhere else), and the event's
/// fields stripped and hashed as the region's policy says.
pub fn apply(lines: &mut [String], region: &Region) {
    let member = format!(r#""region":{},"#, serde_json::Value::String(region.name.clone()));
    for line in lines.iter_mut() {
        if (!region.strip.is_empty() || !region.hash.is_empty())
            && let Cow::Owned(edited) = edit_event(line, region)
        {
            *line = edited;
        }
    }
    crate::label::insert_member(lines, &member);
}

/// An envelope line with its event's fields stripped and hashed.
fn edit_event<'a>(line: &'a str, region: &Region) -> Cow<'a, str> {
    let Ok(envelope) = Members::parse(line) else {
        return Cow::Borrowed(line);
    };
    let Some(event) = envelope.get("event") else {
        return Cow::Borrowed(line);
    };
    let mut edited: Cow<'_, str> = Cow::Borrowed(event.get());
    for path in &region.strip {
        let segments: Vec<&str> = path.split('.').collect();
        if let Cow::Owned(s) = crate::json::edit_member(&edited, &segments, &|_| None) {
            edited = Cow::Owned(s);
        }
    }
    if let Some(secret) = &region.hash_secret {
        for path in &region.hash {
            let segments: Vec<&str> = path.split('.').collect();
            let hash = |raw: &RawValue| Some(hashed(raw, &secret.0));
            if let Cow::Owned(s) = crate::json::edit_member(&edited, &segments, &hash) {
                edited = Cow::Owned(s);
            }
        }
    }
    match edited {
        Cow::Borrowed(_) => Cow::Borrowed(line),
        Cow::Owned(event_text) => {
            let base = line.as_ptr() as usize;
            let start = event.get().as_ptr() as usize - base;
            let end = start + event.get().len();
            Cow::Owned(format!("{}{event_text}{}", &line[..start], &line[end..]))
        }
    }
}

/// A value's keyed hash, as a JSON string: HMAC-SHA-256 of its text (a
/// string's content, any other value's JSON) under `secret`, in hex.
fn hashed(raw: &RawValue, secret: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let text = crate::json::string(raw).map_or_else(|| raw.get().to_owned(), Cow::into_owned);
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(text.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    serde_json::Value::String(hex).to_string()
}

#[cfg(test)]
mod tests;
