//! The checkpoint's records (过车记录) and the outside vehicles (外来车辆), read back: the passage
//! search (every vehicle a lane saw: its decisions, the camera reads it did not act on, and
//! the passages, with the read's colour, confidence and photos, and the guard's corrected
//! plate), the outside-vehicle visits [`crate::central::outside::record`] keeps, and their
//! statistics (per day, gate, province of registration, dwell time; overstays; repeat
//! visitors).
//!
//! A guard's plate correction (`plate_corrections`, migration 0015) is joined in by
//! [`corrections`]: the search finds a passage by its corrected plate, and shows both.
//!
//! What it never does: write anything, or decide which gates a caller may see (the API passes
//! [`PassageQuery::only_gates`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::at;
use super::stats::Days;
use crate::central::db::{Db, Filter, Page, Paged, RepoError, like_contains};
use crate::central::outside::{PhotoBrief, photos_of, province_name};
use crate::wire::journal::EventBody;

/// (columns, join, plate) that add a passage's corrected plate and colour (`corrected_plate`,
/// `corrected_colour`) to a query over `passage_events e`, and the expression of the plate as
/// corrected (the corrected one when there is one).
pub fn corrections() -> (&'static str, &'static str, &'static str) {
    (
        "pc.plate AS corrected_plate, pc.colour AS corrected_colour",
        " LEFT JOIN plate_corrections pc ON pc.gate_id = e.gate_id \
         AND pc.journal_no = e.journal_no AND pc.seq = e.seq",
        "COALESCE(pc.plate, e.plate)",
    )
}

/// What a lane did with a vehicle, for the passage search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Granted,
    /// Denied (not held).
    Denied,
    /// A low-confidence read held for the guard.
    Held,
    /// A camera read the lane did not act on.
    Ignored,
}

impl Outcome {
    /// From its code (`granted`, `denied`, `held`, `ignored`).
    pub fn from_code(code: &str) -> Option<Outcome> {
        Some(match code {
            "granted" => Outcome::Granted,
            "denied" => Outcome::Denied,
            "held" => Outcome::Held,
            "ignored" => Outcome::Ignored,
            _ => return None,
        })
    }
}

/// Filters of [`search`], combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassageQuery {
    /// Part of a plate (upper case, no separators), anywhere in it; the corrected plate when
    /// there is one.
    pub plate: Option<String>,
    pub from_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub gate_id: Option<i64>,
    /// Only these gates (a guard's own); `None` = all.
    pub only_gates: Option<Vec<i64>>,
    pub outcome: Option<Outcome>,
    /// Only outside vehicles (a plate with no permit and no registered vehicle).
    pub outside_only: bool,
    /// Only this kind of record: `decision`, `plate_ignored` or `passage`.
    pub kind: Option<String>,
}

/// A vehicle a lane saw, as the passage search shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PassageItem {
    pub gate_id: i64,
    pub journal_no: i64,
    pub seq: i64,
    pub gate_name: Option<String>,
    pub lane: String,
    /// `decision`, `plate_ignored` or `passage`.
    pub kind: String,
    /// By the gate's clock.
    pub at: DateTime<Utc>,
    /// `entry` or `exit` (decisions and passages).
    pub direction: Option<String>,
    /// `tag` or `plate` (decisions); `plate` for a camera read the lane did not act on.
    pub credential: Option<String>,
    /// Normalised plate as read (a guard-let-through passage: the plate it was identified by).
    pub plate: Option<String>,
    /// The camera's plate colour code.
    pub colour: Option<String>,
    /// The plate a guard corrected it to, if one did.
    pub corrected_plate: Option<String>,
    pub corrected_colour: Option<String>,
    /// Decisions: whether it opened.
    pub granted: Option<bool>,
    /// The decision's reason code; for a read the lane did not act on, why.
    pub reason: Option<String>,
    pub holder: Option<String>,
    pub category: Option<String>,
    /// An outside vehicle: a plate with no permit and no registered vehicle.
    pub outside: bool,
    /// The camera's confidence, 0–100.
    pub confidence: Option<u8>,
    pub photos: Vec<PhotoBrief>,
}

