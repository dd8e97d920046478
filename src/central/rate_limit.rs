//! Rate limits of the public endpoints and pages (self-booking: no sign-in, so nothing but the
//! source address stands between them and a script): so many submits per ten minutes and so
//! many status reads per minute per source, answered 429 with `Retry-After` and a zh-CN/English
//! message.
//!
//! - The source is [`crate::central::api::auth::ClientAddr`] — the socket peer, or behind a trusted proxy the
//!   address it forwarded, exactly as sign-in throttling sees it. An IPv6 source counts by its
//!   /64 (one subscriber's prefix), so one phone cannot walk its own addresses.
//! - Fixed windows counted in memory, per instance (a limit is a brake on abuse, not an
//!   account; a restart forgets it).
//! - Bounded memory: at most [`RateLimits::max_sources`] sources per kind are remembered. When
//!   the table is full, ended windows are dropped; if it is still full, every new source shares
//!   one overflow counter — an attacker with many addresses throttles themselves, never grows
//!   the table.
//!
//! What it never does: touch the database, or build an answer (the public API answers 429 with
//! `Retry-After`, the pages their own page): it lives beside [`crate::central::state`], which
//! holds its counters, and names nothing of the API.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most `max` in each `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

/// The public endpoints' limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Visit requests submitted (`POST /api/v1/public/visit-requests`).
    pub submit: Limit,
    /// Status reads (the status page and its JSON; the pass page may share it).
    pub read: Limit,
    /// Sources remembered per kind before new ones share the overflow counter.
    pub max_sources: usize,
    /// A public submit is answered no sooner than this after it arrived, whether or not its
    /// host exists and anything was stored: the answer's timing says nothing about people.
    pub answer_floor: Duration,
}

impl Default for RateLimits {
    /// 5 submits per 10 minutes, 30 reads per minute, 10 000 sources, answers after 300 ms.
    fn default() -> RateLimits {
        RateLimits {
            submit: Limit {
                max: 5,
                window: Duration::from_secs(600),
            },
            read: Limit {
                max: 30,
                window: Duration::from_secs(60),
            },
            max_sources: 10_000,
            answer_floor: Duration::from_millis(300),
        }
    }
}

impl RateLimits {
    /// Limits no test run reaches (schemathesis sends hundreds of requests from one address).
    pub fn generous() -> RateLimits {
        RateLimits {
            submit: Limit {
                max: 1_000_000,
                window: Duration::from_secs(60),
            },
            read: Limit {
                max: 1_000_000,
                window: Duration::from_secs(60),
            },
            max_sources: 10_000,
            answer_floor: Duration::from_millis(0),
        }
    }
}

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Submit,
    Read,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// The key every source shares once the table is full.
const OVERFLOW: &str = "*";

#[derive(Debug, Default)]
struct Table {
    windows: HashMap<String, Window>,
}

/// The limits and their counters; cheap to clone (one per [`crate::central::state::AppState`]).
#[derive(Debug, Clone)]
pub struct PublicLimits {
    limits: Arc<RateLimits>,
    tables: Arc<Mutex<HashMap<Kind, Table>>>,
}

impl Default for PublicLimits {
    fn default() -> PublicLimits {
        PublicLimits::new(RateLimits::default())
    }
}

impl PublicLimits {
    pub fn new(limits: RateLimits) -> PublicLimits {
        PublicLimits {
            limits: Arc::new(limits),
            tables: Arc::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Counts one request of `kind` from `source` at `now`: `Ok` if it is within the limit,
    /// `Err(wait)` with the time until the source's window ends otherwise.
    pub fn check_at(&self, kind: Kind, source: &str, now: Instant) -> Result<(), Duration> {
        let limit = match kind {
            Kind::Submit => self.limits.submit,
            Kind::Read => self.limits.read,
        };
        let key = source_key(source);
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let table = tables.entry(kind).or_default();
        let key =
            if table.windows.contains_key(&key) || table.windows.len() < self.limits.max_sources {
                key
            } else {
                table
                    .windows
                    .retain(|_, w| now.saturating_duration_since(w.start) < limit.window);
                if table.windows.len() < self.limits.max_sources {
                    key
                } else {
                    OVERFLOW.to_string()
                }
            };
        let window = table.windows.entry(key).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.saturating_duration_since(window.start) >= limit.window {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        if window.count >= limit.max {
            return Err(limit
                .window
                .saturating_sub(now.saturating_duration_since(window.start)));
        }
        window.count += 1;
        Ok(())
    }

    /// How many sources of `kind` are remembered (for tests of the bound).
    pub fn remembered(&self, kind: Kind) -> usize {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.get(&kind).map_or(0, |t| t.windows.len())
    }
}

/// The counter a source's requests go to: an IPv4 address (or an IPv4-mapped IPv6 one) as
/// itself, an IPv6 address by its /64, anything else (no socket: "unknown") as given.
fn source_key(source: &str) -> String {
    match source.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => source.to_string(),
    }
}

/// `Retry-After` seconds of a wait (at least 1), for answers that are not the API's (pages).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: u32, sources: usize) -> PublicLimits {
        PublicLimits::new(RateLimits {
            submit: Limit {
                max,
                window: Duration::from_secs(600),
            },
            read: Limit {
                max,
                window: Duration::from_secs(60),
            },
            max_sources: sources,
            answer_floor: Duration::ZERO,
        })
    }

    #[test]
    fn a_source_over_its_limit_waits_until_its_window_ends_and_then_is_served_again() {
        let l = limits(3, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at(Kind::Submit, "10.0.0.1", t0).is_ok());
        }
        let wait = l
            .check_at(Kind::Submit, "10.0.0.1", t0 + Duration::from_secs(100))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(500));
        // Another source and another kind are counted apart.
        assert!(l.check_at(Kind::Submit, "10.0.0.2", t0).is_ok());
        assert!(l.check_at(Kind::Read, "10.0.0.1", t0).is_ok());
        assert!(
            l.check_at(Kind::Submit, "10.0.0.1", t0 + Duration::from_secs(600))
                .is_ok()
        );
    }

    #[test]
    fn ipv6_sources_count_by_their_slash_64() {
        let l = limits(1, 100);
        let t0 = Instant::now();
        assert!(l.check_at(Kind::Submit, "2001:db8:1:2::1", t0).is_ok());
        assert!(l.check_at(Kind::Submit, "2001:db8:1:2::ffff", t0).is_err());
        assert!(l.check_at(Kind::Submit, "2001:db8:1:3::1", t0).is_ok());
    }

    #[test]
    fn many_sources_never_grow_the_table_past_its_bound_and_share_the_overflow_counter() {
        let l = limits(2, 10);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let source = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            let _ = l.check_at(Kind::Submit, &source, t0);
        }
        assert!(l.remembered(Kind::Submit) <= 11);
        // New sources share the overflow counter, long spent by now.
        assert!(l.check_at(Kind::Submit, "192.0.2.1", t0).is_err());
        // Once the windows end, the table makes room for new sources again.
        let later = t0 + Duration::from_secs(601);
        assert!(l.check_at(Kind::Submit, "192.0.2.1", later).is_ok());
        assert!(l.remembered(Kind::Submit) <= 11);
    }
}
