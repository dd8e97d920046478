//! Reading everything the lane decides from in bulk: [`Store::load`] as domain values and
//! [`Store::load_index`] straight into the decision index, through rusqlite on the blocking
//! pool, on two threads whose read transactions see the same data version.
//!
//! This module never writes and never decides.

use std::num::NonZeroU16;
use std::path::Path;
use std::time::Duration;

use super::{RuleCache, Snapshot, Store, StoreError, invalid, sql_err};
use crate::domain::text::{TextError, parse_category, parse_gate_rights, parse_schedule};
use crate::domain::{
    Credential, Epc, Permit, PermitId, PermitStatus, PersonId, PlateIdentity, Tid, UtcMinute,
    Vehicle, VehicleId,
};
use crate::gate::index::{Index, IndexBuild, PermitFields, PermitTable, VehicleTable};
use crate::wire::rows::{BlacklistRecord, BookingRecord, LockRecord, parse_colour, parse_plate};

impl Store {
    /// Reads everything the lane decides from, as one consistent snapshot.
    ///
    /// A million permits are three million rows; sqlx hands SQLite rows over one by one through
    /// its worker thread (far too slow for that; benches/README.md), so this bulk read goes
    /// through rusqlite on the blocking pool instead, on two threads whose read transactions
    /// see the same data version (or it is read again in one).
    pub async fn load(&self) -> Result<Snapshot, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || load_blocking(&path))
            .await
            .map_err(|e| invalid("store", "load", e))?
    }

    /// Reads everything the lane decides from straight into its decision index, as one
    /// consistent snapshot: what [`Store::load`] reads, without the domain values in between.
    /// The permits are read and indexed on one thread while the vehicles and tags are on
    /// another; its time is `store_load_index_1m_permits` of `cargo bench --bench gate_latency`.
    pub async fn load_index(&self) -> Result<Index, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || load_index_blocking(&path))
            .await
            .map_err(|e| invalid("store", "load", e))?
    }
}

fn corrupt(what: &'static str, key: u32, e: TextError) -> StoreError {
    invalid(what, key, e)
}

/// Reads every permit, handing each to `each` as borrowed fields: the index build takes them
/// as they are, without a `Permit` made per row only to be taken apart.
fn each_permit(
    tx: &rusqlite::Transaction<'_>,
    mut each: impl FnMut(PermitFields<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    // Most permits share a handful of gate-rights and schedule texts: parse each text once.
    let RuleCache { gates, schedules } = &mut RuleCache::default();
    let mut stmt = tx
        .prepare(
            "SELECT id, category, holder_id, holder_name, department, status, status_reason, \
             valid_from, valid_until, gates, schedule, single_use, max_inside, version FROM permits",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let text = |i: usize| -> Result<&str, StoreError> {
            row.get_ref(i)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(sql_err)
        };
        let int = |i: usize| -> Result<i64, StoreError> { row.get::<_, i64>(i).map_err(sql_err) };
        let id = int(0)? as u32;
        let status = match text(5)? {
            "active" => PermitStatus::Active,
            "suspended" => PermitStatus::Suspended {
                reason: text(6)?.into(),
            },
            _ => PermitStatus::Revoked {
                reason: text(6)?.into(),
            },
        };
        each(PermitFields {
            id: PermitId(id),
            category: parse_category(text(1)?).map_err(|e| corrupt("permit", id, e))?,
            person: PersonId(int(2)? as u32),
            name: text(3)?,
            department: text(4)?,
            status: &status,
            valid_from: UtcMinute(int(7)? as u32),
            valid_until: UtcMinute(int(8)? as u32),
            gates: gates
                .get(text(9)?, parse_gate_rights)
                .map_err(|e| corrupt("permit", id, e))?,
            schedule: schedules
                .get(text(10)?, parse_schedule)
                .map_err(|e| corrupt("permit", id, e))?,
            single_use: int(11)? != 0,
            max_inside: row
                .get::<_, Option<i64>>(12)
                .map_err(sql_err)?
                .and_then(|n| NonZeroU16::new(n as u16)),
            version: int(13)? as u32,
        })?;
    }
    Ok(())
}

/// Reads every vehicle, handing each to `each` with the permits it holds.
fn each_vehicle(
    tx: &rusqlite::Transaction<'_>,
    mut each: impl FnMut(VehicleId, PlateIdentity, &[PermitId]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare("SELECT id, plate, colour, permit_ids FROM vehicles")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let mut permit_ids = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        let id = row.get::<_, i64>(0).map_err(sql_err)? as u32;
        let text = |i: usize| -> Result<&str, StoreError> {
            row.get_ref(i)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(sql_err)
        };
        permit_ids.clear();
        for s in text(3)?.split(',').filter(|s| !s.is_empty()) {
            permit_ids
                .push(PermitId(s.parse().map_err(|_| {
                    invalid("vehicle", id, "permit ids are not numbers")
                })?));
        }
        let plate = PlateIdentity {
            plate: parse_plate(text(1)?).map_err(|e| corrupt("vehicle", id, e))?,
            colour: parse_colour(text(2)?).map_err(|e| corrupt("vehicle", id, e))?,
        };
        each(VehicleId(id), plate, &permit_ids)?;
    }
    Ok(())
}

/// Reads every issued tag, handing each to `each`.
fn each_credential(
    tx: &rusqlite::Transaction<'_>,
    mut each: impl FnMut(Credential) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare("SELECT epc, tid, vehicle_id FROM credentials")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let epc = row
            .get_ref(0)
            .and_then(|v| v.as_str().map_err(Into::into))
            .map_err(sql_err)?;
        let tid: Option<&str> = row
            .get_ref(1)
            .and_then(|v| v.as_str_or_null().map_err(Into::into))
            .map_err(sql_err)?;
        let vehicle_id = row.get::<_, i64>(2).map_err(sql_err)? as u32;
        each(Credential {
            epc: Epc::from_hex(epc).map_err(|e| invalid("credential", epc, e))?,
            tid: tid
                .map(|t| Tid::from_hex(t).map_err(|e| invalid("credential", epc, e)))
                .transpose()?,
            vehicle_id: VehicleId(vehicle_id),
        })?;
    }
    Ok(())
}