/// Passages of vehicles matching `q`, newest first (then gate and number, so pages are stable).
pub async fn search(
    db: &Db,
    q: &PassageQuery,
    page: Page,
) -> Result<Paged<PassageItem>, RepoError> {
    let (cols, join, plate_expr) = corrections();
    let mut w = Filter::new();
    w.and("e.kind IN ('decision', 'plate_ignored', 'passage')".into());
    if let Some(plate) = q.plate.as_deref().filter(|p| !p.is_empty()) {
        w.like(plate_expr, like_contains(plate));
    }
    w.between("e.at_ms", q.from_ms, q.until_ms);
    if let Some(g) = q.gate_id {
        w.eq("e.gate_id", g);
    }
    if let Some(kind) = &q.kind {
        w.eq("e.kind", kind.as_str());
    }
    if let Some(only) = &q.only_gates {
        if only.is_empty() {
            w.and("1 = 0".into());
        } else {
            let ps: Vec<String> = only.iter().map(|id| w.arg(*id)).collect();
            w.and(format!("e.gate_id IN ({})", ps.join(", ")));
        }
    }
    match q.outcome {
        Some(Outcome::Granted) => w.and("e.kind = 'decision' AND e.granted = 1".into()),
        Some(Outcome::Denied) => w.and(
            "e.kind = 'decision' AND e.granted = 0 AND e.reason <> 'held_low_confidence'".into(),
        ),
        Some(Outcome::Held) => {
            w.and("e.kind = 'decision' AND e.reason = 'held_low_confidence'".into())
        }
        Some(Outcome::Ignored) => w.and("e.kind = 'plate_ignored'".into()),
        None => {}
    }
    const OUTSIDE: &str = "(e.plate IS NOT NULL AND e.permit_id IS NULL AND e.vehicle_id IS NULL \
         AND NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.plate = e.plate))";
    if q.outside_only {
        w.and(OUTSIDE.into());
    }
    let counter = w.clone();
    let from = format!("passage_events e{join}");
    let sql = format!(
        "SELECT e.gate_id, e.journal_no, e.seq, g.name AS gate_name, e.lane, e.kind, e.at_ms, \
         e.plate, e.direction, e.granted, e.reason, e.body, {cols}, \
         CAST(CASE WHEN {OUTSIDE} THEN 1 ELSE 0 END AS BIGINT) AS outside \
         FROM passage_events e LEFT JOIN gates g ON g.id = e.gate_id{join}{} \
         ORDER BY e.at_ms DESC, e.gate_id DESC, e.seq DESC {}",
        w.where_sql(),
        w.limit(page)
    );
    let (total, rows) = tokio::try_join!(counter.count(db, &from), async {
        Ok::<_, RepoError>(w.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?)
    })?;
    let mut items: Vec<PassageItem> = rows.iter().map(item).collect::<Result<_, _>>()?;
    read_of_passages(db, &mut items).await?;
    Ok(Paged { items, total })
}

