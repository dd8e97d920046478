//! What every handler of the centre can reach: [`AppState`], built once by the server command
//! (or a test) and cloned into each request.
//!
//! What it never does: hold a request's data, or know which routes or pages exist.

use crate::central::bulk::jobs::Jobs;
use crate::central::config::AuthSettings;
use crate::central::db::Db;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    /// How long a session lasts (a guard's shift and a bit).
    pub session_ttl_ms: i64,
    /// Mark the session cookie `Secure` (when served over HTTPS).
    pub secure_cookies: bool,
    /// Sign-in and session settings: trusted proxies, idle expiry, the site's words.
    pub auth: std::sync::Arc<AuthSettings>,
    /// What the live pages listen on.
    pub live: crate::central::live::LiveHub,
    /// How long passage events are kept (`[retention]` in server.toml).
    pub retention: crate::central::retention::RetentionConfig,
    /// Bulk import jobs and their progress.
    pub jobs: Jobs,
    /// Woken by an upload that queued campus-presence changes, for the sync server's presence
    /// publisher ([`crate::central::repo::sync::publish_presence`]).
    pub presence_queued: std::sync::Arc<tokio::sync::Notify>,
    /// The site's time zone (`server.timezone`): the days, hours and local times shown and
    /// counted are its.
    pub site_tz: chrono_tz::Tz,
    /// Where uploaded photos are kept and for how long (`[photos]` in server.toml).
    pub photos: crate::central::photos::Photos,
    /// The key visitor passes are signed with (`[passes]`; none: bookings get no pass).
    pub passes: crate::central::passes::PassSigner,
    /// The public endpoints' rate limits and counters (self-booking, issue 21).
    pub public_limits: crate::central::rate_limit::PublicLimits,
}

impl AppState {
    /// State with the default settings: 12-hour sessions ending after 30 idle minutes, cookies
    /// without `Secure`, no trusted proxies.
    pub fn new(db: Db) -> AppState {
        AppState {
            db,
            session_ttl_ms: 12 * 3600 * 1000,
            secure_cookies: false,
            auth: Default::default(),
            live: crate::central::live::LiveHub::new(),
            retention: Default::default(),
            jobs: Default::default(),
            presence_queued: Default::default(),
            site_tz: crate::central::config::DEFAULT_TIMEZONE,
            photos: crate::central::photos::Photos::unconfigured(),
            passes: crate::central::passes::PassSigner::none(),
            public_limits: Default::default(),
        }
    }
}
