//! The lane state that must survive a restart: where each vehicle was last seen (presence),
//! the single-use permits and single-use visitor passes already used, each lane's mode, and the
//! site's public pass keys (so that a gate restarted while the centre is down still verifies
//! passes).
//!
//! This module never touches the data rows and never decides.

use sqlx::Row;

use super::{PresenceRecord, Store, StoreError};
use crate::domain::{BookingId, Direction, PermitId, VehicleId};
use crate::wire::pass::PassKeyWire;

impl Store {
    /// Every vehicle's last known presence.
    pub async fn load_presence(&self) -> Result<Vec<PresenceRecord>, StoreError> {
        let rows = sqlx::query("SELECT vehicle_id, inside, since_ms, gate FROM presence")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| PresenceRecord {
                vehicle_id: VehicleId(row.get(0)),
                inside: row.get(1),
                since_ms: row.get(2),
                gate: row.get(3),
            })
            .collect())
    }

    /// Records where a vehicle now is.
    pub async fn set_presence(&self, record: PresenceRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO presence (vehicle_id, inside, since_ms, gate) VALUES (?, ?, ?, ?) \
             ON CONFLICT (vehicle_id) DO UPDATE SET inside = excluded.inside, \
             since_ms = excluded.since_ms, gate = excluded.gate \
             WHERE excluded.since_ms >= presence.since_ms",
        )
        .bind(record.vehicle_id.0)
        .bind(record.inside)
        .bind(record.since_ms)
        .bind(record.gate)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Single-use permits already used here.
    pub async fn load_consumed(&self) -> Result<Vec<PermitId>, StoreError> {
        let ids: Vec<u32> = sqlx::query_scalar("SELECT permit_id FROM consumed")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(PermitId).collect())
    }

    /// Marks a single-use permit as used.
    pub async fn consume(&self, permit: PermitId, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO consumed (permit_id, at_ms) VALUES (?, ?)")
            .bind(permit.0)
            .bind(at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Single-use visitor passes granted here: (booking, direction).
    pub async fn load_consumed_passes(&self) -> Result<Vec<(BookingId, Direction)>, StoreError> {
        let rows = sqlx::query("SELECT booking_id, direction FROM consumed_passes")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let direction: String = row.get(1);
                let direction = if direction == "exit" {
                    Direction::Exit
                } else {
                    Direction::Entry
                };
                (BookingId(row.get(0)), direction)
            })
            .collect())
    }

    /// Marks a single-use visitor pass as used in `direction` (at the grant).
    pub async fn consume_pass(
        &self,
        booking: BookingId,
        direction: Direction,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR IGNORE INTO consumed_passes (booking_id, direction, at_ms) VALUES (?, ?, ?)",
        )
        .bind(booking.0)
        .bind(direction.as_str())
        .bind(at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The site's public pass keys as last received.
    pub async fn load_pass_keys(&self) -> Result<Vec<PassKeyWire>, StoreError> {
        let rows =
            sqlx::query("SELECT kid, public_key, retire_after_ms FROM pass_keys ORDER BY kid")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|row| PassKeyWire {
                kid: row.get::<i64, _>(0) as u16,
                public_key: row.get(1),
                retire_after_ms: row.get(2),
            })
            .collect())
    }

    /// Replaces the stored pass keys with `keys` (the centre's list is the whole list).
    pub async fn set_pass_keys(&self, keys: &[PassKeyWire]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM pass_keys")
            .execute(&mut *tx)
            .await?;
        for k in keys {
            sqlx::query(
                "INSERT OR REPLACE INTO pass_keys (kid, public_key, retire_after_ms) VALUES (?, ?, ?)",
            )
            .bind(k.kid)
            .bind(&k.public_key)
            .bind(k.retire_after_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stored mode of a lane, if one was ever set.
    pub async fn lane_mode(&self, lane: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT mode FROM lane_modes WHERE lane = ?")
                .bind(lane)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores a lane's mode.
    pub async fn set_lane_mode(&self, lane: &str, mode: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO lane_modes (lane, mode) VALUES (?, ?) \
             ON CONFLICT (lane) DO UPDATE SET mode = excluded.mode",
        )
        .bind(lane)
        .bind(mode)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn presence_never_goes_back_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        let at = |inside, since_ms| PresenceRecord {
            vehicle_id: VehicleId(1),
            inside,
            since_ms,
            gate: 1,
        };
        store.set_presence(at(true, 2000)).await.unwrap();
        store.set_presence(at(false, 1000)).await.unwrap();
        assert_eq!(store.load_presence().await.unwrap(), vec![at(true, 2000)]);
        store.set_presence(at(false, 3000)).await.unwrap();
        assert_eq!(store.load_presence().await.unwrap(), vec![at(false, 3000)]);
    }

    #[tokio::test]
    async fn consumed_passes_and_pass_keys_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let key = |kid, retire| PassKeyWire {
            kid,
            public_key: "ab".repeat(32),
            retire_after_ms: retire,
        };
        {
            let store = Store::open(&path).await.unwrap();
            store
                .consume_pass(BookingId(7), Direction::Entry, 1000)
                .await
                .unwrap();
            store
                .consume_pass(BookingId(7), Direction::Entry, 2000)
                .await
                .unwrap();
            store
                .set_pass_keys(&[key(1, Some(5)), key(2, None)])
                .await
                .unwrap();
            store
                .set_pass_keys(&[key(2, None), key(3, None)])
                .await
                .unwrap();
        }
        let store = Store::open(&path).await.unwrap();
        assert_eq!(
            store.load_consumed_passes().await.unwrap(),
            vec![(BookingId(7), Direction::Entry)]
        );
        assert_eq!(
            store.load_pass_keys().await.unwrap(),
            vec![key(2, None), key(3, None)]
        );
    }
}
