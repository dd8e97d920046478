//! Outside vehicles (外来车辆) at ingest: who a passage of a vehicle with no permit was, and the
//! outside-vehicle visit it opens or closes. The checkpoint records every vehicle it sees, so an
//! outside vehicle is counted without a guard typing: its plate, colour and photos come from the
//! camera read the lane journalled, its booth registration from the guard's open.
//!
//! [`identify`] runs inside the ingest's transaction, after the upload's events are inserted
//! and before the statistics are folded in ([`crate::central::traffic::apply_with`]), for each
//! passage that carries no permit and no vehicle (a booked visitor let in by plate, or a car the
//! guard let through). It looks back along the lane, in the events stored (this upload's and
//! earlier ones'), for what the passage followed since the lane's previous passage and within
//! [`LOOKBACK_MS`]:
//! - the camera read: a plate decision (granted on a booking, denied `denied_unknown_plate`,
//!   held for low confidence) or a `PlateIgnored` read — its plate (the passage's own, when the
//!   lane put one on it), colour and photos;
//! - the guard's open: an `Override` `open`; the booth's registration sends `visitor_registered`
//!   with the note `visit <id>`, which names the registration ([`crate::central::repo::visits`]).
//!
//! Without the note, a registration at the same gate and lane within [`BOOTH_WINDOW_MS`] before
//! the passage (of the same plate, when the plate is known) is taken, else an open registration
//! of the plate. A passage linked to a registration is a **visitor** (its category in the
//! statistics, its expected departure the registration's), not `unregistered`.
//!
//! [`record`] then writes `outside_vehicle_visits` (migration 0014): an entry opens a visit, an
//! exit closes the open visit of the same plate (or fills the out side of one whose exit came
//! first, or stands alone when no entry was seen); the exit of a registered visitor also closes
//! its registration. A guard-opened passage gets the plate it was identified by in the events'
//! `plate` column (the filter copy; the event body stays as the gate sent it), so searches by
//! plate find it.
//!
//! What it never does: read more than one lane's recent events per upload and lane (the cost
//! follows the outside passages, not the events stored), count a figure (the statistics do),
//! or take a passage with a permit for an outside vehicle. A passage identified by no plate at
//! all (no camera, no registration) is left out: nothing could match its exit or count it.

use std::collections::{BTreeMap, HashMap};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::central::db::{Actor, DbKind, Op, RepoError, kind_of, write_change};
use crate::domain::Plate;
use crate::wire::journal::{EventBody, JournalEvent, PlateReadRecord};

/// How far back along the lane a passage looks for the read and the guard's open it followed:
/// a visitor's car may wait at the barrier while the guard registers it.
pub const LOOKBACK_MS: i64 = 15 * 60_000;
/// How long before its passage a booth registration without the `visit <id>` note may be.
pub const BOOTH_WINDOW_MS: i64 = 15 * 60_000;
/// Slack for the gate's clock against the centre's when comparing a passage (gate time) with a
/// registration (centre time).
const CLOCK_SLACK_MS: i64 = 2 * 60_000;
/// How long an open registration of a plate stays a candidate for its entry.
const OPEN_VISIT_MS: i64 = 86_400_000;

/// A photo of a read, as pages fetch it (`GET /api/v1/photos/{sha256}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhotoBrief {
    /// Lower-case hex SHA-256 of the JPEG.
    pub sha256: String,
    /// `plate` (close-up) or `scene`.
    pub kind: String,
}

/// The booth registration a passage came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoothVisit {
    pub id: i64,
    pub booking_id: Option<i64>,
    pub expected_departure_ms: i64,
}

/// Who a passage was, beyond what its event says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Normalised plate: the passage's own, else its read's, else its registration's.
    pub plate: Option<String>,
    pub colour: Option<String>,
    pub photos: Vec<PhotoBrief>,
    /// The sequence number of the read (decision or `PlateIgnored`) it was identified by.
    pub read_seq: Option<i64>,
    /// No permit, no registered vehicle: an outside vehicle.
    pub outside: bool,
    /// The booth registration it came on (entries only).
    pub booth: Option<BoothVisit>,
}

