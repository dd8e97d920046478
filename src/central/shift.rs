//! The shift report (交班报表) of one duty: what happened at the duty's gate from the guard's
//! sign-in to their sign-off (or now, while on duty) — passages in and out per lane, denials by
//! reason, manual opens (who, why, which plate), visitors registered, alarms raised and
//! acknowledged — and the same report as one table for CSV/XLSX export.
//!
//! Sources: the gate's uploaded events (`passage_events`: passages and denied decisions, by the
//! gate's clock), the centre's audit log (`manual_command`: the guard's opens through the
//! console, with the plate when the command carried one), the booth's registrations
//! (`visits`) and `alarms`. A handful of queries per report, each bounded by the gate and the
//! duty's time range (indexed).
//!
//! What it never does: write anything, decide who may read a report (the page and the API
//! do), or show codes (labels come from [`crate::i18n`] when the report is rendered).

use std::collections::BTreeMap;

use sqlx::Row;

use crate::central::db::{Db, RepoError, now_ms};
use crate::central::export::{Cell, Table};
use crate::central::repo::duty::{self, Duty};
use crate::central::repo::gates::{self, Gate, Lane};
use crate::i18n::{Lang, Msg, alarm_kind_label, guard_reason_label, reason_label, t};

/// Passages through one lane in the shift.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaneFlow {
    pub lane: String,
    pub entries: i64,
    pub exits: i64,
}

/// A guard's manual open through the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualOpen {
    pub at_ms: i64,
    pub lane: String,
    pub operator_id: Option<i64>,
    /// The user name recorded with it (shown by display name).
    pub operator_name: String,
    /// A guard reason code.
    pub reason: String,
    pub note: Option<String>,
    pub plate: Option<String>,
    /// `done` (the gate opened), `gate_offline`, `timeout` or `refused`.
    pub outcome: String,
}

/// A visitor registered at the gate in the shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorRow {
    pub id: i64,
    pub plate: String,
    pub driver_name: String,
    pub host_name: String,
    pub department: String,
    pub arrived_ms: i64,
    pub left_ms: Option<i64>,
    pub registered_by: Option<i64>,
}

/// An alarm at the gate raised or acknowledged in the shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRow {
    pub id: i64,
    pub kind: String,
    /// `None`: raised by the system.
    pub raised_by: Option<i64>,
    pub raised_ms: i64,
    pub note: String,
    pub acknowledged_by: Option<i64>,
    pub acknowledged_ms: Option<i64>,
}

/// One duty's report.
#[derive(Debug, Clone)]
pub struct ShiftReport {
    pub duty: Duty,
    pub gate: Gate,
    pub lanes: Vec<Lane>,
    pub from_ms: i64,
    /// The sign-off, or the time of the report while the duty is open.
    pub until_ms: i64,
    pub open: bool,
    pub flows: Vec<LaneFlow>,
    /// (reason code, denials), most first.
    pub denials: Vec<(String, i64)>,
    pub manual_opens: Vec<ManualOpen>,
    pub visitors: Vec<VisitorRow>,
    pub alarms: Vec<AlarmRow>,
}

impl ShiftReport {
    pub fn entries(&self) -> i64 {
        self.flows.iter().map(|f| f.entries).sum()
    }

    pub fn exits(&self) -> i64 {
        self.flows.iter().map(|f| f.exits).sum()
    }

    pub fn denied(&self) -> i64 {
        self.denials.iter().map(|(_, n)| n).sum()
    }

    /// Manual opens the gate carried out.
    pub fn opened_by_hand(&self) -> i64 {
        self.manual_opens
            .iter()
            .filter(|m| m.outcome == "done")
            .count() as i64
    }

    pub fn alarms_raised(&self) -> i64 {
        self.alarms
            .iter()
            .filter(|a| a.raised_ms >= self.from_ms && a.raised_ms < self.until_ms)
            .count() as i64
    }

    pub fn alarms_acknowledged(&self) -> i64 {
        self.alarms
            .iter()
            .filter(|a| {
                a.acknowledged_ms
                    .is_some_and(|at| at >= self.from_ms && at < self.until_ms)
            })
            .count() as i64
    }