/// Gives each outside vehicle's passage on the page the colour, confidence and photos of the
/// camera read it was identified by (the guard let it through: the passage event has none).
/// Two reads whatever the page's size: the visits that name the passages, then their reads.
async fn read_of_passages(db: &Db, items: &mut [PassageItem]) -> Result<(), RepoError> {
    let wanted: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].kind == "passage" && items[i].outside)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut f = Filter::new();
    let mut any = Vec::new();
    for &i in &wanted {
        let (g, j, s) = (
            f.arg(items[i].gate_id),
            f.arg(items[i].journal_no),
            f.arg(items[i].seq),
        );
        any.push(format!(
            "(gate_in = {g} AND journal_in = {j} AND seq_in = {s}) OR \
             (gate_out = {g} AND journal_out = {j} AND seq_out = {s})"
        ));
    }
    let sql = format!(
        "SELECT gate_in, journal_in, seq_in, read_seq_in, gate_out, journal_out, seq_out, \
         read_seq_out FROM outside_vehicle_visits WHERE {}",
        any.join(" OR ")
    );
    // (gate, journal, passage seq) → read seq.
    let mut reads: Vec<((i64, i64, i64), i64)> = Vec::new();
    for r in f.bind(sqlx::query(&sql)).fetch_all(db.pool()).await? {
        for side in ["in", "out"] {
            let gate: Option<i64> = r.try_get(format!("gate_{side}").as_str())?;
            let journal: Option<i64> = r.try_get(format!("journal_{side}").as_str())?;
            let seq: Option<i64> = r.try_get(format!("seq_{side}").as_str())?;
            let read: Option<i64> = r.try_get(format!("read_seq_{side}").as_str())?;
            if let (Some(g), Some(j), Some(s), Some(read)) = (gate, journal, seq, read) {
                reads.push(((g, j, s), read));
            }
        }
    }
    if reads.is_empty() {
        return Ok(());
    }
    let mut f = Filter::new();
    let any: Vec<String> = reads
        .iter()
        .map(|((g, j, _), read)| {
            let (g, j, s) = (f.arg(*g), f.arg(*j), f.arg(*read));
            format!("(gate_id = {g} AND journal_no = {j} AND seq = {s})")
        })
        .collect();
    let sql = format!(
        "SELECT gate_id, journal_no, seq, body FROM passage_events WHERE {}",
        any.join(" OR ")
    );
    let mut bodies = std::collections::HashMap::new();
    for r in f.bind(sqlx::query(&sql)).fetch_all(db.pool()).await? {
        let key: (i64, i64, i64) = (
            r.try_get("gate_id")?,
            r.try_get("journal_no")?,
            r.try_get("seq")?,
        );
        let body: String = r.try_get("body")?;
        if let Ok(body) = serde_json::from_str::<EventBody>(&body) {
            bodies.insert(key, body);
        }
    }
    for i in wanted {
        let it = &mut items[i];
        let Some((_, read)) = reads
            .iter()
            .find(|(k, _)| *k == (it.gate_id, it.journal_no, it.seq))
        else {
            continue;
        };
        let camera = match bodies.get(&(it.gate_id, it.journal_no, *read)) {
            Some(EventBody::Decision(d)) => d.camera.as_deref(),
            Some(EventBody::PlateIgnored { camera, .. }) => Some(camera),
            _ => None,
        };
        if let Some(c) = camera {
            it.colour = c.colour.clone();
            it.confidence = Some(c.confidence);
            it.photos = photos_of(c);
        }
    }
    Ok(())
}

fn item(r: &AnyRow) -> Result<PassageItem, RepoError> {
    let body: String = r.try_get("body")?;
    let mut out = PassageItem {
        gate_id: r.try_get("gate_id")?,
        journal_no: r.try_get("journal_no")?,
        seq: r.try_get("seq")?,
        gate_name: r.try_get("gate_name")?,
        lane: r.try_get("lane")?,
        kind: r.try_get("kind")?,
        at: at(r.try_get("at_ms")?),
        direction: r.try_get("direction")?,
        credential: None,
        plate: r.try_get("plate")?,
        colour: None,
        corrected_plate: r.try_get("corrected_plate")?,
        corrected_colour: r.try_get("corrected_colour")?,
        granted: r.try_get::<Option<i64>, _>("granted")?.map(|g| g != 0),
        reason: r.try_get("reason")?,
        holder: None,
        category: None,
        outside: r.try_get::<i64, _>("outside")? != 0,
        confidence: None,
        photos: Vec::new(),
    };
    // A body this centre cannot read (a newer gate's fields) still shows its columns.
    match serde_json::from_str::<EventBody>(&body) {
        Ok(EventBody::Decision(d)) => {
            out.credential = Some(d.credential.clone());
            out.holder = d.holder.clone();
            out.category = d.category.clone();
            if let Some(c) = &d.camera {
                out.colour = c.colour.clone();
                out.confidence = Some(c.confidence);
                out.photos = photos_of(c);
            }
        }
        Ok(EventBody::PlateIgnored { camera, why }) => {
            out.credential = Some("plate".into());
            out.reason = Some(why);
            out.colour = camera.colour.clone();
            out.confidence = Some(camera.confidence);
            out.photos = photos_of(&camera);
        }
        _ => {}
    }
    Ok(out)
}

/// How long an outside vehicle with no booking or registration may stay before it overstays.
pub const DEFAULT_OVERSTAY_HOURS: i64 = 8;

/// Filters of [`outside_visits`], combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutsideQuery {
    /// Visits that came in (or, with no entry seen, went out) from this instant…
    pub from_ms: Option<i64>,
    /// …until this one (exclusive).
    pub until_ms: Option<i64>,
    /// Part of a plate, anywhere in it.
    pub plate: Option<String>,
    /// Only vehicles still inside.
    pub inside_only: bool,
    /// Only visits that overstayed (see [`OutsideVisit::overstay`]).
    pub overstay_only: bool,
}

