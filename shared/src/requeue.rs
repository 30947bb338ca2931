//! The queue consumer's own retries: what did not land goes back to an
//! events queue as a new message, later, carrying how many times the
//! consumer has tried it; what landed is never sent again.
//!
//! Cloudflare's own retry (`message.retry()`) resends the whole message, at
//! once unless told otherwise, and after the consumer's `max_retries`
//! deletes it (or moves it to a dead-letter queue); a sink outage of a few
//! minutes would burn every retry and a partial failure would resend what
//! already landed. So the consumer acks a message whose lines it could not
//! all deliver, and writes the lines that did not land as a new message
//! with a growing `delaySeconds`, its first line saying which attempt comes
//! next. Only after [`RequeuePolicy::attempts`] tries (about an hour and a
//! half by default) are they dead-lettered.
//!
//! ```
//! use edgehose_shared::requeue::{QueueBody, RequeuePolicy, Next};
//! use edgehose_shared::clock::SeededRandom;
//!
//! let body = QueueBody::frame(&["{\"id\":\"a\"}", "{\"id\":\"b\"}"], 3);
//! let read = QueueBody::parse(&body);
//! assert_eq!((read.tries, read.lines.len()), (3, 2));
//! // The fourth failed try: back in 20 to 40 s (5 s doubled three times, jittered).
//! match RequeuePolicy::default().after(read.tries + 1, &SeededRandom::new(1)) {
//!     Next::Retry { delay_seconds } => assert!((20..=40).contains(&delay_seconds)),
//!     Next::GiveUp => unreachable!(),
//! }
//! ```

use crate::clock::RandomSource;
use crate::limits::QUEUE_MAX_DELAY_SECONDS;
use crate::settings::{SettingError, Settings};

/// How a message's first line says the consumer already tried its lines:
/// `#edgehose tries=N`. An envelope line is a JSON object, so it never
/// begins with `#`.
const HEADER: &str = "#edgehose tries=";

/// A queue message's body, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueBody<'a> {
    /// How many consumer runs already failed to deliver these lines (0 for
    /// a message the request path wrote).
    pub tries: u32,
    /// The envelope lines, empty ones left out.
    pub lines: Vec<&'a str>,
}

impl<'a> QueueBody<'a> {
    /// Reads a body: an optional header line, then envelope lines.
    pub fn parse(body: &'a str) -> Self {
        let mut tries = 0;
        let mut lines = Vec::new();
        for (i, line) in body.split('\n').enumerate() {
            if i == 0
                && let Some(n) = line.strip_prefix(HEADER)
            {
                tries = n.trim().parse().unwrap_or(0);
                continue;
            }
            if !line.is_empty() {
                lines.push(line);
            }
        }
        Self { tries, lines }
    }

    /// A body of `lines` that the consumer already tried `tries` times.
    pub fn frame<S: AsRef<str>>(lines: &[S], tries: u32) -> String {
        let mut out = String::with_capacity(lines.iter().map(|l| l.as_ref().len() + 1).sum::<usize>() + 24);
        if tries > 0 {
            out.push_str(HEADER);
            out.push_str(&tries.to_string());
            out.push('\n');
        }
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(l.as_ref());
        }
        out
    }

    /// The bytes the header adds to a body whose lines were tried `tries` times.
    pub fn header_bytes(tries: u32) -> usize {
        if tries == 0 {
            0
        } else {
            HEADER.len() + tries.to_string().len() + 1
        }
    }
}

/// What to do with lines after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send them back to the queue, delivered again this many seconds later.
    Retry {
        /// `delaySeconds` for the new message.
        delay_seconds: u32,
    },
    /// Tried often enough: dead-letter them.
    GiveUp,
}

/// How long and how often the consumer tries lines before dead-lettering them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequeuePolicy {
    /// Tries in all (`QUEUE_DELIVERY_ATTEMPTS`, 1 to 1000).
    pub attempts: u32,
    /// The delay after the first failed try, in seconds (`QUEUE_RETRY_BASE_SECONDS`);
    /// it doubles with each try.
    pub base_seconds: u32,
    /// The longest delay (`QUEUE_RETRY_MAX_SECONDS`, at most 12 hours).
    pub max_seconds: u32,
}

impl Default for RequeuePolicy {
    /// 24 tries, 5 s doubling to 5 minutes: 5,415 s (an hour and a half) of
    /// sink outage before anything is dead-lettered.
    fn default() -> Self {
        Self {
            attempts: 24,
            base_seconds: 5,
            max_seconds: 300,
        }
    }
}

impl RequeuePolicy {
    /// Reads `QUEUE_DELIVERY_ATTEMPTS`, `QUEUE_RETRY_BASE_SECONDS` and
    /// `QUEUE_RETRY_MAX_SECONDS` (defaults above).
    pub fn from_settings<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, SettingError> {
        let d = Self::default();
        let attempts = s.usize_or("QUEUE_DELIVERY_ATTEMPTS", d.attempts as usize)?;
        if !(1..=1000).contains(&attempts) {
            return Err(SettingError::new(
                "QUEUE_DELIVERY_ATTEMPTS",
                format!("= {attempts} is invalid: expected 1 to 1000 tries"),
            ));
        }
        let max = QUEUE_MAX_DELAY_SECONDS as usize;
        let base_seconds = s
            .usize_or("QUEUE_RETRY_BASE_SECONDS", d.base_seconds as usize)?
            .min(max) as u32;
        let max_seconds = s.usize_or("QUEUE_RETRY_MAX_SECONDS", d.max_seconds as usize)?.min(max) as u32;
        Ok(Self {
            attempts: attempts as u32,
            base_seconds,
            max_seconds: max_seconds.max(base_seconds),
        })
    }

