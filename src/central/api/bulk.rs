//! `/api/v1/bulk/…`: bulk import of people, vehicles and permits from CSV or XLSX, and their
//! export, for the security office and administrators.
//!
//! An import is a **job**: `POST /api/v1/bulk/{kind}/import?commit=false` (a dry run) or
//! `?commit=true` takes the file as the request body (up to [`IMPORT_LIMIT`]) and answers 202
//! with the job's id at once; `GET /api/v1/bulk/jobs/{id}` shows its phase and rows done of
//! rows to do while it runs (the page's progress bar), then every bad row with its line, column
//! and reason in the request's language, and how many rows were imported. A commit writes
//! nothing unless every row is good (see [`crate::central::bulk`]). Jobs live in the server's
//! memory (the last [`KEEP_JOBS`](crate::central::bulk::jobs::KEEP_JOBS)); a restart forgets them, never half an import.
//!
//! Exports (`GET /api/v1/bulk/{kind}/export?format=csv|xlsx`) use the import's columns, so an
//! exported file can be edited and imported elsewhere; ID-card and phone numbers are masked
//! unless the caller's role sees them in full.
//!
//! A file is read and checked in `spawn_blocking`, one at a time ([`IMPORT_WORKERS`](crate::central::bulk::jobs::IMPORT_WORKERS); the
//! others wait as `queued`), so `/healthz`, the consoles and gate sync keep answering; a 413
//! names this route's limit.
//!
//! What it never does: import in the request's own task (a big file would hold the connection),
//! read or check a file on the async workers, or show one operator's job to a role that may
//! not import.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::stats::{check_format, render};
use crate::central::bulk::jobs::{Job, MAX_REPORTED_ERRORS, Outcome};
use crate::central::bulk::{self, Kind, Progress, RowError};
use crate::central::state::AppState;
use crate::i18n::{Lang, Msg};

/// The largest file an import accepts (64 MiB: ~100,000 rows with room to spare).
pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;
/// `?commit=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `false` (default): check only; `true`: check, then import if no row is bad.
    #[serde(default)]
    pub commit: bool,
}

/// `?format=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `csv` (UTF-8 with BOM) or `xlsx`.
    pub format: String,
}

/// A started import.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStarted {
    pub job_id: u64,
}

/// One bad row, in the request's language.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowErrorBody {
    /// The line (CSV) or row (XLSX) in the file; the header is line 1.
    pub line: u64,
    /// The column key, empty for the whole row.
    pub column: String,
    pub code: String,
    pub message: String,
}

/// An import job as the page polls it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobReport {
    pub id: u64,
    /// `persons`, `vehicles` or `permits`.
    pub kind: Kind,
    /// Whether rows are written (false: a dry run).
    pub commit: bool,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// `queued`, `reading`, `checking`, `importing` or `done`.
    pub phase: String,
    /// Rows worked on so far, out of `total` (checking and, for a commit, writing).
    pub processed: u64,
    pub total: u64,
    /// Rows written (0 for a dry run or a file with bad rows).
    pub imported: u64,
    /// The rows that passed every check.
    pub valid_rows: u64,
    /// The bad rows' errors in file order, the first [`MAX_REPORTED_ERRORS`] of them.
    pub errors: Vec<RowErrorBody>,
    /// How many errors the file has (more than `errors` lists when over
    /// [`MAX_REPORTED_ERRORS`]).
    pub error_count: u64,
    /// Why the whole file was refused (unreadable, empty), if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

fn kind(code: &str) -> ApiResult<Kind> {
    Kind::from_code(code).ok_or_else(|| {
        ApiError::NotFound(Msg::new(
            format!("没有“{code}”这类数据：可为 persons、vehicles 或 permits"),
            format!("no {code:?} data: persons, vehicles or permits"),
        ))
    })
}

/// Reads and checks the file off the async workers (a big file is seconds of CPU; `/healthz`,
/// the consoles and gate sync must keep answering meanwhile), one file at a time.
async fn read_and_check(
    state: &AppState,
    job: &Arc<Job>,
    file: Bytes,
) -> Result<(bulk::Prepared, Vec<RowError>), Outcome> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "bulk import {what} failed");
        Outcome::Failed(Msg::new(
            "服务器内部错误，请联系管理员",
            "Internal server error",
        ))
    };
    job.progress.set_phase("queued");
    let _turn = state
        .jobs
        .workers
        .acquire()
        .await
        .map_err(|e| internal("queue", &e))?;
    job.progress.set_phase("reading");
    let kind = job.kind;
    // The upload is dropped as soon as it has been read: only the kept cells stay.
    let sheet = tokio::task::spawn_blocking(move || bulk::read(kind, &file))
        .await
        .map_err(|e| internal("read", &e))?
        .map_err(|e| Outcome::Failed(e.0))?;
    let rows = sheet.rows.len() as u64;
    job.progress
        .total
        .store(if job.commit { rows * 2 } else { rows }, Ordering::Relaxed);
    let lookups = bulk::lookups(&state.db, kind)
        .await
        .map_err(|e| internal("check", &e))?;
    let job = job.clone();
    let tz = state.site_tz;
    tokio::task::spawn_blocking(move || bulk::check(kind, &sheet, &lookups, tz, &job.progress))
        .await
        .map_err(|e| internal("check", &e))
}

