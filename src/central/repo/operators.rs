//! Operators (the people who sign in: administrators, the security office, guards, department
//! approvers, viewers), their gates, and the sign-in failure counts (`login_throttle`): cleared
//! by an administrator's unlock or password reset.
//!
//! Passwords arrive here already hashed (argon2id, see `api::auth`); this module never sees or
//! stores a password, and never decides who may do what.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::central::db::{Actor, Db, Op, Page, Paged, RepoError, now_ms, write_change};

/// An operator as the API shows it (never with the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Operator {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    /// admin, security, guard, approver, viewer.
    pub roles: Vec<String>,
    /// Gates a guard works at.
    pub gates: Vec<i64>,
    /// The department an approver approves for.
    pub department: String,
    pub enabled: bool,
}

/// What creating an operator needs (the password already hashed).
#[derive(Debug, Clone)]
pub struct NewOperator {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub gates: Vec<i64>,
    pub department: String,
}

/// A change to an operator; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OperatorChange {
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub roles: Option<Vec<String>>,
    pub gates: Option<Vec<i64>>,
    pub department: Option<String>,
    pub enabled: Option<bool>,
}

/// What login needs to know about an account.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub operator: Operator,
    pub password_hash: String,
    pub failed_logins: i64,
    pub locked_until_ms: i64,
}

async fn gates_of(db: &Db, id: i64) -> Result<Vec<i64>, RepoError> {
    let rows =
        sqlx::query("SELECT gate_id FROM operator_gates WHERE operator_id = $1 ORDER BY gate_id")
            .bind(id)
            .fetch_all(db.pool())
            .await?;
    Ok(rows.iter().map(|r| r.get::<i64, _>(0)).collect())
}

fn from_row(row: &sqlx::any::AnyRow, gates: Vec<i64>) -> Operator {
    let roles: String = row.get("roles");
    Operator {
        id: row.get("id"),
        username: row.get("username"),
        display_name: row.get("display_name"),
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        gates,
        department: row.get("department"),
        enabled: row.get::<i64, _>("enabled") != 0,
    }
}

const COLUMNS: &str = "id, username, display_name, roles, department, enabled";

/// Creates an operator.
pub async fn create(db: &Db, actor: &Actor, new: NewOperator) -> Result<Operator, RepoError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO operators (username, display_name, password_hash, roles, department, enabled, \
         created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, 1, $6, $6) RETURNING id",
    )
    .bind(&new.username)
    .bind(&new.display_name)
    .bind(&new.password_hash)
    .bind(new.roles.join(","))
    .bind(&new.department)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    for gate in &new.gates {
        sqlx::query("INSERT INTO operator_gates (operator_id, gate_id) VALUES ($1, $2)")
            .bind(id)
            .bind(gate)
            .execute(&mut *tx)
            .await?;
    }
    let op = Operator {
        id,
        username: new.username,
        display_name: new.display_name,
        roles: new.roles,
        gates: new.gates,
        department: new.department,
        enabled: true,
    };
    write_change(
        &mut tx,
        actor,
        Op::Audit("create"),
        "operator",
        id,
        None,
        Some(&op),
    )
    .await?;
    tx.commit().await?;
    Ok(op)
}

/// One operator.
pub async fn get(db: &Db, id: i64) -> Result<Operator, RepoError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM operators WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(RepoError::NotFound)?;
    Ok(from_row(&row, gates_of(db, id).await?))
}

/// An account by user name, with what login checks.
pub async fn credentials(db: &Db, username: &str) -> Result<Option<Credentials>, RepoError> {
    let Some(row) = sqlx::query(&format!(
        "SELECT {COLUMNS}, password_hash, failed_logins, locked_until_ms FROM operators WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    let id: i64 = row.get("id");
    Ok(Some(Credentials {
        operator: from_row(&row, gates_of(db, id).await?),
        password_hash: row.get("password_hash"),
        failed_logins: row.get("failed_logins"),
        locked_until_ms: row.get("locked_until_ms"),
    }))
}

/// Operators, by user name or display name substring.
pub async fn search(db: &Db, q: Option<&str>, page: Page) -> Result<Paged<Operator>, RepoError> {
    let pattern = format!("%{}%", q.unwrap_or(""));
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM operators WHERE LOWER(username) LIKE LOWER($1) OR LOWER(display_name) LIKE LOWER($1)",
    )
    .bind(&pattern)
    .fetch_one(db.pool())
    .await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM operators WHERE LOWER(username) LIKE LOWER($1) \
         OR LOWER(display_name) LIKE LOWER($1) ORDER BY id LIMIT $2 OFFSET $3"
    ))
    .bind(&pattern)
    .bind(page.limit)
    .bind(page.offset)
    .fetch_all(db.pool())
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.get("id");
        items.push(from_row(row, gates_of(db, id).await?));
    }
    Ok(Paged { items, total })
}