    /// After the `tried`-th failed try: back to the queue after a delay
    /// drawn from the upper half of the doubling ceiling (so messages that
    /// failed together do not all come back in the same second), or give up.
    pub fn after(&self, tried: u32, random: &dyn RandomSource) -> Next {
        if tried >= self.attempts {
            return Next::GiveUp;
        }
        Next::Retry {
            delay_seconds: jittered(growing(self.base_seconds, self.max_seconds, tried), random),
        }
    }

    /// The most time lines may spend retried before they are dead-lettered,
    /// in seconds (the delays' ceilings summed).
    pub fn longest_seconds(&self) -> u64 {
        (1..self.attempts)
            .map(|n| u64::from(growing(self.base_seconds, self.max_seconds, n)))
            .sum()
    }
}

/// `base × 2^(n-1)`, at most `max` (and at most 12 hours).
pub fn growing(base: u32, max: u32, n: u32) -> u32 {
    let doubled = u64::from(base) << n.saturating_sub(1).min(32);
    doubled.min(u64::from(max)).min(u64::from(QUEUE_MAX_DELAY_SECONDS)) as u32
}

/// A delay in the upper half of `ceiling`: `[ceiling/2, ceiling]`.
pub fn jittered(ceiling: u32, random: &dyn RandomSource) -> u32 {
    let half = ceiling / 2;
    let spread = u64::from(ceiling - half) + 1;
    half + (random.next_u64() % spread) as u32
}

/// The delay before Cloudflare redelivers a message this Worker could not
/// act on at all — its configuration unreadable, its archive unwritable —
/// on its `attempts`-th delivery: a minute, doubling, up to 12 hours, so a
/// bad deploy or an R2 outage has hours to be mended before the queue's
/// `max_retries` run out, rather than minutes.
pub fn redelivery_delay_seconds(attempts: u32) -> u32 {
    growing(60, QUEUE_MAX_DELAY_SECONDS, attempts.max(1))
}

#[cfg(test)]
mod tests {
    use super::{Next, QueueBody, RequeuePolicy, growing, redelivery_delay_seconds};
    use crate::clock::SeededRandom;
    use crate::limits::QUEUE_MAX_DELAY_SECONDS;
    use crate::settings::Settings;

    #[test]
    fn a_body_keeps_its_lines_and_its_tries_through_framing() {
        let lines = ["{\"id\":\"a\"}", "{\"id\":\"b\"}"];
        for tries in [0, 1, 17] {
            let body = QueueBody::frame(&lines, tries);
            let read = QueueBody::parse(&body);
            assert_eq!(read.tries, tries);
            assert_eq!(read.lines, lines);
            let header = QueueBody::header_bytes(tries);
            assert_eq!(body.len(), header + lines[0].len() + 1 + lines[1].len());
        }
        // A body the request path wrote has no header.
        assert_eq!(QueueBody::frame(&lines, 0), "{\"id\":\"a\"}\n{\"id\":\"b\"}");
        // Empty lines are no lines; a header anywhere but first is a line.
        let read = QueueBody::parse("\n{}\n\n#edgehose tries=4\n");
        assert_eq!((read.tries, read.lines), (0, vec!["{}", "#edgehose tries=4"]));
    }

    #[test]
    fn delays_double_to_their_ceiling_with_jitter_in_the_upper_half() {
        let p = RequeuePolicy::default();
        let random = SeededRandom::new(9);
        let mut ceilings = Vec::new();
        for tried in 1..p.attempts {
            let Next::Retry { delay_seconds } = p.after(tried, &random) else {
                panic!("gave up after {tried} tries of {}", p.attempts);
            };
            let ceiling = growing(p.base_seconds, p.max_seconds, tried);
            assert!(
                (ceiling / 2..=ceiling).contains(&delay_seconds),
                "{delay_seconds} of {ceiling}"
            );
            ceilings.push(ceiling);
        }
        assert_eq!(&ceilings[..7], &[5, 10, 20, 40, 80, 160, 300]);
        assert_eq!(p.after(p.attempts, &random), Next::GiveUp);
        // A ten-minute outage is far inside what the default rides out.
        assert!(p.longest_seconds() > 3_600, "{}", p.longest_seconds());
    }

    #[test]
    fn settings_are_checked_and_clamped_to_the_queues_twelve_hours() {
        let read = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            RequeuePolicy::from_settings(&Settings::new(move |n: &str| {
                pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
            }))
        };
        assert_eq!(read(&[]).unwrap(), RequeuePolicy::default());
        let big = read(&[("QUEUE_RETRY_MAX_SECONDS", "999999"), ("QUEUE_RETRY_BASE_SECONDS", "2")]).unwrap();
        assert_eq!(big.max_seconds, QUEUE_MAX_DELAY_SECONDS);
        let err = read(&[("QUEUE_DELIVERY_ATTEMPTS", "0")]).unwrap_err();
        assert!(err.to_string().contains("QUEUE_DELIVERY_ATTEMPTS"), "{err}");
        assert!(read(&[("QUEUE_RETRY_BASE_SECONDS", "soon")]).is_err());
    }

    #[test]
    fn a_message_nothing_could_act_on_comes_back_later_each_time_up_to_twelve_hours() {
        let delays: Vec<u32> = (1..=12).map(redelivery_delay_seconds).collect();
        assert_eq!(&delays[..4], &[60, 120, 240, 480]);
        assert_eq!(*delays.last().unwrap(), QUEUE_MAX_DELAY_SECONDS);
        // Ten deliveries (wrangler.toml's max_retries) span more than eight hours.
        assert!(delays[..10].iter().map(|&d| u64::from(d)).sum::<u64>() > 8 * 3600);
    }
}