async fn run(state: AppState, actor: crate::central::db::Actor, job: Arc<Job>, file: Bytes) {
    let outcome = match read_and_check(&state, &job, file).await {
        Err(outcome) => outcome,
        Ok((_, mut errors)) if !errors.is_empty() || !job.commit => {
            let bad_rows = errors
                .iter()
                .map(|e| e.line)
                .collect::<std::collections::HashSet<_>>()
                .len() as u64;
            let error_count = errors.len() as u64;
            errors.truncate(MAX_REPORTED_ERRORS);
            errors.shrink_to_fit();
            Outcome::Done {
                errors,
                error_count,
                bad_rows,
                imported: 0,
            }
        }
        Ok((prepared, _)) => {
            match bulk::commit(&state.db, &actor, &prepared, &job.progress).await {
                Ok(n) => Outcome::Done {
                    errors: vec![],
                    error_count: 0,
                    bad_rows: 0,
                    imported: n,
                },
                Err(e) => {
                    tracing::error!(error = %e, "bulk import commit failed");
                    Outcome::Failed(Msg::new(
                        "导入失败，未写入任何数据（可能有人同时登记了相同记录），请重新检查后再试",
                        "The import failed and wrote nothing (someone may have registered the same records meanwhile); check again and retry",
                    ))
                }
            }
        }
    };
    job.progress.set_phase("done");
    if let Ok(mut o) = job.outcome.lock() {
        *o = Some(outcome);
    }
}

/// Start an import (a dry run unless `commit=true`) of the CSV or XLSX file in the body.
#[utoipa::path(post, path = "/api/v1/bulk/{kind}/import", tag = "bulk",
    params(("kind" = String, Path, description = "persons, vehicles or permits"), ImportQuery),
    request_body(content = Vec<u8>, description = "The CSV (UTF-8) or XLSX file",
        content_type = "application/octet-stream"),
    responses((status = 202, body = JobStarted), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start_import(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    file: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, ApiJson<JobStarted>)> {
    let kind = kind(&code)?;
    let file = file.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: IMPORT_LIMIT,
            }
        } else {
            ApiError::BadRequest(Msg::new("无法读取上传的文件", "The upload cannot be read"))
        }
    })?;
    let (id, job) = state.jobs.add(Job {
        kind,
        commit: q.commit,
        progress: Progress::default(),
        outcome: Mutex::new(None),
    });
    job.progress.set_phase("queued");
    tokio::spawn(run(state.clone(), authed.actor(), job, file));
    Ok((StatusCode::ACCEPTED, ApiJson(JobStarted { job_id: id })))
}

/// An import job's progress and, when done, its report.
#[utoipa::path(get, path = "/api/v1/bulk/jobs/{id}", tag = "bulk", params(("id" = u64, Path)),
    responses((status = 200, body = JobReport), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<ApiJson<JobReport>> {
    let lang = Lang::from_headers(&headers);
    let job = state.jobs.get(id).ok_or_else(|| {
        ApiError::NotFound(Msg::new(
            format!("导入任务 {id} 不存在（或已过期）"),
            format!("import job {id} does not exist (or has expired)"),
        ))
    })?;
    let outcome = job.outcome.lock().ok().and_then(|o| o.clone());
    let phase = job.progress.phase.lock().map(|p| *p).unwrap_or("reading");
    let total = job.progress.total.load(Ordering::Relaxed);
    let processed = job.progress.done.load(Ordering::Relaxed);
    let (state_text, errors, error_count, bad_rows, imported, failure) = match &outcome {
        None => ("running", vec![], 0, 0, 0, None),
        Some(Outcome::Done {
            errors,
            error_count,
            bad_rows,
            imported,
        }) => (
            "done",
            errors.clone(),
            *error_count,
            *bad_rows,
            *imported,
            None,
        ),
        Some(Outcome::Failed(m)) => ("failed", vec![], 0, 0, 0, Some(m.get(lang).to_string())),
    };
    let rows = if job.commit { total / 2 } else { total };
    Ok(ApiJson(JobReport {
        id,
        kind: job.kind,
        commit: job.commit,
        state: state_text.into(),
        phase: phase.into(),
        processed,
        total,
        imported,
        valid_rows: if outcome.is_some() {
            rows.saturating_sub(bad_rows)
        } else {
            0
        },
        error_count,
        errors: errors
            .into_iter()
            .map(|e| RowErrorBody {
                line: e.line,
                column: e.column,
                code: e.code.into(),
                message: e.message.get(lang).into(),
            })
            .collect(),
        failure,
    }))
}

/// Export every person, vehicle or permit in the import's columns, as CSV or XLSX.
#[utoipa::path(get, path = "/api/v1/bulk/{kind}/export", tag = "bulk",
    params(("kind" = String, Path, description = "persons, vehicles or permits"), FormatQuery),
    responses((status = 200, description = "The CSV or XLSX file"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn export(
    State(state): State<AppState>,
    authed: Authed,
    headers: HeaderMap,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<FormatQuery>,
) -> ApiResult<Response> {
    let kind = kind(&code)?;
    check_format(&q.format)?;
    let lang = Lang::from_headers(&headers);
    let table = bulk::table(&state.db, kind, authed.sees_personal_ids(), state.site_tz)
        .await
        .map_err(ApiError::from)?;
    render(
        &table,
        &q.format,
        lang,
        &format!("gatehouse-{}", kind.as_str()),
    )
}

/// The bulk routes; the import route takes files up to [`IMPORT_LIMIT`].
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_import))
        .layer(DefaultBodyLimit::max(IMPORT_LIMIT))
        .routes(routes!(get_job))
        .routes(routes!(export))
}
