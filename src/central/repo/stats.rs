//! The dashboard's statistics queries: each one reads only the aggregate tables that
//! [`crate::central::traffic::apply`] keeps current as events are ingested, filtered by the site's
//! calendar days (indexed), so its cost follows the number of days and gates asked about, not
//! the number of events stored.
//!
//! What it never does: read `passage_events`, write anything, or decide who may see the figures
//! (the API does).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use super::audit::at;
use crate::central::db::{Db, Filter, RepoError};
use crate::central::traffic::VISITOR;

/// An inclusive range of the site's calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Days {
    fn bounds(&self) -> (String, String) {
        (day_text(self.from), day_text(self.to))
    }

    /// Every day of the range, in order.
    pub fn each(&self) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let mut d = self.from;
        while d <= self.to {
            out.push(d);
            d += Duration::days(1);
        }
        out
    }
}

/// The rows `sql` returns with `$1` and `$2` bound to the first and last day of `days`.
async fn in_days(db: &Db, days: Days, sql: &str) -> Result<Vec<sqlx::any::AnyRow>, RepoError> {
    let (from, to) = days.bounds();
    Ok(sqlx::query(sql)
        .bind(&from)
        .bind(&to)
        .fetch_all(db.pool())
        .await?)
}

fn day_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Passages in one site hour at one gate in one direction by one vehicle category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FlowRow {
    /// When the hour starts (UTC).
    pub hour_start: DateTime<Utc>,
    /// The site's date, `YYYY-MM-DD`.
    pub day: String,
    /// The site's hour, 0–23.
    pub hour: i64,
    pub gate_id: i64,
    /// `entry` or `exit`.
    pub direction: String,
    /// The permit category, `visitor` or `unregistered`.
    pub category: String,
    pub passages: i64,
}

/// Hourly flows in `days`, optionally at one gate, by hour, gate, direction and category.
pub async fn flows(db: &Db, days: Days, gate_id: Option<i64>) -> Result<Vec<FlowRow>, RepoError> {
    let (from, to) = days.bounds();
    let mut f = Filter::new();
    f.and_args("day >= {} AND day <= {}", vec![from.into(), to.into()]);
    if let Some(g) = gate_id {
        f.and_args("gate_id = {}", vec![g.into()]);
    }
    let sql = format!(
        "SELECT hour_ms, day, hour, gate_id, direction, category, passages FROM stats_flows{} \
         ORDER BY hour_ms, gate_id, direction, category",
        f.where_sql()
    );
    let rows = f.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(FlowRow {
                hour_start: at(r.try_get("hour_ms")?),
                day: r.try_get("day")?,
                hour: r.try_get("hour")?,
                gate_id: r.try_get("gate_id")?,
                direction: r.try_get("direction")?,
                category: r.try_get("category")?,
                passages: r.try_get("passages")?,
            })
        })
        .collect()
}

/// Vehicles on campus now in one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CategoryCount {
    pub category: String,
    pub vehicles: i64,
}

/// Vehicles on campus now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Occupancy {
    pub total: i64,
    /// By category, largest first (then by name).
    pub by_category: Vec<CategoryCount>,
}

/// Vehicles whose latest passage was an entry, by category.
pub async fn occupancy(db: &Db) -> Result<Occupancy, RepoError> {
    let rows = sqlx::query(
        "SELECT category, COUNT(*) AS n FROM stats_presence WHERE inside = 1 GROUP BY category",
    )
    .fetch_all(db.pool())
    .await?;
    let mut by_category = rows
        .iter()
        .map(|r| {
            Ok(CategoryCount {
                category: r.try_get("category")?,
                vehicles: r.try_get("n")?,
            })
        })
        .collect::<Result<Vec<_>, RepoError>>()?;
    by_category.sort_by(|a, b| {
        b.vehicles
            .cmp(&a.vehicles)
            .then_with(|| a.category.cmp(&b.category))
    });
    Ok(Occupancy {
        total: by_category.iter().map(|c| c.vehicles).sum(),
        by_category,
    })
}