/// How many rows `table` has, so that a bulk read reserves room for them once (a cheap
/// query; growing the `Vec`s instead copies them and briefly holds them twice).
fn count(tx: &rusqlite::Transaction<'_>, table: &str) -> Result<usize, StoreError> {
    tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
    .map_err(sql_err)
}

/// The permits as domain values.
fn read_permits(tx: &rusqlite::Transaction<'_>) -> Result<Vec<Permit>, StoreError> {
    let mut permits = Vec::with_capacity(count(tx, "permits")?);
    each_permit(tx, |p| {
        permits.push(p.to_permit());
        Ok(())
    })?;
    Ok(permits)
}

/// The vehicles and their tags as domain values, into `snapshot`.
fn read_vehicles_and_tags(
    tx: &rusqlite::Transaction<'_>,
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    snapshot.vehicles.reserve(count(tx, "vehicles")?);
    each_vehicle(tx, |id, plate, permits| {
        snapshot.vehicles.push(Vehicle {
            id,
            plate,
            permit_ids: permits.into(),
        });
        Ok(())
    })?;
    snapshot.credentials.reserve(count(tx, "credentials")?);
    each_credential(tx, |c| {
        snapshot.credentials.push(c);
        Ok(())
    })
}

/// The permit half of an index build, read and sealed.
fn read_permit_table(
    tx: &rusqlite::Transaction<'_>,
    build: &IndexBuild,
) -> Result<PermitTable, StoreError> {
    let mut permits = build.permits(count(tx, "permits")?);
    each_permit(tx, |p| Ok(permits.push(p)?))?;
    Ok(permits.seal()?)
}

/// The vehicle half of an index build, read and sealed, with the lists.
fn read_vehicle_table(
    tx: &rusqlite::Transaction<'_>,
    build: &IndexBuild,
) -> Result<(VehicleTable, Snapshot), StoreError> {
    let mut vehicles = build.vehicles(count(tx, "vehicles")?, count(tx, "credentials")?);
    each_vehicle(tx, |id, plate, permits| {
        Ok(vehicles.push_vehicle(id, plate, permits.iter().copied())?)
    })?;
    each_credential(tx, |c| Ok(vehicles.push_credential(c)?))?;
    let mut lists = Snapshot::default();
    read_lists(tx, &mut lists)?;
    Ok((vehicles.seal()?, lists))
}