    /// A lane's name in `lang` (its key when the gate no longer has it).
    pub fn lane_name<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        self.lanes
            .iter()
            .find(|l| l.lane_key == key)
            .map_or(key, |l| l.name_in(lang))
    }
}

/// The report of duty `duty_id` (`RepoError::NotFound` if there is none).
pub async fn report(db: &Db, duty_id: i64) -> Result<ShiftReport, RepoError> {
    let duty = duty::get(db, duty_id).await?;
    let gate = gates::get(db, duty.gate_id).await?;
    let lanes = gates::lanes(db, duty.gate_id).await?;
    let from_ms = duty.started_at.timestamp_millis();
    let until_ms = duty
        .ended_at
        .map_or_else(|| now_ms() + 1, |e| e.timestamp_millis() + 1);
    let g = duty.gate_id;

    let rows = sqlx::query(
        "SELECT lane, direction, COUNT(*) FROM passage_events WHERE gate_id = $1 \
         AND kind = 'passage' AND at_ms >= $2 AND at_ms < $3 GROUP BY lane, direction",
    )
    .bind(g)
    .bind(from_ms)
    .bind(until_ms)
    .fetch_all(db.pool())
    .await?;
    let mut flows: BTreeMap<String, LaneFlow> = lanes
        .iter()
        .map(|l| {
            (
                l.lane_key.clone(),
                LaneFlow {
                    lane: l.lane_key.clone(),
                    ..LaneFlow::default()
                },
            )
        })
        .collect();
    for r in &rows {
        let lane: String = r.try_get(0)?;
        let direction: Option<String> = r.try_get(1)?;
        let n: i64 = r.try_get(2)?;
        let f = flows.entry(lane.clone()).or_insert_with(|| LaneFlow {
            lane,
            ..LaneFlow::default()
        });
        match direction.as_deref() {
            Some("entry") => f.entries += n,
            Some("exit") => f.exits += n,
            _ => {}
        }
    }
    // The gate's lanes in their configured order, then any lane no longer configured.
    let mut ordered: Vec<LaneFlow> = Vec::new();
    for l in &lanes {
        if let Some(f) = flows.remove(&l.lane_key) {
            ordered.push(f);
        }
    }
    ordered.extend(flows.into_values());

    let rows = sqlx::query(
        "SELECT reason, COUNT(*) FROM passage_events WHERE gate_id = $1 AND kind = 'decision' \
         AND granted = 0 AND at_ms >= $2 AND at_ms < $3 GROUP BY reason",
    )
    .bind(g)
    .bind(from_ms)
    .bind(until_ms)
    .fetch_all(db.pool())
    .await?;
    let mut denials = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<Option<String>, _>(0)?.unwrap_or_default(),
                r.try_get::<i64, _>(1)?,
            ))
        })
        .collect::<Result<Vec<_>, RepoError>>()?;
    denials.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let rows = sqlx::query(
        "SELECT at_ms, entity_id, operator_id, operator_name, after_json FROM audit_log \
         WHERE action = 'manual_command' AND entity = 'lane' AND entity_id LIKE $1 \
         AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms, id",
    )
    .bind(format!("{g}/%"))
    .bind(from_ms)
    .bind(until_ms)
    .fetch_all(db.pool())
    .await?;
    let mut manual_opens = Vec::new();
    for r in &rows {
        let after: Option<String> = r.try_get(4)?;
        let after: serde_json::Value = after
            .and_then(|a| serde_json::from_str(&a).ok())
            .unwrap_or_default();
        let text = |k: &str| {
            after
                .get(k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        if text("command").as_deref() != Some("open") {
            continue;
        }
        let entity: String = r.try_get(1)?;
        manual_opens.push(ManualOpen {
            at_ms: r.try_get(0)?,
            lane: entity
                .split_once('/')
                .map_or(entity.clone(), |(_, l)| l.to_string()),
            operator_id: r.try_get(2)?,
            operator_name: r.try_get(3)?,
            reason: text("reason").unwrap_or_default(),
            note: text("note"),
            plate: text("plate"),
            outcome: text("outcome").unwrap_or_default(),
        });
    }

    let rows = sqlx::query(
        "SELECT id, plate, driver_name, host_name, department, arrived_ms, left_ms, \
         registered_by FROM visits WHERE gate_id = $1 AND arrived_ms >= $2 AND arrived_ms < $3 \
         ORDER BY arrived_ms, id",
    )
    .bind(g)
    .bind(from_ms)
    .bind(until_ms)
    .fetch_all(db.pool())
    .await?;
    let visitors = rows
        .iter()
        .map(|r| {
            Ok(VisitorRow {
                id: r.try_get(0)?,
                plate: r.try_get(1)?,
                driver_name: r.try_get(2)?,
                host_name: r.try_get(3)?,
                department: r.try_get(4)?,
                arrived_ms: r.try_get(5)?,
                left_ms: r.try_get(6)?,
                registered_by: r.try_get(7)?,
            })
        })
        .collect::<Result<Vec<_>, RepoError>>()?;

    let rows = sqlx::query(
        "SELECT id, kind, raised_by, raised_ms, note, acknowledged_by, acknowledged_ms \
         FROM alarms WHERE gate_id = $1 AND ((raised_ms >= $2 AND raised_ms < $3) \
         OR (acknowledged_ms >= $2 AND acknowledged_ms < $3)) ORDER BY raised_ms, id",
    )
    .bind(g)
    .bind(from_ms)
    .bind(until_ms)
    .fetch_all(db.pool())
    .await?;
    let alarms = rows
        .iter()
        .map(|r| {
            Ok(AlarmRow {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                raised_by: r.try_get(2)?,
                raised_ms: r.try_get(3)?,
                note: r.try_get(4)?,
                acknowledged_by: r.try_get(5)?,
                acknowledged_ms: r.try_get(6)?,
            })
        })
        .collect::<Result<Vec<_>, RepoError>>()?;

    // A visitor registration's open names its visit (`visit <id>`): shown as the visitor's
    // plate, not as that note.
    for m in &mut manual_opens {
        let visit = m
            .note
            .as_deref()
            .and_then(|n| n.strip_prefix("visit "))
            .and_then(|id| id.trim().parse::<i64>().ok());
        if let Some(id) = visit.filter(|_| m.reason == "visitor_registered") {
            m.note = None;
            if m.plate.is_none() {
                m.plate = visitors
                    .iter()
                    .find(|v| v.id == id)
                    .map(|v| v.plate.clone());
            }
        }
    }

    Ok(ShiftReport {
        open: duty.ended_at.is_none(),
        duty,
        gate,
        lanes,
        from_ms,
        until_ms: until_ms - 1,
        flows: ordered,
        denials,
        manual_opens,
        visitors,
        alarms,
    })
}

/// A manual open's outcome in words.
pub fn outcome_label(lang: Lang, code: &str) -> &'static str {
    match code {
        "done" => t(lang, "已抬杆", "Opened"),
        "gate_offline" => t(lang, "闸口离线，未执行", "Gate offline: not done"),
        "timeout" => t(lang, "闸口未确认", "Not confirmed by the gate"),
        "refused" => t(lang, "闸口拒绝", "Refused by the gate"),
        _ => t(lang, "未知", "Unknown"),
    }
}

