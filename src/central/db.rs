//! The central database: SQLite (a file, the default) or PostgreSQL (large sites, several server
//! instances), behind **one code path**.
//!
//! sqlx checks queries at compile time against one database per crate, so writing every query
//! twice (once per database) would double the code and let the two drift. Instead the server
//! talks to both through `sqlx::Any` with portable SQL: `$1` placeholders (SQLite accepts them
//! too), 64-bit integers for ids, instants (UTC milliseconds) and flags, TEXT for strings and
//! JSON. Only the schema differs, one folder per database kind (`migrations/sqlite`,
//! `migrations/postgres`), and the same behavioural tests run against both. The cost — queries
//! are checked when the tests run, not when the crate compiles — is paid by running those tests
//! on both databases in CI.
//!
//! Also here: the error every repository returns ([`RepoError`]), who acts ([`Actor`]),
//! pagination ([`Page`], [`Paged`]), and the tail of every repository write, [`write_change`]:
//! in the write's own transaction, the audit entry and, for data the gates hold, the change-log
//! entry they sync from. On SQLite the pool announces each committed change-log head as the
//! connection that wrote it comes back ([`Db::committed_heads`]), so the gates' long polls are
//! woken at once rather than by polling.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Executor};
use tokio::sync::watch;

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

/// Why the database could not be opened or prepared.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL {0:?} is neither sqlite:// nor postgres://")]
    UnknownKind(String),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error(
        "the database schema is newer than this gatehouse binary (it has migration {0}, which this \
         binary does not know); upgrade gatehouse instead of running an older one"
    )]
    SchemaNewer(i64),
    #[error("cannot apply database migrations: {0}")]
    Migrate(sqlx::migrate::MigrateError),
}

/// What a repository operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (e.g. the plate is already registered).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row changed since the caller read it (optimistic concurrency).
    #[error("stale: the current version is {current}")]
    Stale { current: i64 },
    /// A referenced row does not exist, or the row is still referenced.
    #[error("reference: {0}")]
    Reference(String),
    #[error("database: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for RepoError {
    fn from(e: sqlx::Error) -> RepoError {
        if let sqlx::Error::Database(db) = &e {
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    return RepoError::Conflict(db.message().to_string());
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    return RepoError::Reference(db.message().to_string());
                }
                _ => {}
            }
        }
        if matches!(e, sqlx::Error::RowNotFound) {
            return RepoError::NotFound;
        }
        RepoError::Database(e)
    }
}

/// Who is making a change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The operator, or `None` for the system itself (imports, gates, the scheduler).
    pub operator_id: Option<i64>,
    pub name: String,
}

impl Actor {
    /// The system acting on its own.
    pub fn system() -> Actor {
        Actor {
            operator_id: None,
            name: "system".into(),
        }
    }
}

/// A page request; the API validates the bounds before it reaches here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// The biggest page the API serves.
pub const MAX_PAGE: i64 = 500;

impl Default for Page {
    fn default() -> Page {
        Page {
            limit: 50,
            offset: 0,
        }
    }
}

/// One page of results and the total count.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// The database handle.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    kind: DbKind,
    /// SQLite: the database file, for bulk reads that bypass sqlx (see [`Db::sqlite_file`]).
    sqlite_file: Option<std::path::PathBuf>,
    /// SQLite: the change log's and command queue's heads as committed, announced as each
    /// connection comes back to the pool (see [`Db::committed_heads`]).
    committed: Arc<watch::Sender<LogHeads>>,
}

/// The newest change-log sequence and command id a connection saw when it came back to the
/// pool (SQLite; see [`Db::committed_heads`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogHeads {
    pub change: u64,
    pub command: i64,
}

/// Read by each SQLite connection as it comes back to the pool.
const HEADS_SQL: &str =
    "SELECT (SELECT MAX(seq) FROM change_log), (SELECT MAX(id) FROM gate_commands)";