fn read_lists(tx: &rusqlite::Transaction<'_>, snapshot: &mut Snapshot) -> Result<(), StoreError> {
    let opt_text = |row: &rusqlite::Row<'_>, i: usize| -> Result<Option<String>, StoreError> {
        row.get::<_, Option<String>>(i).map_err(sql_err)
    };
    let mut stmt = tx
        .prepare(
            "SELECT id, subject_kind, subject, colour, reason, valid_from, valid_until, alarm FROM blacklist",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let b = BlacklistRecord {
            id: row.get::<_, i64>(0).map_err(sql_err)? as u32,
            subject_kind: row.get(1).map_err(sql_err)?,
            subject: row.get(2).map_err(sql_err)?,
            colour: opt_text(row, 3)?,
            reason: row.get(4).map_err(sql_err)?,
            valid_from: row.get::<_, i64>(5).map_err(sql_err)? as u32,
            valid_until: row.get::<_, i64>(6).map_err(sql_err)? as u32,
            alarm: row.get(7).map_err(sql_err)?,
        };
        snapshot.blacklist.push(
            b.to_domain()
                .map_err(|e| corrupt("blacklist entry", b.id, e))?,
        );
    }
    drop(rows);
    drop(stmt);

    let mut stmt = tx
        .prepare("SELECT id, plate, colour, reason, valid_from, valid_until FROM locks")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let l = LockRecord {
            id: row.get::<_, i64>(0).map_err(sql_err)? as u32,
            plate: row.get(1).map_err(sql_err)?,
            colour: opt_text(row, 2)?,
            reason: row.get(3).map_err(sql_err)?,
            valid_from: row.get::<_, i64>(4).map_err(sql_err)? as u32,
            valid_until: row.get::<_, i64>(5).map_err(sql_err)? as u32,
        };
        snapshot
            .locks
            .push(l.to_domain().map_err(|e| corrupt("lock entry", l.id, e))?);
    }
    drop(rows);
    drop(stmt);

    let mut stmt = tx
        .prepare(
            "SELECT id, plate, colour, visitor_name, host_id, purpose, slot_from, slot_until, status, \
             pass_used_entry, pass_used_exit FROM bookings",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let b = BookingRecord {
            id: row.get::<_, i64>(0).map_err(sql_err)? as u32,
            plate: row.get(1).map_err(sql_err)?,
            colour: opt_text(row, 2)?,
            visitor_name: row.get(3).map_err(sql_err)?,
            host_id: row.get::<_, i64>(4).map_err(sql_err)? as u32,
            purpose: row.get(5).map_err(sql_err)?,
            slot_from: row.get::<_, i64>(6).map_err(sql_err)? as u32,
            slot_until: row.get::<_, i64>(7).map_err(sql_err)? as u32,
            status: row.get(8).map_err(sql_err)?,
            pass_used_entry: row.get(9).map_err(sql_err)?,
            pass_used_exit: row.get(10).map_err(sql_err)?,
        };
        snapshot
            .bookings
            .push(b.to_domain().map_err(|e| corrupt("booking", b.id, e))?);
    }
    Ok(())
}