/// An outside vehicle's visit, from its entry to its exit.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutsideVisit {
    pub id: i64,
    pub plate: String,
    pub colour: Option<String>,
    /// The plate's region character (京, 沪, …).
    pub province: String,
    /// The region's name, zh-CN and English.
    pub province_zh: Option<String>,
    pub province_en: Option<String>,
    pub gate_in: Option<i64>,
    pub gate_in_name: Option<String>,
    pub lane_in: Option<String>,
    pub at_in: Option<DateTime<Utc>>,
    pub gate_out: Option<i64>,
    pub gate_out_name: Option<String>,
    pub lane_out: Option<String>,
    pub at_out: Option<DateTime<Utc>>,
    /// Seconds from entry to exit (both seen); still inside: until now.
    pub dwell_s: Option<i64>,
    /// Came on a booth registration or a booking.
    pub visitor: bool,
    /// The booth registration (`/api/v1/visits`).
    pub visit_id: Option<i64>,
    pub booking_id: Option<i64>,
    /// When it was expected to leave (a registration's or booking's end).
    pub expected_leave: Option<DateTime<Utc>>,
    /// Stayed (or is still inside) past its expected departure or, with none, past the
    /// overstay threshold after its entry.
    pub overstay: bool,
    pub photos: Vec<PhotoBrief>,
}

/// The SQL condition "overstayed" over `outside_vehicle_visits o` (placeholders of now and
/// the threshold).
fn overstay_sql(now: &str, threshold: &str) -> String {
    format!(
        "(o.at_in_ms IS NOT NULL AND COALESCE(o.at_out_ms, {now}) > \
         COALESCE(o.expected_leave_ms, o.at_in_ms + {threshold}))"
    )
}

const VISIT_COLUMNS: &str = "o.id, o.plate, o.colour, o.province, o.gate_in, gi.name AS gate_in_name, \
     o.lane_in, o.at_in_ms, o.gate_out, go.name AS gate_out_name, o.lane_out, o.at_out_ms, \
     o.visitor, o.visit_id, o.booking_id, o.expected_leave_ms, o.photos";

/// Outside-vehicle visits matching `q`, newest first; `threshold_ms` is how long one without an
/// expected departure may stay.
pub async fn outside_visits(
    db: &Db,
    q: &OutsideQuery,
    now_ms: i64,
    threshold_ms: i64,
    page: Page,
) -> Result<Paged<OutsideVisit>, RepoError> {
    let mut w = Filter::new();
    w.between("COALESCE(o.at_in_ms, o.at_out_ms)", q.from_ms, q.until_ms);
    if let Some(plate) = q.plate.as_deref().filter(|p| !p.is_empty()) {
        w.like("o.plate", like_contains(plate));
    }
    if q.inside_only {
        w.and("o.at_in_ms IS NOT NULL AND o.at_out_ms IS NULL".into());
    }
    if q.overstay_only {
        let n = w.arg(now_ms);
        let t = w.arg(threshold_ms);
        w.and(overstay_sql(&n, &t));
    }
    let counter = w.clone();
    let sql = format!(
        "SELECT {VISIT_COLUMNS} FROM outside_vehicle_visits o \
         LEFT JOIN gates gi ON gi.id = o.gate_in LEFT JOIN gates go ON go.id = o.gate_out{} \
         ORDER BY COALESCE(o.at_in_ms, o.at_out_ms) DESC, o.id DESC {}",
        w.where_sql(),
        w.limit(page)
    );
    let (total, rows) = tokio::try_join!(counter.count(db, "outside_vehicle_visits o"), async {
        Ok::<_, RepoError>(w.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?)
    })?;
    let items = rows
        .iter()
        .map(|r| visit(r, now_ms, threshold_ms))
        .collect::<Result<_, _>>()?;
    Ok(Paged { items, total })
}