/// A visitor still inside after they were expected to leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Overstay {
    pub plate: Option<String>,
    /// `p:<plate>` or `v:<vehicle id>`.
    pub vehicle_key: String,
    pub category: String,
    /// The gate it entered by.
    pub gate_id: i64,
    pub entered_at: Option<DateTime<Utc>>,
    pub expected_leave_at: DateTime<Utc>,
    /// Whole minutes past the expected departure, at the time of the query.
    pub overdue_minutes: i64,
    pub booking_id: Option<i64>,
}

/// Visitors inside whose expected departure is before `now_ms`, longest overdue first.
pub async fn overstays(db: &Db, now_ms: i64) -> Result<Vec<Overstay>, RepoError> {
    let rows = sqlx::query(
        "SELECT vehicle_key, plate, category, gate_id, entered_ms, expected_leave_ms, booking_id \
         FROM stats_presence WHERE inside = 1 AND expected_leave_ms IS NOT NULL \
         AND expected_leave_ms < $1 ORDER BY expected_leave_ms, vehicle_key",
    )
    .bind(now_ms)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let leave: i64 = r.try_get("expected_leave_ms")?;
            Ok(Overstay {
                plate: r.try_get("plate")?,
                vehicle_key: r.try_get("vehicle_key")?,
                category: r.try_get("category")?,
                gate_id: r.try_get("gate_id")?,
                entered_at: r.try_get::<Option<i64>, _>("entered_ms")?.map(at),
                expected_leave_at: at(leave),
                overdue_minutes: (now_ms - leave) / 60_000,
                booking_id: r.try_get("booking_id")?,
            })
        })
        .collect()
}

/// Visitors on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VisitorDay {
    pub day: String,
    /// Visitor entries (a vehicle entering twice counts twice).
    pub entries: i64,
    /// Distinct visitor vehicles that entered.
    pub vehicles: i64,
}

/// Visitors per day, every day of the range (zeros included).
pub async fn visitors(db: &Db, days: Days) -> Result<Vec<VisitorDay>, RepoError> {
    let (from, to) = days.bounds();
    let entries = sqlx::query(
        "SELECT day, CAST(SUM(passages) AS BIGINT) AS n FROM stats_flows WHERE day >= $1 AND day <= $2 \
         AND category = $3 AND direction = 'entry' GROUP BY day",
    )
    .bind(&from)
    .bind(&to)
    .bind(VISITOR)
    .fetch_all(db.pool())
    .await?;
    let vehicles = in_days(
        db,
        days,
        "SELECT day, COUNT(*) AS n FROM stats_visitor_days WHERE day >= $1 AND day <= $2 \
         GROUP BY day",
    )
    .await?;
    let mut by_day: BTreeMap<String, (i64, i64)> = days
        .each()
        .into_iter()
        .map(|d| (day_text(d), (0, 0)))
        .collect();
    for r in &entries {
        let day: String = r.try_get("day")?;
        by_day.entry(day).or_default().0 = r.try_get("n")?;
    }
    for r in &vehicles {
        let day: String = r.try_get("day")?;
        by_day.entry(day).or_default().1 = r.try_get("n")?;
    }
    Ok(by_day
        .into_iter()
        .map(|(day, (entries, vehicles))| VisitorDay {
            day,
            entries,
            vehicles,
        })
        .collect())
}

/// Denied decisions on one day at one gate for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DenialRow {
    pub day: String,
    pub gate_id: i64,
    /// The reason code (`denied_revoked`, …).
    pub reason: String,
    pub denials: i64,
}

/// Denials by day, gate and reason.
pub async fn denials(db: &Db, days: Days) -> Result<Vec<DenialRow>, RepoError> {
    let rows = in_days(
        db,
        days,
        "SELECT day, gate_id, reason, denials FROM stats_denials WHERE day >= $1 AND day <= $2 \
         ORDER BY day, gate_id, reason",
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DenialRow {
                day: r.try_get("day")?,
                gate_id: r.try_get("gate_id")?,
                reason: r.try_get("reason")?,
                denials: r.try_get("denials")?,
            })
        })
        .collect()
}

/// Manual opens on one day at one gate by one guard for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ManualOpenRow {
    pub day: String,
    pub gate_id: i64,
    /// The guard's user name, as the gate journalled it.
    pub operator: String,
    /// The override reason code.
    pub reason: String,
    pub opens: i64,
}