/// The note of the guard's open a booth registration sends (`visit <id>`): how the passage it
/// opens for is linked to it.
pub fn registration_note(visit_id: i64) -> String {
    format!("visit {visit_id}")
}

/// The registration a guard's open note names, if it names one (the pages show it in words).
pub fn registration_of(note: &str) -> Option<i64> {
    note.strip_prefix("visit ")?.trim().parse().ok()
}

/// Identities of an upload's passages, by sequence number.
pub type Identities = HashMap<u64, Identity>;

/// The site's date (`YYYY-MM-DD`, in the site's zone `tz`) of an instant.
fn site_day(tz: Tz, at_ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .format("%Y-%m-%d")
        .to_string()
}

/// The photos of a camera read, as pages name them.
pub fn photos_of(read: &PlateReadRecord) -> Vec<PhotoBrief> {
    read.photos
        .iter()
        .map(|p| PhotoBrief {
            sha256: p.sha256.clone(),
            kind: p.kind.as_str().to_string(),
        })
        .collect()
}

/// A plate as the events table stores it (normalised when it parses).
pub fn normalise(text: &str) -> String {
    Plate::parse(text)
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|_| text.trim().to_string())
}

/// The registration region of a plate: its first character (京, 沪, 使, …), or `""`.
pub fn province_of(plate: &str) -> String {
    plate.chars().next().map(String::from).unwrap_or_default()
}

/// A registration region's name in zh-CN and English (the plate's first character; `None`
/// for one that is no region).
pub fn province_name(code: &str) -> Option<(&'static str, &'static str)> {
    PROVINCE_NAMES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, zh, en)| (*zh, *en))
}

/// The plate's first character → region, zh-CN and English (GA 36: the 31 provincial
/// abbreviations, then the special series).
const PROVINCE_NAMES: [(&str, &str, &str); 38] = [
    ("京", "北京", "Beijing"),
    ("津", "天津", "Tianjin"),
    ("冀", "河北", "Hebei"),
    ("晋", "山西", "Shanxi"),
    ("蒙", "内蒙古", "Inner Mongolia"),
    ("辽", "辽宁", "Liaoning"),
    ("吉", "吉林", "Jilin"),
    ("黑", "黑龙江", "Heilongjiang"),
    ("沪", "上海", "Shanghai"),
    ("苏", "江苏", "Jiangsu"),
    ("浙", "浙江", "Zhejiang"),
    ("皖", "安徽", "Anhui"),
    ("闽", "福建", "Fujian"),
    ("赣", "江西", "Jiangxi"),
    ("鲁", "山东", "Shandong"),
    ("豫", "河南", "Henan"),
    ("鄂", "湖北", "Hubei"),
    ("湘", "湖南", "Hunan"),
    ("粤", "广东", "Guangdong"),
    ("桂", "广西", "Guangxi"),
    ("琼", "海南", "Hainan"),
    ("渝", "重庆", "Chongqing"),
    ("川", "四川", "Sichuan"),
    ("贵", "贵州", "Guizhou"),
    ("云", "云南", "Yunnan"),
    ("藏", "西藏", "Tibet"),
    ("陕", "陕西", "Shaanxi"),
    ("甘", "甘肃", "Gansu"),
    ("青", "青海", "Qinghai"),
    ("宁", "宁夏", "Ningxia"),
    ("新", "新疆", "Xinjiang"),
    ("使", "使馆", "Embassy"),
    ("领", "领馆", "Consulate"),
    ("港", "香港", "Hong Kong"),
    ("澳", "澳门", "Macao"),
    ("W", "武警", "Armed Police"),
    ("学", "教练车", "Driving school"),
    ("警", "警车", "Police"),
];

