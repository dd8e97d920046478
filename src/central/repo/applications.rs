//! Exit-pass applications (出门证申请) in the central database: a staff member's or student's
//! request for a vehicle pass, or for a one-off exit pass (single use, time-boxed), through its
//! lifecycle:
//!
//! ```text
//! pending ──approve──▶ approved ──issue──▶ issued   (a permit exists; gates get it by sync)
//!    │ ╲                  │
//! reject cancel         cancel
//!    ▼     ▼              ▼
//! rejected cancelled   cancelled
//! ```
//!
//! The department's approver approves or rejects with a comment; the security office issues:
//! [`issue`] creates the permit through [`super::permits::create_in`] (and, when a tag is given,
//! the credential through [`super::credentials::create_in`]) in the same transaction that marks
//! the application issued, so the permit, the tag, the audit entries and the change-log entries
//! the gates sync from appear together or not at all.
//!
//! A transition is one conditional `UPDATE … WHERE id = $1 AND status = $2`, so two concurrent
//! transitions cannot both apply.
//!
//! What it never does: validate input or decide who may call it (the API does both, including
//! an approver's department), or change a permit after issuing it (the permits API does).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::at;
use super::credentials::{self, Credential, NewCredential};
use super::permits::{self, Permit, PermitInput};
use crate::central::db::{Actor, Db, Filter, Op, Page, Paged, RepoError, now_ms, write_change};

/// The entity name in the audit log.
pub const ENTITY: &str = "exit_pass_application";

/// What is applied for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationKind {
    /// A vehicle pass for a period (a permit).
    Permit,
    /// A one-off exit pass: single use, time-boxed.
    OneOff,
}

impl ApplicationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationKind::Permit => "permit",
            ApplicationKind::OneOff => "one_off",
        }
    }

    fn from_code(code: &str) -> ApplicationKind {
        if code == "one_off" {
            ApplicationKind::OneOff
        } else {
            ApplicationKind::Permit
        }
    }
}

/// Where an application is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    Pending,
    Approved,
    Rejected,
    Issued,
    Cancelled,
}

impl ApplicationStatus {
    pub const ALL: [ApplicationStatus; 5] = [
        ApplicationStatus::Pending,
        ApplicationStatus::Approved,
        ApplicationStatus::Rejected,
        ApplicationStatus::Issued,
        ApplicationStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Pending => "pending",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Rejected => "rejected",
            ApplicationStatus::Issued => "issued",
            ApplicationStatus::Cancelled => "cancelled",
        }
    }

    pub fn from_code(code: &str) -> Option<ApplicationStatus> {
        ApplicationStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == code)
    }

    /// The name shown to people: (zh-CN, English).
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            ApplicationStatus::Pending => ("待审批", "pending"),
            ApplicationStatus::Approved => ("已批准", "approved"),
            ApplicationStatus::Rejected => ("已驳回", "rejected"),
            ApplicationStatus::Issued => ("已发证", "issued"),
            ApplicationStatus::Cancelled => ("已撤销", "cancelled"),
        }
    }
}

/// An application as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Application {
    pub id: i64,
    pub kind: ApplicationKind,
    /// The staff member or student the pass is for.
    pub applicant_id: i64,
    pub applicant_name: String,
    /// The applicant's department when they applied: whose approver decides.
    pub department: String,
    pub vehicle_id: i64,
    pub plate: String,
    /// The permit category: staff, student, family, contractor, official, visitor.
    pub category: String,
    /// Gate rights in text form (`all`, `all:exit`, `1;2:exit`).
    pub gates: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    /// Why the pass is needed.
    pub purpose: String,
    pub status: ApplicationStatus,
    /// The operator who entered the application.
    pub applied_by: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The approver's comment (required when rejecting).
    pub decision_comment: String,
    pub issued_by: Option<String>,
    pub issued_at: Option<DateTime<Utc>>,
    /// The permit issued for it.
    pub permit_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated application to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApplication {
    pub kind: ApplicationKind,
    pub applicant_id: i64,
    pub department: String,
    pub vehicle_id: i64,
    pub category: String,
    pub gates: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub purpose: String,
}

/// Search filters, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationQuery {
    pub status: Option<ApplicationStatus>,
    /// Only this department's (an approver's own).
    pub department: Option<String>,
    pub applicant_id: Option<i64>,
    /// Only vehicle passes or only one-off exit passes.
    pub kind: Option<ApplicationKind>,
}

/// Why a transition did not apply.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The application is in a status the step does not apply to.
    #[error("the application is {0:?}")]
    WrongStatus(ApplicationStatus),
}