/// The report as one table (section, item, count, time, plate, who, details) in `lang`, times
/// in the site's zone `tz`, people named by `name(operator id, recorded user name)`: the same
/// figures the page shows.
pub fn table(
    report: &ShiftReport,
    lang: Lang,
    tz: chrono_tz::Tz,
    name: impl Fn(Option<i64>, &str) -> String,
) -> Table {
    let time = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let s = |zh: &'static str, en: &'static str| Cell::from(t(lang, zh, en));
    let system = t(lang, "系统", "System");
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let guard = name(Some(report.duty.operator_id), &report.duty.operator_name);
    let gate = report.gate.name_in(lang).to_string();
    rows.push(vec![
        s("班次", "Shift"),
        s("大门", "Gate"),
        Cell::from(""),
        Cell::from(time(report.from_ms)),
        Cell::from(""),
        Cell::from(guard.clone()),
        Cell::from(format!(
            "{gate} · {} {}",
            t(lang, "至", "until"),
            if report.open {
                format!(
                    "{} ({})",
                    time(report.until_ms),
                    t(lang, "值班中", "on duty")
                )
            } else {
                time(report.until_ms)
            }
        )),
    ]);
    let summary: [(&str, &str, i64); 6] = [
        ("进场车次", "Entries", report.entries()),
        ("出场车次", "Exits", report.exits()),
        ("拒绝通行", "Denials", report.denied()),
        ("手动抬杆", "Manual opens", report.opened_by_hand()),
        (
            "访客登记",
            "Visitors registered",
            report.visitors.len() as i64,
        ),
        ("报警", "Alarms raised", report.alarms_raised()),
    ];
    for (zh, en, n) in summary {
        rows.push(vec![
            s("合计", "Totals"),
            Cell::from(t(lang, zh, en)),
            Cell::Int(n),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
        ]);
    }
    rows.push(vec![
        s("合计", "Totals"),
        s("报警已确认", "Alarms acknowledged"),
        Cell::Int(report.alarms_acknowledged()),
        Cell::from(""),
        Cell::from(""),
        Cell::from(""),
        Cell::from(""),
    ]);
    for f in &report.flows {
        let lane = report.lane_name(lang, &f.lane).to_string();
        for (zh, en, n) in [("进", "in", f.entries), ("出", "out", f.exits)] {
            rows.push(vec![
                s("车道通行", "Passages by lane"),
                Cell::from(format!("{lane} · {}", t(lang, zh, en))),
                Cell::Int(n),
                Cell::from(""),
                Cell::from(""),
                Cell::from(""),
                Cell::from(""),
            ]);
        }
    }
    for (reason, n) in &report.denials {
        rows.push(vec![
            s("拒绝原因", "Denials by reason"),
            Cell::from(reason_label(lang, reason)),
            Cell::Int(*n),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
        ]);
    }
    for m in &report.manual_opens {
        let mut why = guard_reason_label(lang, &m.reason);
        if let Some(n) = &m.note {
            why = format!("{why}：{n}");
        }
        rows.push(vec![
            s("手动抬杆", "Manual opens"),
            Cell::from(report.lane_name(lang, &m.lane).to_string()),
            Cell::Int(1),
            Cell::from(time(m.at_ms)),
            Cell::from(m.plate.clone()),
            Cell::from(name(m.operator_id, &m.operator_name)),
            Cell::from(format!("{why} · {}", outcome_label(lang, &m.outcome))),
        ]);
    }
    for v in &report.visitors {
        rows.push(vec![
            s("访客登记", "Visitors"),
            Cell::from(v.driver_name.clone()),
            Cell::Int(1),
            Cell::from(time(v.arrived_ms)),
            Cell::from(v.plate.clone()),
            Cell::from(name(v.registered_by, system)),
            Cell::from(format!("{} / {}", v.host_name, v.department)),
        ]);
    }
    for a in &report.alarms {
        let ack = match (a.acknowledged_ms, a.acknowledged_by) {
            (Some(at), by) => format!(
                "{} {} {}",
                t(lang, "已确认", "Acknowledged"),
                name(by, system),
                time(at)
            ),
            (None, _) => t(lang, "未确认", "Not acknowledged").to_string(),
        };
        let detail = if a.note.is_empty() {
            ack
        } else {
            format!("{} · {ack}", a.note)
        };
        rows.push(vec![
            s("报警", "Alarms"),
            Cell::from(alarm_label(lang, &a.kind)),
            Cell::Int(1),
            Cell::from(time(a.raised_ms)),
            Cell::from(""),
            Cell::from(name(a.raised_by, system)),
            Cell::from(detail),
        ]);
    }
    Table {
        name: "shift",
        columns: vec![
            Msg::new("类别", "Section"),
            Msg::new("项目", "Item"),
            Msg::new("数量", "Count"),
            Msg::new("时间", "Time"),
            Msg::new("车牌", "Plate"),
            Msg::new("人员", "Who"),
            Msg::new("说明", "Details"),
        ],
        rows,
    }
}

/// An alarm's kind in words.
pub fn alarm_label(lang: Lang, kind: &str) -> String {
    alarm_kind_label(lang, kind)
}
