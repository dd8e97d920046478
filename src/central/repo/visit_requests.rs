//! Self-booked visit requests (访客自助预约): the row that ties a visitor's status token to the
//! pending booking it made, the visitor's own e-mail on that booking, and the site's secret the
//! status tokens are signed with.
//!
//! Only the token's SHA-256 is stored: the database alone cannot open anyone's status page.
//!
//! What it never does: validate a request or find its host (the API does both first, and calls
//! in here only for a valid request whose host exists), or create the booking itself
//! (`repo::bookings::create` does, with its audit and change log).

use sqlx::Row;

use crate::central::db::{Db, RepoError, now_ms};

/// The SHA-256 of a token, in hex, as stored.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Ties the token to its booking and sets the visitor's e-mail on the booking, in one
/// transaction.
pub async fn attach(
    db: &Db,
    token: &str,
    booking_id: i64,
    visitor_email: &str,
    source: &str,
) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE visitor_bookings SET visitor_email = $2 WHERE id = $1")
        .bind(booking_id)
        .bind(visitor_email)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO visit_requests (token_hash, booking_id, source, created_ms) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash(token))
    .bind(booking_id)
    .bind(source)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The booking a token's request made, if it was stored.
pub async fn booking_of(db: &Db, token: &str) -> Result<Option<i64>, RepoError> {
    Ok(
        sqlx::query_scalar("SELECT booking_id FROM visit_requests WHERE token_hash = $1")
            .bind(token_hash(token))
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The visitor's e-mail on a booking (empty when none was given).
pub async fn visitor_email(db: &Db, booking_id: i64) -> Result<String, RepoError> {
    let row = sqlx::query("SELECT visitor_email FROM visitor_bookings WHERE id = $1")
        .bind(booking_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.get("visitor_email")).unwrap_or_default())
}

/// Whether the booking was asked for by a visitor (self-booking) rather than entered by staff.
pub async fn is_self_booked(db: &Db, booking_id: i64) -> Result<bool, RepoError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM visit_requests WHERE booking_id = $1")
        .bind(booking_id)
        .fetch_one(db.pool())
        .await?;
    Ok(n > 0)
}

/// The site's token secret (32 random bytes, hex), made on first use. Two instances racing to
/// make it both read the one that was stored first.
pub async fn secret(db: &Db) -> Result<Vec<u8>, RepoError> {
    let read = |db: &Db| {
        let pool = db.pool().clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT secret FROM visit_request_secret WHERE id = 1")
                .fetch_optional(&pool)
                .await
        }
    };
    if let Some(hex_secret) = read(db).await? {
        return Ok(hex::decode(hex_secret).unwrap_or_default());
    }
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    sqlx::query(
        "INSERT INTO visit_request_secret (id, secret) VALUES (1, $1) ON CONFLICT DO NOTHING",
    )
    .bind(hex::encode(bytes))
    .execute(db.pool())
    .await?;
    let stored = read(db).await?.unwrap_or_default();
    Ok(hex::decode(stored).unwrap_or_default())
}

/// Sets the visitor's e-mail on a booking a host made directly.
pub async fn set_visitor_email(db: &Db, booking_id: i64, email: &str) -> Result<(), RepoError> {
    sqlx::query("UPDATE visitor_bookings SET visitor_email = $2 WHERE id = $1")
        .bind(booking_id)
        .bind(email)
        .execute(db.pool())
        .await?;
    Ok(())
}