const SELECT: &str = "SELECT a.id, a.kind, a.applicant_id, p.name AS applicant_name, a.department, \
     a.vehicle_id, v.plate, a.category, a.gates, a.valid_from_ms, a.valid_until_ms, a.purpose, \
     a.status, a.applied_by, a.decided_by, a.decided_ms, a.decision_comment, a.issued_by, \
     a.issued_ms, a.permit_id, a.created_ms, a.updated_ms FROM exit_pass_applications a \
     JOIN persons p ON p.id = a.applicant_id JOIN vehicles v ON v.id = a.vehicle_id";

fn from_row(r: &AnyRow) -> Result<Application, RepoError> {
    let status: String = r.try_get("status")?;
    Ok(Application {
        id: r.try_get("id")?,
        kind: ApplicationKind::from_code(&r.try_get::<String, _>("kind")?),
        applicant_id: r.try_get("applicant_id")?,
        applicant_name: r.try_get("applicant_name")?,
        department: r.try_get("department")?,
        vehicle_id: r.try_get("vehicle_id")?,
        plate: r.try_get("plate")?,
        category: r.try_get("category")?,
        gates: r.try_get("gates")?,
        valid_from: at(r.try_get("valid_from_ms")?),
        valid_until: at(r.try_get("valid_until_ms")?),
        purpose: r.try_get("purpose")?,
        status: ApplicationStatus::from_code(&status).unwrap_or(ApplicationStatus::Pending),
        applied_by: r.try_get("applied_by")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get::<Option<i64>, _>("decided_ms")?.map(at),
        decision_comment: r.try_get("decision_comment")?,
        issued_by: r.try_get("issued_by")?,
        issued_at: r.try_get::<Option<i64>, _>("issued_ms")?.map(at),
        permit_id: r.try_get("permit_id")?,
        created_at: at(r.try_get("created_ms")?),
        updated_at: at(r.try_get("updated_ms")?),
    })
}

async fn fetch(conn: &mut AnyConnection, id: i64) -> Result<Application, RepoError> {
    let row = super::row_by_id(conn, &format!("{SELECT} WHERE a.id = $1"), id).await?;
    from_row(&row)
}

/// The application `id`, or [`RepoError::NotFound`].
pub async fn get(db: &Db, id: i64) -> Result<Application, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch(&mut conn, id).await
}

/// Stores a pending application, audited as `apply`.
pub async fn create(
    db: &Db,
    actor: &Actor,
    new: &NewApplication,
) -> Result<Application, RepoError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO exit_pass_applications (kind, applicant_id, department, vehicle_id, category, \
         gates, valid_from_ms, valid_until_ms, purpose, status, applied_by, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $11) RETURNING id",
    )
    .bind(new.kind.as_str())
    .bind(new.applicant_id)
    .bind(&new.department)
    .bind(new.vehicle_id)
    .bind(&new.category)
    .bind(&new.gates)
    .bind(new.valid_from.timestamp_millis())
    .bind(new.valid_until.timestamp_millis())
    .bind(&new.purpose)
    .bind(&actor.name)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let app = fetch(&mut tx, id).await?;
    write_change(
        &mut tx,
        actor,
        Op::Audit("apply"),
        ENTITY,
        id,
        None,
        Some(&app),
    )
    .await?;
    tx.commit().await?;
    Ok(app)
}