/// The commit hook of a SQLite pool, run as each connection comes back to it: a connection
/// that committed a change-log entry or a command comes back right after its commit, so
/// reading the heads on it then announces the commit within a fraction of a millisecond,
/// whichever repository wrote it and however it committed. (sqlx's `Any` driver gives no
/// access to SQLite's own commit hook, which fires before the commit is visible anyway.)
///
/// The read is also the round trip that lets a dropped transaction's queued rollback run
/// before the check of [`crate::pool::outside_transaction`]; a connection still inside a
/// transaction announces nothing (what it read is not committed) and is closed. The heads
/// only grow here: two connections coming back at once may read them in either order.
async fn released_sqlite(
    conn: &mut AnyConnection,
    committed: &watch::Sender<LogHeads>,
) -> Result<bool, sqlx::Error> {
    // Before the migrations there is no change log: the failed read is then just the round
    // trip, and a ping makes sure the connection still answers.
    let heads: Result<(Option<i64>, Option<i64>), sqlx::Error> =
        sqlx::query_as(HEADS_SQL).fetch_one(&mut *conn).await;
    let outside = crate::pool::outside_transaction(conn, heads.is_err()).await?;
    if outside && let Ok((change, command)) = heads {
        let (change, command) = (change.unwrap_or(0).max(0) as u64, command.unwrap_or(0));
        committed.send_if_modified(|seen| {
            let newer = change > seen.change || command > seen.command;
            seen.change = seen.change.max(change);
            seen.command = seen.command.max(command);
            newer
        });
    }
    Ok(outside)
}