/// Manual opens by day, gate, guard and reason.
pub async fn manual_opens(db: &Db, days: Days) -> Result<Vec<ManualOpenRow>, RepoError> {
    let rows = in_days(
        db,
        days,
        "SELECT day, gate_id, operator, reason, opens FROM stats_overrides \
         WHERE day >= $1 AND day <= $2 ORDER BY day, gate_id, operator, reason",
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ManualOpenRow {
                day: r.try_get("day")?,
                gate_id: r.try_get("gate_id")?,
                operator: r.try_get("operator")?,
                reason: r.try_get("reason")?,
                opens: r.try_get("opens")?,
            })
        })
        .collect()
}

/// Passages in one hour of the day, summed over a range of days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HourTotal {
    /// The site's hour, 0–23.
    pub hour: i64,
    pub entries: i64,
    pub exits: i64,
    pub passages: i64,
}

/// Peak hours: the 24 hours of the day with their passages over `days`, and the busiest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PeakHours {
    /// Hours 0–23 in order.
    pub hours: Vec<HourTotal>,
    /// The busiest hours, busiest first (ties by hour), up to three, none with no traffic.
    pub peaks: Vec<i64>,
}

/// Passages by hour of the day over `days`.
pub async fn peak_hours(db: &Db, days: Days) -> Result<PeakHours, RepoError> {
    let rows = in_days(
        db,
        days,
        "SELECT hour, direction, CAST(SUM(passages) AS BIGINT) AS n FROM stats_flows WHERE day >= $1 AND day <= $2 \
         GROUP BY hour, direction",
    )
    .await?;
    let mut hours: Vec<HourTotal> = (0..24)
        .map(|hour| HourTotal {
            hour,
            entries: 0,
            exits: 0,
            passages: 0,
        })
        .collect();
    for r in &rows {
        let hour: i64 = r.try_get("hour")?;
        let n: i64 = r.try_get("n")?;
        let Some(h) = hours.get_mut(hour as usize) else {
            continue;
        };
        if r.try_get::<String, _>("direction")? == "entry" {
            h.entries += n;
        } else {
            h.exits += n;
        }
        h.passages += n;
    }
    let mut order: Vec<&HourTotal> = hours.iter().filter(|h| h.passages > 0).collect();
    order.sort_by(|a, b| b.passages.cmp(&a.passages).then(a.hour.cmp(&b.hour)));
    let peaks = order.iter().take(3).map(|h| h.hour).collect();
    Ok(PeakHours { hours, peaks })
}

/// One weekday of this week beside the same weekday of last week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WeekdayPair {
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    pub this_week: i64,
    pub last_week: i64,
}

/// This week (Monday to Sunday, the site's calendar) against last week, in passages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WeekComparison {
    /// The Monday this week starts on.
    pub this_week_from: String,
    pub last_week_from: String,
    pub days: Vec<WeekdayPair>,
    pub this_week_total: i64,
    pub last_week_total: i64,
}

/// The week containing `day` against the week before it.
pub async fn week_comparison(db: &Db, day: NaiveDate) -> Result<WeekComparison, RepoError> {
    let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
    let last_monday = monday - Duration::days(7);
    let rows = sqlx::query(
        "SELECT day, CAST(SUM(passages) AS BIGINT) AS n FROM stats_flows WHERE day >= $1 AND day <= $2 GROUP BY day",
    )
    .bind(day_text(last_monday))
    .bind(day_text(monday + Duration::days(6)))
    .fetch_all(db.pool())
    .await?;
    let mut days: Vec<WeekdayPair> = (1..=7)
        .map(|weekday| WeekdayPair {
            weekday,
            this_week: 0,
            last_week: 0,
        })
        .collect();
    for r in &rows {
        let text: String = r.try_get("day")?;
        let Ok(d) = NaiveDate::parse_from_str(&text, "%Y-%m-%d") else {
            continue;
        };
        let n: i64 = r.try_get("n")?;
        let slot = &mut days[d.weekday().num_days_from_monday() as usize];
        if d >= monday {
            slot.this_week += n;
        } else {
            slot.last_week += n;
        }
    }
    Ok(WeekComparison {
        this_week_from: day_text(monday),
        last_week_from: day_text(last_monday),
        this_week_total: days.iter().map(|d| d.this_week).sum(),
        last_week_total: days.iter().map(|d| d.last_week).sum(),
        days,
    })
}