/// Opens a read-only connection and runs `read` in one read transaction; returns the data
/// version that transaction saw with what `read` made.
fn read_part<T>(
    path: &Path,
    read: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
) -> Result<(u64, T), StoreError> {
    use rusqlite::OpenFlags;
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(sql_err)?;
    let tx = conn.transaction().map_err(sql_err)?;
    let version = tx
        .query_row(
            "SELECT data_version FROM store_state WHERE id = 1",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(sql_err)? as u64;
    Ok((version, read(&tx)?))
}

/// Runs `permits` and `rest` on two threads, each in its own read transaction. If an update
/// slipped in between (their data versions differ), both run again in one transaction, so
/// what they read is always one consistent version.
fn read_in_two<P: Send, R: Send>(
    path: &Path,
    permits: impl Fn(&rusqlite::Transaction<'_>) -> Result<P, StoreError> + Sync,
    rest: impl Fn(&rusqlite::Transaction<'_>) -> Result<R, StoreError>,
) -> Result<(u64, P, R), StoreError> {
    let (p, r) = std::thread::scope(|scope| {
        let p = scope.spawn(|| read_part(path, &permits));
        let r = read_part(path, &rest);
        (p.join().expect("the permit reader does not panic"), r)
    });
    let ((vp, p), (vr, r)) = (p?, r?);
    if vp == vr {
        return Ok((vp, p, r));
    }
    let (version, (p, r)) = read_part(path, |tx| Ok((permits(tx)?, rest(tx)?)))?;
    Ok((version, p, r))
}

/// The bulk read behind [`Store::load`] (blocking).
fn load_blocking(path: &Path) -> Result<Snapshot, StoreError> {
    let (version, permits, mut all) = read_in_two(path, read_permits, |tx| {
        let mut s = Snapshot::default();
        read_vehicles_and_tags(tx, &mut s)?;
        read_lists(tx, &mut s)?;
        Ok(s)
    })?;
    all.permits = permits;
    all.data_version = version;
    Ok(all)
}

/// The bulk read behind [`Store::load_index`] (blocking): each half of the index is built on
/// the thread that reads its rows.
fn load_index_blocking(path: &Path) -> Result<Index, StoreError> {
    let build = IndexBuild::new();
    let (version, permits, (vehicles, lists)) = read_in_two(
        path,
        |tx| read_permit_table(tx, &build),
        |tx| read_vehicle_table(tx, &build),
    )?;
    Ok(build.finish(
        version,
        permits,
        vehicles,
        lists.blacklist,
        lists.locks,
        lists.bookings,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PlateColour;
    use crate::gate::store::tests::permit_row;
    use crate::wire::rows::{CredentialRecord, PermitRecord, Update, VehicleRecord};

    /// Every answer the index gives about the keys the test stored, as plain text.
    fn answers(index: &Index, plates: &[&str], epcs: &[&str]) -> Vec<String> {
        let now = UtcMinute(1);
        let mut out = vec![format!(
            "v{} counts {} {} {}",
            index.data_version(),
            index.permit_count(),
            index.vehicle_count(),
            index.credential_count()
        )];
        for i in 0..12 {
            if let Some(p) = index.permit(PermitId(i)) {
                let vehicles: Vec<u32> = p.vehicles().map(|v| v.id().0).collect();
                out.push(format!(
                    "permit {i} {:?} {:?} {} {:?} {:?} {:?} {:?} {:?} {:?} {} {:?} v{} {vehicles:?}",
                    p.category(),
                    p.status(),
                    p.person_id(),
                    p.holder_name(),
                    p.department(),
                    p.valid_from(),
                    p.valid_until(),
                    p.gates(),
                    p.schedule(),
                    p.single_use(),
                    p.max_inside(),
                    p.version(),
                ));
            }
            if let Some(v) = index.vehicle(VehicleId(i)) {
                let permits: Vec<u32> = v.permits().map(|p| p.id().0).collect();
                out.push(format!("vehicle {i} {} {permits:?}", v.plate()));
            }
            let mut of: Vec<u32> = index
                .permits_of_person(PersonId(i))
                .map(|p| p.id().0)
                .collect();
            of.sort();
            out.push(format!("person {i} {of:?}"));
        }
        for plate in plates {
            let plate = PlateIdentity {
                plate: parse_plate(plate).unwrap(),
                colour: PlateColour::Blue,
            };
            let vehicle = index.vehicle_by_plate(plate).map(|v| v.id());
            let black: Vec<_> = index.blacklist_for_plate(plate, now).collect();
            let locks: Vec<_> = index.locks_for(plate, now).collect();
            let bookings: Vec<_> = index.bookings_for(plate).collect();
            out.push(format!(
                "plate {plate} {vehicle:?} {black:?} {locks:?} {bookings:?}"
            ));
        }
        for epc in epcs {
            let c = index.credential(&Epc::from_hex(epc).unwrap());
            out.push(format!(
                "tag {epc} {:?}",
                c.map(|c| (c.tid(), c.vehicle().id()))
            ));
        }
        out
    }

    #[tokio::test]
    async fn the_index_read_straight_from_the_store_answers_like_one_built_from_its_domain_values()
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        let mut permits: Vec<PermitRecord> = (1..=6).map(permit_row).collect();
        permits[1].status = "suspended".into();
        permits[1].status_reason = "年检过期".into();
        permits[2].status = "revoked".into();
        permits[2].status_reason = "离职".into();
        permits[3].schedule = String::new();
        permits[3].department = String::new();
        permits[3].holder_id = 1; // a second permit of person 1
        permits[4].gates = "1:entry+exit;2:exit".into();
        permits[4].single_use = true;
        permits[4].max_inside = None;
        permits[5].category = "visitor".into();
        permits[5].valid_from = 29_000_000;
        permits[5].valid_until = 29_100_000;
        let vehicle = |id: u32, plate: &str, permit_ids: Vec<u32>| VehicleRecord {
            id,
            plate: plate.into(),
            colour: "blue".into(),
            permit_ids,
        };
        let update = Update {
            data_version: 42,
            permits,
            vehicles: vec![
                vehicle(1, "京A10001", vec![1, 4]),
                vehicle(2, "京A10002", vec![1]),
                vehicle(3, "沪B20003", vec![2, 3, 5]),
                vehicle(4, "粤C30004", vec![]),
            ],
            credentials: vec![
                CredentialRecord {
                    epc: "E20000000000000000000001".into(),
                    tid: Some("E2801160200000000000000A".into()),
                    vehicle_id: 1,
                },
                CredentialRecord {
                    epc: "E20000000000000000000002".into(),
                    tid: None,
                    vehicle_id: 1,
                },
                CredentialRecord {
                    epc: "E20000000000000000000003".into(),
                    tid: None,
                    vehicle_id: 3,
                },
            ],
            blacklist: vec![BlacklistRecord {
                id: 1,
                subject_kind: "plate".into(),
                subject: "粤C30004".into(),
                colour: None,
                reason: "盗抢车辆".into(),
                valid_from: 0,
                valid_until: u32::MAX,
                alarm: "urgent".into(),
            }],
            locks: vec![LockRecord {
                id: 1,
                plate: "沪B20003".into(),
                colour: Some("blue".into()),
                reason: "欠费".into(),
                valid_from: 0,
                valid_until: u32::MAX,
            }],
            bookings: vec![BookingRecord {
                id: 1,
                plate: "苏E50005".into(),
                colour: None,
                visitor_name: "李四".into(),
                host_id: 2,
                purpose: "讲座".into(),
                slot_from: 0,
                slot_until: 100,
                status: "approved".into(),
                pass_used_entry: false,
                pass_used_exit: false,
            }],
            ..Update::default()
        };
        store.apply(&update).await.unwrap();

        let direct = store.load_index().await.unwrap();
        let snapshot = store.load().await.unwrap();
        let built = snapshot.build().unwrap();
        let plates = ["京A10001", "京A10002", "沪B20003", "粤C30004", "苏E50005"];
        let epcs = [
            "E20000000000000000000001",
            "E20000000000000000000002",
            "E20000000000000000000003",
            "E20000000000000000000009",
        ];
        let expected = answers(&built, &plates, &epcs);
        assert_eq!(answers(&direct, &plates, &epcs), expected);
        // The comparison is not between two empty answers.
        for line in [
            "v42 counts 6 4 3",
            "person 1 [1, 4]",
            "tag E20000000000000000000003 Some((None, VehicleId(3)))",
        ] {
            assert!(
                expected.iter().any(|l| l == line),
                "{line} not in {expected:#?}"
            );
        }
        assert!(
            expected
                .iter()
                .any(|l| l.starts_with("permit 2 Staff Suspended") && l.contains("年检过期"))
        );
        assert!(
            expected
                .iter()
                .any(|l| l.starts_with("plate 粤C30004") && l.contains("盗抢车辆"))
        );
    }

    #[tokio::test]
    async fn stored_rows_that_make_no_index_are_refused_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Store::open(&path).await.unwrap();
        store
            .apply(&Update {
                data_version: 1,
                permits: vec![permit_row(1)],
                ..Update::default()
            })
            .await
            .unwrap();
        // Written behind the store's back: a vehicle holding a permit that is not there.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO vehicles (id, plate, colour, permit_ids) VALUES (5, '京A12345', 'blue', '1,99')",
                [],
            )
            .unwrap();
        let err = store.load_index().await.unwrap_err();
        assert!(matches!(err, StoreError::Index(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the stored rows do not make an index: vehicle 5 holds permit 99, which is not in the snapshot"
        );
    }
}
