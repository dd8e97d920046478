//! Visitor passes at the centre: issued when a booking is approved, signed with the site's pass
//! key, shown on a page reachable by an unguessable link, revoked with their booking.
//!
//! (Foundation stub: filled in by the pass work of issue 21.)

use crate::central::db::{Db, RepoError};

/// The public page of a booking's pass (`/pass/{secret}`), if a pass has been issued for it.
pub async fn link_for_booking(db: &Db, booking_id: i64) -> Result<Option<String>, RepoError> {
    let _ = (db, booking_id);
    Ok(None)
}