/// Changes an operator.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: i64,
    change: OperatorChange,
) -> Result<Operator, RepoError> {
    let before = get(db, id).await?;
    let mut tx = db.begin().await?;
    let now = now_ms();
    sqlx::query(
        "UPDATE operators SET display_name = COALESCE($2, display_name), \
         password_hash = COALESCE($3, password_hash), roles = COALESCE($4, roles), \
         department = COALESCE($5, department), enabled = COALESCE($6, enabled), updated_ms = $7 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(change.display_name.clone())
    .bind(change.password_hash.clone())
    .bind(change.roles.as_ref().map(|r| r.join(",")))
    .bind(change.department.clone())
    .bind(change.enabled.map(i64::from))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if let Some(gates) = &change.gates {
        sqlx::query("DELETE FROM operator_gates WHERE operator_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for gate in gates {
            sqlx::query("INSERT INTO operator_gates (operator_id, gate_id) VALUES ($1, $2)")
                .bind(id)
                .bind(gate)
                .execute(&mut *tx)
                .await?;
        }
    }
    if change.password_hash.is_some() {
        // A password reset lets the account sign in again at once, from everywhere.
        clear_throttle(&mut tx, &before.username).await?;
    }
    if change.password_hash.is_some() || change.enabled == Some(false) {
        // A new password or a disabled account ends every session of it.
        sqlx::query("DELETE FROM sessions WHERE operator_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let after = Operator {
        display_name: change.display_name.unwrap_or(before.display_name.clone()),
        roles: change.roles.unwrap_or(before.roles.clone()),
        gates: change.gates.unwrap_or(before.gates.clone()),
        department: change.department.unwrap_or(before.department.clone()),
        enabled: change.enabled.unwrap_or(before.enabled),
        ..before.clone()
    };
    let action = if change.password_hash.is_some() {
        "update_with_password"
    } else {
        "update"
    };
    write_change(
        &mut tx,
        actor,
        Op::Audit(action),
        "operator",
        id,
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes an operator (their sessions go with them; audit entries keep their name).
pub async fn delete(db: &Db, actor: &Actor, id: i64) -> Result<(), RepoError> {
    let before = get(db, id).await?;
    let mut tx = db.begin().await?;
    for sql in [
        "DELETE FROM sessions WHERE operator_id = $1",
        "DELETE FROM operator_gates WHERE operator_id = $1",
        "DELETE FROM operators WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    write_change(
        &mut tx,
        actor,
        Op::Audit("delete"),
        "operator",
        id,
        Some(&before),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records a failed sign-in; returns the account's consecutive failures (from anywhere; they
/// raise the login alarm, they never lock the account).
pub async fn login_failed(db: &Db, id: i64) -> Result<i64, RepoError> {
    let n: i64 = sqlx::query_scalar(
        "UPDATE operators SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await?;
    Ok(n)
}

/// Clears an account's failure count after a successful login.
pub async fn login_succeeded(db: &Db, id: i64) -> Result<(), RepoError> {
    sqlx::query("UPDATE operators SET failed_logins = 0, locked_until_ms = 0 WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The `login_throttle.username` key of a name typed at sign-in: its SHA-256, so that a
/// password typed into the user name field is never stored.
pub fn throttle_key(username: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(username.as_bytes()))
}

/// Forgets the sign-in failures of `username` from every source, and the counts across
/// accounts of those sources; returns how many sources were slowing the account down.
async fn clear_throttle(conn: &mut sqlx::AnyConnection, username: &str) -> Result<i64, RepoError> {
    let key = throttle_key(username);
    sqlx::query(
        "DELETE FROM login_throttle WHERE username = '' AND source IN \
         (SELECT source FROM login_throttle WHERE username = $1)",
    )
    .bind(&key)
    .execute(&mut *conn)
    .await?;
    let sources = sqlx::query("DELETE FROM login_throttle WHERE username = $1")
        .bind(&key)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("UPDATE operators SET failed_logins = 0, locked_until_ms = 0 WHERE username = $1")
        .bind(username)
        .execute(&mut *conn)
        .await?;
    Ok(sources as i64)
}

/// An administrator's unlock: the operator may sign in again at once from everywhere.
/// Audited as `unlock` with the number of sources cleared.
pub async fn unlock(db: &Db, actor: &Actor, id: i64) -> Result<i64, RepoError> {
    let op = get(db, id).await?;
    let mut tx = db.begin().await?;
    let sources = clear_throttle(&mut tx, &op.username).await?;
    write_change(
        &mut tx,
        actor,
        Op::Audit("unlock"),
        "operator",
        id,
        None,
        Some(&serde_json::json!({ "sources_cleared": sources })),
    )
    .await?;
    tx.commit().await?;
    Ok(sources)
}

/// The number of operators (the first administrator is created when there are none).
pub async fn count(db: &Db) -> Result<i64, RepoError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM operators")
        .fetch_one(db.pool())
        .await?)
}

/// The person an operator is (an applicant's own record), if linked.
pub async fn person_of(db: &Db, operator_id: i64) -> Result<Option<i64>, RepoError> {
    let id: Option<Option<i64>> =
        sqlx::query_scalar("SELECT person_id FROM operators WHERE id = $1")
            .bind(operator_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(id.flatten())
}

/// Links an operator to the person they are (an applicant), audited as `link_person`.
pub async fn link_person(
    db: &Db,
    actor: &Actor,
    operator_id: i64,
    person_id: i64,
) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    let changed = sqlx::query("UPDATE operators SET person_id = $1, updated_ms = $2 WHERE id = $3")
        .bind(person_id)
        .bind(now_ms())
        .bind(operator_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(RepoError::NotFound);
    }
    write_change(
        &mut tx,
        actor,
        Op::Audit("link_person"),
        "operator",
        operator_id,
        None,
        Some(&serde_json::json!({ "person_id": person_id })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