/// The current time in UTC milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`) and applies migrations. Refuses a
    /// database whose schema is newer than this binary.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Opens (creating) a SQLite database file.
    pub async fn open_sqlite(path: &Path) -> Result<Db, DbError> {
        Db::open(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            DbKind::Postgres
        } else {
            return Err(DbError::UnknownKind(url.to_string()));
        };
        let options = AnyConnectOptions::from_str(url)
            .map_err(DbError::Connect)?
            .log_statements(tracing::log::LevelFilter::Trace);
        let committed = Arc::new(watch::channel(LogHeads::default()).0);
        let hook = committed.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(if kind == DbKind::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if kind == DbKind::Sqlite {
                        // The busy timeout first, so the others wait for a lock instead of
                        // failing; WAL is a property of the file, set once below.
                        for pragma in [
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            // A connection comes back outside any transaction, or is closed (crate::pool); on
            // SQLite it announces the heads it sees (the commit hook, `released_sqlite`).
            .after_release(move |conn, _meta| {
                let hook = hook.clone();
                Box::pin(async move {
                    match kind {
                        DbKind::Sqlite => released_sqlite(conn, &hook).await,
                        DbKind::Postgres => crate::pool::outside_transaction(conn, false).await,
                    }
                })
            })
            .connect_with(options)
            .await
            .map_err(DbError::Connect)?;
        if kind == DbKind::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(DbError::Connect)?;
        }
        let sqlite_file = match kind {
            DbKind::Sqlite => sqlite_file(url),
            DbKind::Postgres => None,
        };
        Ok(Db {
            pool,
            kind,
            sqlite_file,
            committed,
        })
    }

    /// Applies the migrations of this database kind.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.kind {
            DbKind::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            DbKind::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        match migrator.run(&self.pool).await {
            Ok(()) => Ok(()),
            Err(sqlx::migrate::MigrateError::VersionMissing(v)) => Err(DbError::SchemaNewer(v)),
            Err(e) => Err(DbError::Migrate(e)),
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that may write. Every repository change starts here, not at
    /// `pool().begin()`.
    ///
    /// On SQLite the transaction takes the write lock at once (`BEGIN IMMEDIATE`). A deferred
    /// one would take it at its first write, and most changes read first (is the plate taken?
    /// which version is current?): if another connection committed in between, SQLite refuses
    /// the upgrade at once (`SQLITE_BUSY_SNAPSHOT`) without consulting the busy timeout, and an
    /// operator would see "database is locked" while the gates upload. Taking the lock first
    /// makes the transaction wait its turn (up to the busy timeout) and read what it will
    /// write over. PostgreSQL needs no such thing: row locks and constraints settle it there.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.kind {
            DbKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            DbKind::Postgres => self.pool.begin().await,
        }
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// SQLite: the change log's and command queue's heads, announced the moment a connection
    /// that committed a change-log entry or a command comes back to the pool (see
    /// `released_sqlite`): what the sync server wakes its long polls by. `None` on
    /// PostgreSQL, whose triggers NOTIFY every instance at commit instead.
    pub fn committed_heads(&self) -> Option<watch::Receiver<LogHeads>> {
        (self.kind == DbKind::Sqlite).then(|| self.committed.subscribe())
    }

    /// The SQLite database file (`None` on PostgreSQL and for an in-memory database). Bulk
    /// reads (the gates' snapshot) open it with rusqlite, which shares sqlx's SQLite library:
    /// sqlx hands SQLite rows over one at a time through its worker thread (benches/README.md).
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref()
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file a `sqlite:` URL names, if it is a file that exists (not an in-memory database).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    path.is_file().then(|| path.to_path_buf())
}

/// What a repository write did, as [`write_change`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// A row the gates hold was created or changed: audited as this action (`create`,
    /// `update`, `revoke`, …) and logged as an upsert for the gates to fetch.
    Upsert(&'a str),
    /// A row the gates hold was deleted: audited and logged as `delete`.
    Delete,
    /// A change the gates never see (operators, duty, alarms, visits, an approval step):
    /// audited as this action only.
    Audit(&'a str),
}

/// A row as the audit log records it: its JSON form.
pub fn snapshot<T: serde::Serialize + ?Sized>(row: &T) -> serde_json::Value {
    serde_json::to_value(row).unwrap_or(serde_json::Value::Null)
}

/// The tail of every repository write, in the caller's transaction: the audit entry (who,
/// `op`'s action, `entity` `id`, the row before and after) and, unless `op` is
/// [`Op::Audit`], the change-log entry the gates sync from.
pub async fn write_change<T: serde::Serialize + ?Sized>(
    conn: &mut AnyConnection,
    actor: &Actor,
    op: Op<'_>,
    entity: &str,
    id: impl ToString,
    before: Option<&T>,
    after: Option<&T>,
) -> Result<(), RepoError> {
    let id = id.to_string();
    let (action, change) = match op {
        Op::Upsert(action) => (action, Some("upsert")),
        Op::Delete => ("delete", Some("delete")),
        Op::Audit(action) => (action, None),
    };
    let (before, after) = (before.map(snapshot), after.map(snapshot));
    audit(
        &mut *conn,
        actor,
        action,
        entity,
        &id,
        before.as_ref(),
        after.as_ref(),
    )
    .await?;
    if let Some(change) = change {
        record_change(conn, entity, &id, change).await?;
    }
    Ok(())
}

/// Writes an audit entry (in the caller's transaction). Repository writes use
/// [`write_change`]; this is for audit entries that record no write of a row (a refusal, a
/// command sent, a purge).
pub async fn audit(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    entity: &str,
    entity_id: impl ToString,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<(), RepoError> {
    sqlx::query(
        "INSERT INTO audit_log (at_ms, operator_id, operator_name, action, entity, entity_id, \
         before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(now_ms())
    .bind(actor.operator_id)
    .bind(&actor.name)
    .bind(action)
    .bind(entity)
    .bind(entity_id.to_string())
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Which database a connection (or transaction) is on.
pub fn kind_of(conn: &AnyConnection) -> DbKind {
    if conn.backend_name() == "PostgreSQL" {
        DbKind::Postgres
    } else {
        DbKind::Sqlite
    }
}

/// Appends to the change log the gates sync from (in the caller's transaction). Repository
/// writes use [`write_change`]; this is for change-log entries no audit entry goes with.
pub async fn record_change(
    conn: &mut AnyConnection,
    entity: &str,
    entity_id: impl ToString,
    op: &str,
) -> Result<(), RepoError> {
    sqlx::query("INSERT INTO change_log (at_ms, entity, entity_id, op) VALUES ($1, $2, $3, $4)")
        .bind(now_ms())
        .bind(entity)
        .bind(entity_id.to_string())
        .bind(op)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A query on either database, with its arguments bound so far.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// A value bound to a [`Filter`] placeholder (the `Opt…` forms bind NULL for `None`).
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(i64),
    Text(String),
    OptInt(Option<i64>),
    OptText(Option<String>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::OptInt(v)
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_string())
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        Arg::OptText(v)
    }
}

/// A `WHERE` clause assembled from optional search filters, with `$1, $2…` placeholders that
/// both databases accept.
///
/// Not `QueryBuilder<Any>`: in sqlx 0.8 `AnyArguments` keeps the default placeholder, so
/// `push_bind` writes `?`, which PostgreSQL refuses. This numbers its own placeholders; a
/// placeholder may be used more than once in a condition (SQLite's sqlx driver binds `$N` to the
/// N-th argument, PostgreSQL does natively).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl Filter {
    /// An empty filter: matches every row.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Stores `value` and returns its placeholder (`$n`) for use in a condition.
    pub fn arg(&mut self, value: impl Into<Arg>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    /// Adds a condition, joined to the others with `AND`.
    pub fn and(&mut self, condition: String) {
        self.conditions.push(condition);
    }

    /// Adds `column = value`.
    pub fn eq(&mut self, column: &str, value: impl Into<Arg>) {
        let p = self.arg(value);
        self.and(format!("{column} = {p}"));
    }

    /// Adds `column LIKE pattern ESCAPE '\'` (a pattern from [`like_contains`] or
    /// [`like_prefix`]).
    pub fn like(&mut self, column: &str, pattern: String) {
        let p = self.arg(pattern);
        self.and(format!("{column} LIKE {p} ESCAPE '\\'"));
    }

    /// Adds "`column` contains `text`, ignoring case".
    pub fn contains_ci(&mut self, column: &str, text: &str) {
        let p = self.arg(like_contains(text));
        self.and(format!("LOWER({column}) LIKE LOWER({p}) ESCAPE '\\'"));
    }

    /// Adds `from <= column < until` for the bounds given (UTC ms).
    pub fn between(&mut self, column: &str, from: Option<i64>, until: Option<i64>) {
        if let Some(from) = from {
            let p = self.arg(from);
            self.and(format!("{column} >= {p}"));
        }
        if let Some(until) = until {
            let p = self.arg(until);
            self.and(format!("{column} < {p}"));
        }
    }

    /// Adds a condition in which each `{}` takes the next of `args`, in order.
    pub fn and_args(&mut self, clause: &str, args: Vec<Arg>) {
        let mut parts = clause.split("{}");
        let mut condition = parts.next().unwrap_or("").to_string();
        for (part, arg) in parts.zip(args) {
            condition.push_str(&self.arg(arg));
            condition.push_str(part);
        }
        self.and(condition);
    }

    /// ` WHERE a AND b`, or nothing when there are no conditions.
    pub fn where_sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// ` LIMIT $n OFFSET $m` for `page`, numbered after this filter's own placeholders. Bind
    /// with [`Filter::bind_page`].
    pub fn page_sql(&self) -> String {
        let n = self.args.len();
        format!(" LIMIT ${} OFFSET ${}", n + 1, n + 2)
    }

    /// Binds the filter's values to `query`, in placeholder order.
    pub fn bind<'q>(
        &'q self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for a in &self.args {
            query = match a {
                Arg::Int(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.as_str()),
                Arg::OptInt(v) => query.bind(*v),
                Arg::OptText(v) => query.bind(v.as_deref()),
            };
        }
        query
    }

    /// `LIMIT $n OFFSET $m` with the page's values added as arguments (for queries bound with
    /// [`Filter::bind`] after this call).
    pub fn limit(&mut self, page: Page) -> String {
        let l = self.arg(page.limit);
        let o = self.arg(page.offset);
        format!("LIMIT {l} OFFSET {o}")
    }

    /// The rows `sql` (a query ending in this filter's [`Filter::where_sql`] and
    /// [`Filter::page_sql`]) returns for `page`.
    pub async fn fetch_page(
        &self,
        db: &Db,
        sql: &str,
        page: Page,
    ) -> Result<Vec<sqlx::any::AnyRow>, RepoError> {
        Ok(self
            .bind_page(sqlx::query(sql), page)
            .fetch_all(db.pool())
            .await?)
    }

    /// `SELECT COUNT(*) FROM table WHERE …` with the conditions so far (call it before
    /// [`Filter::limit`] adds the paging values).
    pub async fn count(&self, db: &Db, table: &str) -> Result<i64, RepoError> {
        use sqlx::Row;
        let sql = format!("SELECT COUNT(*) AS n FROM {table}{}", self.where_sql());
        let row = self.bind(sqlx::query(&sql)).fetch_one(db.pool()).await?;
        Ok(row.try_get("n")?)
    }

    /// One page of what `select` (a `SELECT … FROM …` with no `WHERE`) returns under this
    /// filter in `order`, each row read by `read`, with the count of every match in `from`.
    pub async fn paged<T>(
        &self,
        db: &Db,
        (from, select): (&str, &str),
        order: &str,
        page: Page,
        read: impl FnMut(&sqlx::any::AnyRow) -> Result<T, RepoError>,
    ) -> Result<Paged<T>, RepoError> {
        let total = self.count(db, from).await?;
        let sql = format!(
            "{select}{} ORDER BY {order}{}",
            self.where_sql(),
            self.page_sql()
        );
        let rows = self.fetch_page(db, &sql, page).await?;
        let items = rows.iter().map(read).collect::<Result<_, _>>()?;
        Ok(Paged { items, total })
    }

    /// Binds the filter's values, then the page's limit and offset (see [`Filter::page_sql`]).
    pub fn bind_page<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        page: Page,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        self.bind(query).bind(page.limit).bind(page.offset)
    }
}

/// A `LIKE` pattern matching `text` anywhere (`%text%`), with `\`, `%` and `_` escaped; use
/// with `ESCAPE '\'`.
pub fn like_contains(text: &str) -> String {
    format!("%{}%", like_escape(text))
}

/// A `LIKE` pattern matching values that start with `text`; use with `ESCAPE '\'`.
pub fn like_prefix(text: &str) -> String {
    format!("{}%", like_escape(text))
}

fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `INSERT INTO target VALUES (…), (…) suffix` for `rows`, `per_statement` rows a statement
/// (`suffix` is e.g. an `ON CONFLICT` clause, or empty). The portable multi-row INSERT the bulk
/// import and the statistics' SQLite path share.
pub(crate) async fn insert_values(
    conn: &mut AnyConnection,
    target: &str,
    rows: &[Vec<Arg>],
    per_statement: usize,
    suffix: &str,
) -> Result<(), RepoError> {
    for chunk in rows.chunks(per_statement) {
        let mut f = Filter::new();
        let values: Vec<String> = chunk
            .iter()
            .map(|row| {
                let ps: Vec<String> = row.iter().map(|a| f.arg(a.clone())).collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        let sql = format!("INSERT INTO {target} VALUES {} {suffix}", values.join(", "));
        f.bind(sqlx::query(&sql)).execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_database_is_created_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("central.db"))
            .await
            .unwrap();
        assert_eq!(db.kind(), DbKind::Sqlite);
        let mut conn = db.pool().acquire().await.unwrap();
        audit(
            &mut conn,
            &Actor::system(),
            "create",
            "person",
            1,
            None,
            None,
        )
        .await
        .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn a_schema_newer_than_the_binary_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("central.db");
        let db = Db::open_sqlite(&path).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', 1, x'00', 0)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        db.close().await;
        let err = Db::open_sqlite(&path).await.unwrap_err();
        assert!(matches!(err, DbError::SchemaNewer(99990101000000)), "{err}");
        assert!(err.to_string().contains("newer than this gatehouse binary"));
    }

    #[tokio::test]
    async fn an_unknown_database_url_is_refused() {
        let err = Db::open("mysql://localhost/x").await.unwrap_err();
        assert!(
            err.to_string()
                .contains("neither sqlite:// nor postgres://")
        );
    }
}