/// Moves `id` from `from` to `to` with `set` (extra `col = $n` assignments from $3 on), audited
/// as `action`; the application as it now is.
async fn step(
    tx: &mut AnyConnection,
    actor: &Actor,
    id: i64,
    from: &[ApplicationStatus],
    action: &str,
    set: &str,
    args: Vec<crate::central::db::Arg>,
) -> Result<Application, TransitionError> {
    let before = fetch(tx, id).await?;
    if !from.contains(&before.status) {
        return Err(TransitionError::WrongStatus(before.status));
    }
    let mut f = Filter::new();
    let p_id = f.arg(id);
    let p_status = f.arg(before.status.as_str());
    let mut set_sql = set.to_string();
    for (i, a) in args.into_iter().enumerate() {
        let p = f.arg(a);
        set_sql = set_sql.replace(&format!("{{{i}}}"), &p);
    }
    let sql = format!(
        "UPDATE exit_pass_applications SET {set_sql} WHERE id = {p_id} AND status = {p_status}"
    );
    let changed = f
        .bind(sqlx::query(&sql))
        .execute(&mut *tx)
        .await
        .map_err(RepoError::from)?
        .rows_affected();
    if changed == 0 {
        // Another transition won the race: report the status it left.
        let now = fetch(tx, id).await?;
        return Err(TransitionError::WrongStatus(now.status));
    }
    let after = fetch(tx, id).await?;
    write_change(
        tx,
        actor,
        Op::Audit(action),
        ENTITY,
        id,
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok(after)
}

/// The department approver's decision on a pending application, with their comment.
pub async fn decide(
    db: &Db,
    actor: &Actor,
    id: i64,
    approve: bool,
    comment: &str,
) -> Result<Application, TransitionError> {
    let mut tx = db.begin().await.map_err(RepoError::from)?;
    let to = if approve {
        ApplicationStatus::Approved
    } else {
        ApplicationStatus::Rejected
    };
    let app = step(
        &mut tx,
        actor,
        id,
        &[ApplicationStatus::Pending],
        if approve { "approve" } else { "reject" },
        "status = {0}, decided_by = {1}, decided_ms = {2}, decision_comment = {3}, updated_ms = {2}",
        vec![
            to.as_str().into(),
            actor.name.as_str().into(),
            now_ms().into(),
            comment.into(),
        ],
    )
    .await?;
    tx.commit().await.map_err(RepoError::from)?;
    Ok(app)
}

/// Withdraws a pending or approved application.
pub async fn cancel(db: &Db, actor: &Actor, id: i64) -> Result<Application, TransitionError> {
    let mut tx = db.begin().await.map_err(RepoError::from)?;
    let app = step(
        &mut tx,
        actor,
        id,
        &[ApplicationStatus::Pending, ApplicationStatus::Approved],
        "cancel",
        "status = {0}, updated_ms = {1}",
        vec![
            ApplicationStatus::Cancelled.as_str().into(),
            now_ms().into(),
        ],
    )
    .await?;
    tx.commit().await.map_err(RepoError::from)?;
    Ok(app)
}

/// What issuing produced.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Issued {
    pub application: Application,
    pub permit: Permit,
    /// The tag bound to the vehicle, when one was given.
    pub credential: Option<Credential>,
}

/// Issues an approved application: creates its permit (single use for a one-off pass) and, when
/// `tag` is given, binds that tag to the vehicle, and marks the application issued — all in one
/// transaction with their audit and change-log entries. `override_reason` (why a second live
/// pass of its kind for the vehicle; empty when it is the only one) is stored with the permit.
pub async fn issue(
    db: &Db,
    actor: &Actor,
    id: i64,
    tag: Option<NewCredential>,
    override_reason: &str,
) -> Result<Issued, TransitionError> {
    let mut tx = db.begin().await.map_err(RepoError::from)?;
    let app = fetch(&mut tx, id).await?;
    if app.status != ApplicationStatus::Approved {
        return Err(TransitionError::WrongStatus(app.status));
    }
    let permit = permits::create_overriding_in(
        &mut tx,
        actor,
        &PermitInput {
            category: app.category.clone(),
            holder_id: app.applicant_id,
            valid_from: app.valid_from,
            valid_until: app.valid_until,
            gates: app.gates.clone(),
            schedule: String::new(),
            single_use: app.kind == ApplicationKind::OneOff,
            max_inside: None,
            vehicle_ids: vec![app.vehicle_id],
        },
        override_reason,
    )
    .await?;
    let credential = match tag {
        Some(tag) => Some(credentials::create_in(&mut tx, actor, tag).await?),
        None => None,
    };
    let application = step(
        &mut tx,
        actor,
        id,
        &[ApplicationStatus::Approved],
        "issue",
        "status = {0}, issued_by = {1}, issued_ms = {2}, permit_id = {3}, updated_ms = {2}",
        vec![
            ApplicationStatus::Issued.as_str().into(),
            actor.name.as_str().into(),
            now_ms().into(),
            permit.id.into(),
        ],
    )
    .await?;
    tx.commit().await.map_err(RepoError::from)?;
    Ok(Issued {
        application,
        permit,
        credential,
    })
}

/// Applications matching `q`, newest first.
pub async fn search(
    db: &Db,
    q: &ApplicationQuery,
    page: Page,
) -> Result<Paged<Application>, RepoError> {
    let mut f = Filter::new();
    if let Some(s) = q.status {
        f.and_args("a.status = {}", vec![s.as_str().into()]);
    }
    if let Some(d) = &q.department {
        f.and_args("a.department = {}", vec![d.as_str().into()]);
    }
    if let Some(id) = q.applicant_id {
        f.and_args("a.applicant_id = {}", vec![id.into()]);
    }
    if let Some(k) = q.kind {
        f.and_args("a.kind = {}", vec![k.as_str().into()]);
    }
    let from = "exit_pass_applications a";
    f.paged(db, (from, SELECT), "a.id DESC", page, from_row)
        .await
}