/// One event of a lane's recent past, as the look-back reads it.
struct Context {
    at_ms: i64,
    journal_no: i64,
    seq: i64,
    body: EventBody,
}

/// Who each of `events`' passages without a permit or vehicle was (see the module doc), read
/// on the ingest's transaction. `events` are stored already (journal `journal_no` of `gate_id`).
pub async fn identify(
    conn: &mut AnyConnection,
    gate_id: i64,
    journal_no: i64,
    events: &[&JournalEvent],
) -> Result<Identities, RepoError> {
    let mut out = Identities::new();
    let candidates: Vec<&JournalEvent> = events
        .iter()
        .copied()
        .filter(|e| {
            matches!(&e.body, EventBody::Passage { permit_id: None, vehicle_id: None, direction, .. }
                if direction == "entry" || direction == "exit")
        })
        .collect();
    if candidates.is_empty() {
        return Ok(out);
    }
    let mut lanes: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for e in &candidates {
        let at = e.at.timestamp_millis();
        let span = lanes.entry(e.lane.as_str()).or_insert((at, at));
        span.0 = span.0.min(at);
        span.1 = span.1.max(at);
    }
    let mut context: HashMap<&str, Vec<Context>> = HashMap::new();
    for (lane, (low, high)) in &lanes {
        let rows = sqlx::query(
            "SELECT at_ms, journal_no, seq, body FROM passage_events WHERE gate_id = $1 \
             AND lane = $2 AND at_ms >= $3 AND at_ms <= $4 \
             AND kind IN ('decision', 'plate_ignored', 'override', 'passage') \
             ORDER BY at_ms, journal_no, seq",
        )
        .bind(gate_id)
        .bind(*lane)
        .bind(low - LOOKBACK_MS)
        .bind(*high)
        .fetch_all(&mut *conn)
        .await?;
        let mut list = Vec::with_capacity(rows.len());
        for r in rows {
            let body: String = r.try_get("body")?;
            // A body this centre cannot read (a newer gate's kind) identifies nothing.
            if let Ok(body) = serde_json::from_str::<EventBody>(&body) {
                list.push(Context {
                    at_ms: r.try_get("at_ms")?,
                    journal_no: r.try_get("journal_no")?,
                    seq: r.try_get("seq")?,
                    body,
                });
            }
        }
        context.insert(lane, list);
    }
    // The booth registrations, read once (at the first entry) for every entry of the upload.
    let entries = candidates.iter().filter(
        |e| matches!(&e.body, EventBody::Passage { direction, .. } if direction == "entry"),
    );
    let first_entry = entries
        .clone()
        .map(|e| e.at.timestamp_millis())
        .min()
        .unwrap_or(0);
    let last_entry = entries.map(|e| e.at.timestamp_millis()).max().unwrap_or(0);
    let named: Vec<i64> = context
        .values()
        .flatten()
        .filter_map(|c| match &c.body {
            EventBody::Override { note: Some(n), .. } => registration_of(n),
            _ => None,
        })
        .collect();
    let mut regs: Option<Vec<Registration>> = None;
    for e in candidates {
        let EventBody::Passage {
            direction, plate, ..
        } = &e.body
        else {
            continue;
        };
        let at = e.at.timestamp_millis();
        let own_plate = plate.as_deref().map(normalise);
        let mut id = Identity {
            plate: own_plate.clone(),
            outside: true,
            ..Identity::default()
        };
        let mut booth_note: Option<i64> = None;
        let mut guard_open = false;
        let before = context.get(e.lane.as_str()).map_or(&[][..], |v| &v[..]);
        for c in before.iter().rev() {
            let earlier = (c.at_ms, c.journal_no, c.seq) < (at, journal_no, e.seq as i64);
            if !earlier || c.at_ms < at - LOOKBACK_MS {
                continue;
            }
            match &c.body {
                // The previous vehicle through: what came before it was its.
                EventBody::Passage { .. } => break,
                EventBody::Override {
                    action,
                    reason,
                    note,
                    ..
                } if action == "open" && !guard_open => {
                    guard_open = true;
                    if reason == "visitor_registered" {
                        booth_note = note.as_deref().and_then(registration_of);
                    }
                }
                EventBody::Decision(d) if id.read_seq.is_none() => {
                    let read = d
                        .plate
                        .as_deref()
                        .or(d.camera.as_ref().map(|c| c.raw_plate.as_str()))
                        .map(normalise);
                    if read.is_some() && (own_plate.is_none() || own_plate == read) {
                        if d.permit_id.is_some() || d.vehicle_id.is_some() {
                            id.outside = false;
                        }
                        take_read(&mut id, c.seq, read, d.camera.as_deref());
                    }
                }
                EventBody::PlateIgnored { camera, .. } if id.read_seq.is_none() => {
                    let read = Some(normalise(&camera.raw_plate)).filter(|p| !p.is_empty());
                    if read.is_some() && (own_plate.is_none() || own_plate == read) {
                        take_read(&mut id, c.seq, read, Some(camera));
                    }
                }
                _ => {}
            }
        }
        if direction == "entry" {
            if regs.is_none() {
                regs = Some(registrations(conn, first_entry, last_entry, &named).await?);
            }
            if let Some(regs) = regs.as_mut() {
                id.booth = booth_visit(regs, gate_id, &e.lane, at, booth_note, &mut id.plate);
            }
        }
        out.insert(e.seq, id);
    }
    // A plate registered to a vehicle is no outside vehicle, however it came in.
    let mut plates: Vec<String> = out.values().filter_map(|i| i.plate.clone()).collect();
    plates.sort_unstable();
    plates.dedup();
    let mut registered = std::collections::HashSet::new();
    for chunk in plates.chunks(100) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT plate FROM vehicles WHERE plate IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for p in chunk {
            q = q.bind(p.as_str());
        }
        for r in q.fetch_all(&mut *conn).await? {
            registered.insert(r.try_get::<String, _>("plate")?);
        }
    }
    for id in out.values_mut() {
        if id.plate.as_ref().is_some_and(|p| registered.contains(p)) {
            id.outside = false;
        }
    }
    Ok(out)
}