fn visit(r: &AnyRow, now: i64, threshold_ms: i64) -> Result<OutsideVisit, RepoError> {
    let province: String = r.try_get("province")?;
    let names = province_name(&province);
    let at_in: Option<i64> = r.try_get("at_in_ms")?;
    let at_out: Option<i64> = r.try_get("at_out_ms")?;
    let expected: Option<i64> = r.try_get("expected_leave_ms")?;
    let photos: String = r.try_get("photos")?;
    let overstay =
        at_in.is_some_and(|i| at_out.unwrap_or(now) > expected.unwrap_or(i + threshold_ms));
    Ok(OutsideVisit {
        id: r.try_get("id")?,
        plate: r.try_get("plate")?,
        colour: r.try_get("colour")?,
        province_zh: names.map(|n| n.0.to_string()),
        province_en: names.map(|n| n.1.to_string()),
        province,
        gate_in: r.try_get("gate_in")?,
        gate_in_name: r.try_get("gate_in_name")?,
        lane_in: r.try_get("lane_in")?,
        at_in: at_in.map(at),
        gate_out: r.try_get("gate_out")?,
        gate_out_name: r.try_get("gate_out_name")?,
        lane_out: r.try_get("lane_out")?,
        at_out: at_out.map(at),
        dwell_s: at_in.map(|i| (at_out.unwrap_or(now) - i).max(0) / 1000),
        visitor: r.try_get::<i64, _>("visitor")? != 0,
        visit_id: r.try_get("visit_id")?,
        booking_id: r.try_get("booking_id")?,
        expected_leave: expected.map(at),
        overstay,
        photos: serde_json::from_str(&photos).unwrap_or_default(),
    })
}

/// Outside vehicles on one site day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutsideDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Distinct plates.
    pub vehicles: i64,
    pub visits: i64,
    /// Visits of booth-registered or booked visitors.
    pub visitors: i64,
}

/// Outside-vehicle visits by the gate they came in at (else went out at).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutsideGate {
    pub gate_id: i64,
    pub gate_name: Option<String>,
    pub visits: i64,
}

/// Outside-vehicle visits by the plate's region of registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutsideProvince {
    /// The plate's first character (京, 沪, …).
    pub province: String,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub visits: i64,
}

/// Outside-vehicle visits by how long they stayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DwellBucket {
    /// `lt_15m`, `15m_1h`, `1h_2h`, `2h_4h`, `4h_8h`, `ge_8h`, `inside` (still inside) or
    /// `unknown` (no entry seen).
    pub bucket: String,
    pub visits: i64,
}

/// A plate that came often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RepeatVisitor {
    pub plate: String,
    pub visits: i64,
}

/// The outside-vehicle statistics of a range of site days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutsideStats {
    pub per_day: Vec<OutsideDay>,
    pub per_gate: Vec<OutsideGate>,
    pub per_province: Vec<OutsideProvince>,
    pub dwell: Vec<DwellBucket>,
    /// Visits that overstayed (see [`OutsideVisit::overstay`]).
    pub overstays: i64,
    /// Plates with at least `min_visits` visits, most first (at most 100).
    pub repeat_visitors: Vec<RepeatVisitor>,
}

/// The dwell buckets, in order, with their upper bounds (ms) and labels.
pub const DWELL_BUCKETS: [(&str, i64, &str, &str); 8] = [
    ("lt_15m", 900_000, "15 分钟以内", "under 15 min"),
    ("15m_1h", 3_600_000, "15 分钟–1 小时", "15 min–1 h"),
    ("1h_2h", 7_200_000, "1–2 小时", "1–2 h"),
    ("2h_4h", 14_400_000, "2–4 小时", "2–4 h"),
    ("4h_8h", 28_800_000, "4–8 小时", "4–8 h"),
    ("ge_8h", i64::MAX, "8 小时以上", "8 h or more"),
    ("inside", 0, "仍在校内", "still inside"),
    ("unknown", 0, "未见入场", "entry not seen"),
];