fn take_read(id: &mut Identity, seq: i64, plate: Option<String>, camera: Option<&PlateReadRecord>) {
    id.read_seq = Some(seq);
    if id.plate.is_none() {
        id.plate = plate;
    }
    if let Some(camera) = camera {
        id.colour = camera.colour.clone();
        id.photos = photos_of(camera);
    }
}

/// A booth registration, as the linking reads it.
struct Registration {
    id: i64,
    booking_id: Option<i64>,
    expected_departure_ms: i64,
    plate: String,
    gate_id: i64,
    lane: String,
    arrived_ms: i64,
    left: bool,
    /// Linked to a passage already (not taken again).
    linked: bool,
}

/// The booth registrations the entries of an upload (at `low..=high` by the gate's clock, and
/// the registrations their guards' notes name) may have come on: read once, matched in memory.
async fn registrations(
    conn: &mut AnyConnection,
    low: i64,
    high: i64,
    named: &[i64],
) -> Result<Vec<Registration>, RepoError> {
    const COLS: &str = "v.id, v.booking_id, v.expected_departure_ms, v.plate, v.gate_id, \
         v.lane_key, v.arrived_ms, v.left_ms, CAST(CASE WHEN EXISTS (SELECT 1 FROM \
         outside_vehicle_visits o WHERE o.visit_id = v.id) THEN 1 ELSE 0 END AS BIGINT) AS linked";
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM visits v WHERE v.arrived_ms >= $1 AND v.arrived_ms <= $2"
    ))
    .bind(low - OPEN_VISIT_MS)
    .bind(high + CLOCK_SLACK_MS)
    .fetch_all(&mut *conn)
    .await?;
    let read = |r: &sqlx::any::AnyRow| -> Result<Registration, RepoError> {
        Ok(Registration {
            id: r.try_get("id")?,
            booking_id: r.try_get("booking_id")?,
            expected_departure_ms: r.try_get("expected_departure_ms")?,
            plate: r.try_get("plate")?,
            gate_id: r.try_get("gate_id")?,
            lane: r.try_get("lane_key")?,
            arrived_ms: r.try_get("arrived_ms")?,
            left: r.try_get::<Option<i64>, _>("left_ms")?.is_some(),
            linked: r.try_get::<i64, _>("linked")? != 0,
        })
    };
    let mut regs = rows.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    // A note naming a registration from outside the window (a gate clock far off).
    for id in named {
        if regs.iter().any(|r| r.id == *id) {
            continue;
        }
        if let Some(r) = sqlx::query(&format!("SELECT {COLS} FROM visits v WHERE v.id = $1"))
            .bind(*id)
            .fetch_optional(&mut *conn)
            .await?
        {
            regs.push(read(&r)?);
        }
    }
    Ok(regs)
}