/// The statistics of the outside-vehicle visits of `days` (by the site day they came in).
pub async fn outside_stats(
    db: &Db,
    days: Days,
    now_ms: i64,
    threshold_ms: i64,
    min_visits: i64,
) -> Result<OutsideStats, RepoError> {
    let from = days.from.format("%Y-%m-%d").to_string();
    let to = days.to.format("%Y-%m-%d").to_string();
    let rows = |sql: String, extra: Vec<i64>| {
        let (from, to) = (from.clone(), to.clone());
        async move {
            let mut q = sqlx::query(&sql).bind(from).bind(to);
            for x in extra {
                q = q.bind(x);
            }
            Ok::<_, RepoError>(q.fetch_all(db.pool()).await?)
        }
    };
    const RANGE: &str = "o.day >= $1 AND o.day <= $2";
    let per_day = rows(
        format!(
            "SELECT o.day, COUNT(DISTINCT o.plate) AS vehicles, COUNT(*) AS visits, \
             CAST(SUM(o.visitor) AS BIGINT) AS visitors FROM outside_vehicle_visits o WHERE {RANGE} \
             GROUP BY o.day ORDER BY o.day"
        ),
        vec![],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(OutsideDay {
            day: r.try_get("day")?,
            vehicles: r.try_get("vehicles")?,
            visits: r.try_get("visits")?,
            visitors: r.try_get::<Option<i64>, _>("visitors")?.unwrap_or(0),
        })
    })
    .collect::<Result<Vec<_>, RepoError>>()?;
    let per_gate = rows(
        format!(
            "SELECT COALESCE(o.gate_in, o.gate_out) AS gate_id, MAX(g.name) AS gate_name, \
             COUNT(*) AS visits FROM outside_vehicle_visits o \
             LEFT JOIN gates g ON g.id = COALESCE(o.gate_in, o.gate_out) WHERE {RANGE} \
             GROUP BY COALESCE(o.gate_in, o.gate_out) ORDER BY visits DESC, gate_id"
        ),
        vec![],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(OutsideGate {
            gate_id: r.try_get("gate_id")?,
            gate_name: r.try_get("gate_name")?,
            visits: r.try_get("visits")?,
        })
    })
    .collect::<Result<Vec<_>, RepoError>>()?;
    let per_province = rows(
        format!(
            "SELECT o.province, COUNT(*) AS visits FROM outside_vehicle_visits o WHERE {RANGE} \
             GROUP BY o.province ORDER BY visits DESC, o.province"
        ),
        vec![],
    )
    .await?
    .iter()
    .map(|r| {
        let province: String = r.try_get("province")?;
        let names = province_name(&province);
        Ok(OutsideProvince {
            name_zh: names.map(|n| n.0.to_string()),
            name_en: names.map(|n| n.1.to_string()),
            province,
            visits: r.try_get("visits")?,
        })
    })
    .collect::<Result<Vec<_>, RepoError>>()?;
    let mut case = String::from(
        "CASE WHEN o.at_in_ms IS NULL THEN 'unknown' WHEN o.at_out_ms IS NULL THEN 'inside'",
    );
    for (code, bound, _, _) in DWELL_BUCKETS.iter().take(5) {
        case.push_str(&format!(
            " WHEN o.at_out_ms - o.at_in_ms < {bound} THEN '{code}'"
        ));
    }
    case.push_str(" ELSE 'ge_8h' END");
    let counted = rows(
        format!(
            "SELECT {case} AS bucket, COUNT(*) AS visits FROM outside_vehicle_visits o \
             WHERE {RANGE} GROUP BY {case}"
        ),
        vec![],
    )
    .await?;
    let mut dwell: Vec<DwellBucket> = DWELL_BUCKETS
        .iter()
        .map(|(code, ..)| DwellBucket {
            bucket: (*code).to_string(),
            visits: 0,
        })
        .collect();
    for r in &counted {
        let bucket: String = r.try_get("bucket")?;
        if let Some(b) = dwell.iter_mut().find(|b| b.bucket == bucket) {
            b.visits = r.try_get("visits")?;
        }
    }
    let overstays = rows(
        format!(
            "SELECT COUNT(*) AS n FROM outside_vehicle_visits o WHERE {RANGE} AND {}",
            overstay_sql("$3", "$4")
        ),
        vec![now_ms, threshold_ms],
    )
    .await?
    .first()
    .map(|r| r.try_get::<i64, _>("n"))
    .transpose()?
    .unwrap_or(0);
    let repeat_visitors = rows(
        format!(
            "SELECT o.plate, COUNT(*) AS visits FROM outside_vehicle_visits o WHERE {RANGE} \
             GROUP BY o.plate HAVING COUNT(*) >= $3 ORDER BY visits DESC, o.plate LIMIT 100"
        ),
        vec![min_visits],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(RepeatVisitor {
            plate: r.try_get("plate")?,
            visits: r.try_get("visits")?,
        })
    })
    .collect::<Result<Vec<_>, RepoError>>()?;
    Ok(OutsideStats {
        per_day,
        per_gate,
        per_province,
        dwell,
        overstays,
        repeat_visitors,
    })
}