/// The booth registration an entry at `gate_id`/`lane` at `at` came on (see the module doc),
/// filling in the plate from it when the passage had none; marked linked, so no other passage
/// takes it.
fn booth_visit(
    regs: &mut [Registration],
    gate_id: i64,
    lane: &str,
    at: i64,
    note: Option<i64>,
    plate: &mut Option<String>,
) -> Option<BoothVisit> {
    let near = |r: &Registration| {
        r.gate_id == gate_id
            && r.lane == lane
            && r.arrived_ms >= at - BOOTH_WINDOW_MS - CLOCK_SLACK_MS
            && r.arrived_ms <= at + CLOCK_SLACK_MS
    };
    let newest = |regs: &[Registration], ok: &dyn Fn(&Registration) -> bool| {
        regs.iter()
            .enumerate()
            .filter(|(_, r)| !r.linked && ok(r))
            .max_by_key(|(_, r)| (r.arrived_ms, r.id))
            .map(|(i, _)| i)
    };
    let by_note = note.and_then(|id| regs.iter().position(|r| r.id == id && r.gate_id == gate_id));
    let found = by_note.or_else(|| match plate.as_deref() {
        Some(p) => newest(regs, &|r| near(r) && r.plate == p).or_else(|| {
            newest(regs, &|r| {
                r.plate == p
                    && !r.left
                    && r.arrived_ms >= at - OPEN_VISIT_MS
                    && r.arrived_ms <= at + CLOCK_SLACK_MS
            })
        }),
        None => newest(regs, &near),
    })?;
    let r = &mut regs[found];
    r.linked = true;
    if plate.is_none() {
        *plate = Some(r.plate.clone());
    }
    Some(BoothVisit {
        id: r.id,
        booking_id: r.booking_id,
        expected_departure_ms: r.expected_departure_ms,
    })
}

/// What the statistics decided about a passage (its category, expected departure, booking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub category: String,
    /// The category is `visitor` (booked or booth-registered).
    pub visitor: bool,
    pub expected_leave_ms: Option<i64>,
    pub booking_id: Option<i64>,
}

/// Writes the outside-vehicle visits `events`' identified passages open and close (see the
/// module doc), on the ingest's transaction. `resolved` is what the statistics made of each
/// passage (by sequence number): a `visitor` is a booth-registered or booked visitor.
pub async fn record(
    conn: &mut AnyConnection,
    tz: Tz,
    gate_id: i64,
    journal_no: i64,
    events: &[&JournalEvent],
    ids: &Identities,
    resolved: &HashMap<u64, Resolved>,
) -> Result<(), RepoError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut events: Vec<&JournalEvent> = events.to_vec();
    events.sort_by_key(|e| (e.at.timestamp_millis(), e.seq));
    lock_plates(conn, ids).await?;
    for e in events {
        let (
            Some(id),
            EventBody::Passage {
                direction, plate, ..
            },
        ) = (ids.get(&e.seq), &e.body)
        else {
            continue;
        };
        let Some(found) = id.plate.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        let seq = e.seq as i64;
        if plate.is_none() {
            sqlx::query(
                "UPDATE passage_events SET plate = $1 WHERE gate_id = $2 AND journal_no = $3 \
                 AND seq = $4 AND plate IS NULL",
            )
            .bind(found)
            .bind(gate_id)
            .bind(journal_no)
            .bind(seq)
            .execute(&mut *conn)
            .await?;
        }
        if !id.outside {
            continue;
        }
        let at = e.at.timestamp_millis();
        let day = site_day(tz, at);
        let photos = serde_json::to_string(&id.photos).unwrap_or_else(|_| "[]".into());
        let r = resolved.get(&e.seq);
        if direction == "entry" {
            let visitor = id.booth.is_some() || r.is_some_and(|r| r.visitor);
            let expected = id
                .booth
                .as_ref()
                .map(|b| b.expected_departure_ms)
                .or(r.and_then(|r| r.expected_leave_ms));
            let booking = id
                .booth
                .as_ref()
                .and_then(|b| b.booking_id)
                .or(r.and_then(|r| r.booking_id));
            // An exit uploaded before its entry (another gate's upload came first).
            let waiting: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM outside_vehicle_visits WHERE plate = $1 AND at_in_ms IS NULL \
                 AND at_out_ms >= $2 ORDER BY at_out_ms LIMIT 1",
            )
            .bind(found)
            .bind(at)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = waiting {
                sqlx::query(
                    "UPDATE outside_vehicle_visits SET day = $1, gate_in = $2, lane_in = $3, \
                     journal_in = $4, seq_in = $5, read_seq_in = $6, at_in_ms = $7, \
                     visit_id = $8, booking_id = $9, visitor = $10, expected_leave_ms = $11, \
                     colour = COALESCE(colour, $12), photos = $13 WHERE id = $14",
                )
                .bind(day)
                .bind(gate_id)
                .bind(e.lane.as_str())
                .bind(journal_no)
                .bind(seq)
                .bind(id.read_seq)
                .bind(at)
                .bind(id.booth.as_ref().map(|b| b.id))
                .bind(booking)
                .bind(i64::from(visitor))
                .bind(expected)
                .bind(id.colour.as_deref())
                .bind(merge_photos(conn, row, &id.photos).await?)
                .bind(row)
                .execute(&mut *conn)
                .await?;
            } else {
                sqlx::query(
                    "INSERT INTO outside_vehicle_visits (plate, colour, province, day, gate_in, \
                     lane_in, journal_in, seq_in, read_seq_in, at_in_ms, visit_id, booking_id, \
                     visitor, expected_leave_ms, photos) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                     $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(found)
                .bind(id.colour.as_deref())
                .bind(province_of(found))
                .bind(day)
                .bind(gate_id)
                .bind(e.lane.as_str())
                .bind(journal_no)
                .bind(seq)
                .bind(id.read_seq)
                .bind(at)
                .bind(id.booth.as_ref().map(|b| b.id))
                .bind(booking)
                .bind(i64::from(visitor))
                .bind(expected)
                .bind(photos)
                .execute(&mut *conn)
                .await?;
            }
        } else {
            let open = sqlx::query(
                "SELECT id, visit_id FROM outside_vehicle_visits WHERE plate = $1 \
                 AND at_out_ms IS NULL AND at_in_ms <= $2 ORDER BY at_in_ms DESC LIMIT 1",
            )
            .bind(found)
            .bind(at)
            .fetch_optional(&mut *conn)
            .await?;
            match open {
                Some(row) => {
                    let row_id: i64 = row.try_get("id")?;
                    let visit_id: Option<i64> = row.try_get("visit_id")?;
                    let merged = merge_photos(conn, row_id, &id.photos).await?;
                    sqlx::query(
                        "UPDATE outside_vehicle_visits SET gate_out = $1, lane_out = $2, \
                         journal_out = $3, seq_out = $4, read_seq_out = $5, at_out_ms = $6, \
                         colour = COALESCE(colour, $7), photos = $8 WHERE id = $9",
                    )
                    .bind(gate_id)
                    .bind(e.lane.as_str())
                    .bind(journal_no)
                    .bind(seq)
                    .bind(id.read_seq)
                    .bind(at)
                    .bind(id.colour.as_deref())
                    .bind(merged)
                    .bind(row_id)
                    .execute(&mut *conn)
                    .await?;
                    if let Some(visit) = visit_id {
                        close_registration(conn, visit, at).await?;
                    }
                }
                None => {
                    sqlx::query(
                        "INSERT INTO outside_vehicle_visits (plate, colour, province, day, \
                         gate_out, lane_out, journal_out, seq_out, read_seq_out, at_out_ms, \
                         visitor, photos) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11)",
                    )
                    .bind(found)
                    .bind(id.colour.as_deref())
                    .bind(province_of(found))
                    .bind(day)
                    .bind(gate_id)
                    .bind(e.lane.as_str())
                    .bind(journal_no)
                    .bind(seq)
                    .bind(id.read_seq)
                    .bind(at)
                    .bind(photos)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
    }
    Ok(())
}

/// On PostgreSQL, holds a transaction lock on each outside plate of the upload (in one order,
/// so two uploads never wait on each other crosswise), so an entry uploaded by one gate and
/// its exit by another at the same moment are matched: the later sees the earlier committed.
/// SQLite has one writer at a time anyway.
async fn lock_plates(conn: &mut AnyConnection, ids: &Identities) -> Result<(), RepoError> {
    use sha2::Digest as _;
    if kind_of(conn) != DbKind::Postgres {
        return Ok(());
    }
    let mut keys: Vec<i64> = ids
        .values()
        .filter(|i| i.outside)
        .filter_map(|i| i.plate.as_deref())
        .map(|p| {
            let d = sha2::Sha256::digest(format!("outside_vehicle_visits:{p}").as_bytes());
            i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        // A void column is no type the Any driver reads: select a number beside it.
        sqlx::query("SELECT CAST(1 AS BIGINT) AS locked FROM (SELECT pg_advisory_xact_lock($1)) l")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The visit's photos with `more` added (each photo once).
async fn merge_photos(
    conn: &mut AnyConnection,
    row: i64,
    more: &[PhotoBrief],
) -> Result<String, RepoError> {
    let held: String =
        sqlx::query_scalar("SELECT photos FROM outside_vehicle_visits WHERE id = $1")
            .bind(row)
            .fetch_one(&mut *conn)
            .await?;
    let mut photos: Vec<PhotoBrief> = serde_json::from_str(&held).unwrap_or_default();
    for p in more {
        if !photos.contains(p) {
            photos.push(p.clone());
        }
    }
    Ok(serde_json::to_string(&photos).unwrap_or_else(|_| "[]".into()))
}

/// The registered visitor drove out at `at`: its booth registration is closed (audited as the
/// system), unless a guard closed it already.
async fn close_registration(
    conn: &mut AnyConnection,
    visit: i64,
    at: i64,
) -> Result<(), RepoError> {
    let closed = sqlx::query("UPDATE visits SET left_ms = $1 WHERE id = $2 AND left_ms IS NULL")
        .bind(at)
        .bind(visit)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if closed > 0 {
        let after = serde_json::json!({ "left_ms": at, "by": "exit passage" });
        write_change(
            conn,
            &Actor::system(),
            Op::Audit("leave"),
            "visit",
            visit,
            None,
            Some(&after),
        )
        .await?;
    }
    Ok(())
}

/// A guard corrected the plate of the read `seq` of `gate_id`'s journal `journal_no`: the
/// outside-vehicle visits identified by it take the corrected plate and colour (their province
/// with it). For the corrections endpoint to call in its own transaction.
pub async fn apply_correction(
    conn: &mut AnyConnection,
    gate_id: i64,
    journal_no: i64,
    seq: i64,
    plate: &str,
    colour: Option<&str>,
) -> Result<u64, RepoError> {
    let plate = normalise(plate);
    let n = sqlx::query(
        "UPDATE outside_vehicle_visits SET plate = $1, province = $2, \
         colour = COALESCE($3, colour) WHERE (gate_in = $4 AND journal_in = $5 \
         AND (read_seq_in = $6 OR seq_in = $6)) OR (gate_out = $4 AND journal_out = $5 \
         AND (read_seq_out = $6 OR seq_out = $6))",
    )
    .bind(plate.as_str())
    .bind(province_of(&plate))
    .bind(colour)
    .bind(gate_id)
    .bind(journal_no)
    .bind(seq)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provincial_abbreviation_of_a_plate_has_a_name() {
        for p in crate::domain::plate::PROVINCES {
            let code = p.to_string();
            assert!(province_name(&code).is_some(), "{code} has no name");
        }
        assert_eq!(province_name("沪"), Some(("上海", "Shanghai")));
        assert_eq!(province_of("京A12345"), "京");
        assert_eq!(province_of(""), "");
        assert_eq!(province_name("X"), None);
    }

    fn reg(id: i64, plate: &str, lane: &str, arrived_ms: i64) -> Registration {
        Registration {
            id,
            booking_id: None,
            expected_departure_ms: arrived_ms + 3_600_000,
            plate: plate.into(),
            gate_id: 1,
            lane: lane.into(),
            arrived_ms,
            left: false,
            linked: false,
        }
    }

    #[test]
    fn an_entry_takes_the_registration_its_note_names_else_the_newest_near_one_and_each_once() {
        let at = 10_000_000;
        let mut regs = vec![
            reg(1, "京A11111", "entry", at - 60_000),
            reg(2, "京A22222", "entry", at - 30_000),
            reg(3, "京A33333", "exit", at - 10_000),
            reg(
                4,
                "京A44444",
                "entry",
                at - BOOTH_WINDOW_MS - CLOCK_SLACK_MS - 1,
            ),
        ];
        // The note wins over the plate read and the time.
        let mut plate = Some("京A22222".to_string());
        let b = booth_visit(&mut regs, 1, "entry", at, Some(1), &mut plate).unwrap();
        assert_eq!((b.id, plate.as_deref()), (1, Some("京A22222")));
        // No note, no plate: the newest registration at the lane, its plate taken.
        let mut plate = None;
        let b = booth_visit(&mut regs, 1, "entry", at, None, &mut plate).unwrap();
        assert_eq!((b.id, plate.as_deref()), (2, Some("京A22222")));
        // Both taken now; the other lane's and the one before the window are not candidates.
        let mut plate = None;
        assert_eq!(
            booth_visit(&mut regs, 1, "entry", at, None, &mut plate),
            None
        );
        // A plate with an open registration elsewhere (another lane) still finds it.
        let mut plate = Some("京A33333".to_string());
        let b = booth_visit(&mut regs, 1, "entry", at, None, &mut plate).unwrap();
        assert_eq!(b.id, 3);
        // Another gate's note names nothing here.
        let mut plate = None;
        assert_eq!(
            booth_visit(&mut regs, 2, "entry", at, Some(4), &mut plate),
            None
        );
    }

    #[test]
    fn a_registrations_note_names_it_and_other_notes_name_none() {
        assert_eq!(registration_of(&registration_note(42)), Some(42));
        assert_eq!(registration_of("visit forty-two"), None);
        assert_eq!(registration_of("delivery"), None);
    }
}
