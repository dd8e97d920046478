//! Bulk import and export of people, vehicles and permits, as a university's HR and student
//! systems produce them: CSV (UTF-8, with or without a byte-order mark) or XLSX (the first
//! sheet), a header row naming the columns (English keys or their Chinese names, in any order;
//! other columns are ignored), tens of thousands of rows.
//!
//! An import is two steps over the whole file: [`check`] validates **every** row against the
//! same rules as the API (and against the database and the rest of the file: duplicates,
//! unknown owners and vehicles) and reports each bad row with its line, column and a reason in
//! both languages; only a file with no bad row is written, by [`commit`], in **one
//! transaction** (every row, its audit entry and its change-log entry — or nothing). Both steps
//! count rows into a [`Progress`] the API shows while a large file is worked on.
//!
//! People and vehicles are linked by ID-card number (身份证号), which HR files carry; permits name
//! their holder by ID-card number and their vehicle by plate.
//!
//! A file is untrusted input on the server every gate syncs with, so [`read`] streams it: cells
//! one by one (never a whole-sheet grid, whose extent a 1.5 KB file can set to 16 billion
//! cells), only the columns the import reads kept, and each limit (`MAX_*` below) checked
//! before what it bounds is allocated; an XLSX's inflated size is checked before calamine
//! reads it. [`read`] and [`check`] are CPU-bound and do no IO: the API runs them off the
//! async workers.
//!
//! What it never does: update or delete existing rows (an import only adds), write anything
//! when any row is bad, or decide who may import (the API does).

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::central::api::error::{ApiError, Msg};
use crate::central::db::{Actor, Arg, Db, DbKind, RepoError, now_ms};
use crate::central::repo::persons::{self, NewPerson, check_id_card};
use crate::central::repo::vehicles::VEHICLE_TYPES;
use crate::central::stats::SITE_TZ;
use crate::domain::text::{parse_gate_rights, parse_schedule};
use crate::domain::{GateRights, Plate, PlateColour};

/// What is imported or exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Persons,
    Vehicles,
    Permits,
}

impl Kind {
    pub fn from_code(code: &str) -> Option<Kind> {
        match code {
            "persons" => Some(Kind::Persons),
            "vehicles" => Some(Kind::Vehicles),
            "permits" => Some(Kind::Permits),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Persons => "persons",
            Kind::Vehicles => "vehicles",
            Kind::Permits => "permits",
        }
    }

    /// The columns of the file: (key, Chinese name, required).
    pub fn columns(self) -> &'static [(&'static str, &'static str, bool)] {
        match self {
            Kind::Persons => &[
                ("name", "姓名", true),
                ("category", "类别", true),
                ("department", "部门", false),
                ("phone", "电话", false),
                ("id_card", "身份证号", false),
            ],
            Kind::Vehicles => &[
                ("plate", "车牌号", true),
                ("plate_colour", "车牌颜色", false),
                ("vehicle_type", "车辆类型", false),
                ("owner_id_card", "车主身份证号", true),
                ("note", "备注", false),
            ],
            Kind::Permits => &[
                ("holder_id_card", "持证人身份证号", true),
                ("plate", "车牌号", true),
                ("category", "类别", true),
                ("valid_from", "生效时间", true),
                ("valid_until", "失效时间", true),
                ("gates", "大门权限", false),
                ("schedule", "通行时段", false),
                ("single_use", "一次性", false),
            ],
        }
    }
}

/// One bad row (or, on line 1, a problem with the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The line (CSV) or row (XLSX) number in the file, the header being 1.
    pub line: u64,
    /// The column key (`plate`, `id_card`, …), empty for the whole row.
    pub column: String,
    /// Stable code (`invalid_plate`, `duplicate_in_file`, …).
    pub code: &'static str,
    pub message: Msg,
}

/// Why a file could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError(pub Msg);

/// The most data rows (after the header) one file may hold. The largest campuses have some
/// 70,000 students and staff; a bigger file is better split, and the cap bounds the rows kept
/// in memory while a file is checked.
pub const MAX_ROWS: usize = 100_000;
/// The most columns a row may have (column `IV`, the old Excel limit). HR exports carry a few
/// dozen; a cell further right is refused instead of widening every row to it.
pub const MAX_COLUMNS: usize = 256;
/// The longest cell, in bytes: a note is at most 500 characters (≤ 2,000 bytes in UTF-8), every
/// other field is shorter.
pub const MAX_CELL_BYTES: usize = 4 * 1024;
/// The most bytes an XLSX file may inflate to, all its parts together: a 100,000-row sheet
/// with its shared strings is some 40 MiB of XML. Checked against the sizes the file declares
/// before anything is inflated, then counted while inflating (declared sizes can lie).
pub const MAX_XLSX_INFLATED: u64 = 256 * 1024 * 1024;
/// The most bytes one part of an XLSX file may inflate to: calamine keeps the shared-string
/// table whole in memory (whatever the part is named), only the sheet itself is streamed.
pub const MAX_PART_INFLATED: u64 = 96 * 1024 * 1024;

/// The file's rows as text, with their line numbers: only the columns the import reads (the
/// header cells that name one of [`Kind::columns`]), so other columns of an HR export cost
/// nothing.
#[derive(Debug, Clone, Default)]
pub struct Sheet {
    pub header: Vec<String>,
    pub rows: Vec<(u64, Vec<String>)>,
}

/// Reads a CSV (UTF-8, BOM optional) or XLSX (recognised by its ZIP signature) file as `kind`,
/// streaming its cells: memory grows with the kept cells, never with the sheet's extent, and
/// every limit ([`MAX_ROWS`], [`MAX_COLUMNS`], [`MAX_CELL_BYTES`], [`MAX_XLSX_INFLATED`],
/// [`MAX_PART_INFLATED`]) is checked before what it bounds is allocated. CPU-bound: callers
/// on an async runtime run it with `spawn_blocking`.
pub fn read(kind: Kind, bytes: &[u8]) -> Result<Sheet, FileError> {
    let mut sheet = Collector::new(kind);
    if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(bytes, &mut sheet)?;
    } else {
        read_csv(bytes, &mut sheet)?;
    }
    sheet.finish()
}

/// Gathers rows as a reader streams them: the first non-blank row is the header and decides
/// which columns are kept.
struct Collector {
    kind: Kind,
    /// The header's kept cells and their column indices, once the header has been seen.
    header: Option<(Vec<String>, Vec<usize>)>,
    rows: Vec<(u64, Vec<String>)>,
}

impl Collector {
    fn new(kind: Kind) -> Collector {
        Collector {
            kind,
            header: None,
            rows: Vec::new(),
        }
    }

    /// One row of the file (`cells` at most [`MAX_COLUMNS`] long, each cell checked).
    fn row(&mut self, line: u64, cells: &[&str]) -> Result<(), FileError> {
        if cells.iter().all(|c| c.trim().is_empty()) {
            return Ok(());
        }
        let Some((_, keep)) = &self.header else {
            let mut names = Vec::new();
            let mut keep = Vec::new();
            for (i, h) in cells.iter().enumerate() {
                let h = h.trim().trim_start_matches('\u{feff}').trim();
                if self
                    .kind
                    .columns()
                    .iter()
                    .any(|(key, zh, _)| h.eq_ignore_ascii_case(key) || h == *zh)
                {
                    names.push(h.to_string());
                    keep.push(i);
                }
            }
            self.header = Some((names, keep));
            return Ok(());
        };
        if self.rows.len() >= MAX_ROWS {
            return Err(FileError(Msg::new(
                format!(
                    "文件超过 {MAX_ROWS} 行数据（第 {line} 行起超出）：请拆分为几个文件分别导入"
                ),
                format!(
                    "The file has more than {MAX_ROWS} data rows (line {line} is over): split it into several files"
                ),
            )));
        }
        let kept = keep
            .iter()
            .map(|i| cells.get(*i).map_or(String::new(), |c| (*c).to_string()))
            .collect();
        self.rows.push((line, kept));
        Ok(())
    }

    fn finish(self) -> Result<Sheet, FileError> {
        let Some((header, _)) = self.header else {
            return Err(FileError(Msg::new(
                "文件是空的：第一行应为表头",
                "The file is empty: the first row must be the header",
            )));
        };
        Ok(Sheet {
            header,
            rows: self.rows,
        })
    }
}

/// A column's spreadsheet name: 0 → `A`, 25 → `Z`, 26 → `AA`.
fn column_name(mut index: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

fn too_many_columns(line: u64, column: usize) -> FileError {
    let cell = format!("{}{line}", column_name(column));
    let last = column_name(MAX_COLUMNS - 1);
    FileError(Msg::new(
        format!(
            "单元格 {cell} 超出导入读取的范围（最多 {MAX_COLUMNS} 列，到 {last} 列为止）：请删除多余的列"
        ),
        format!(
            "Cell {cell} is beyond the columns an import reads ({MAX_COLUMNS}, up to column {last}): delete the extra columns"
        ),
    ))
}

fn cell_too_long(line: u64, column: usize, len: usize) -> FileError {
    let cell = format!("{}{line}", column_name(column));
    FileError(Msg::new(
        format!("单元格 {cell} 内容过长（{len} 字节，上限 {MAX_CELL_BYTES} 字节）"),
        format!("Cell {cell} is too long ({len} bytes; the limit is {MAX_CELL_BYTES} bytes)"),
    ))
}

fn read_csv(bytes: &[u8], sheet: &mut Collector) -> Result<(), FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Err(e) = std::str::from_utf8(bytes) {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        return Err(FileError(Msg::new(
            format!(
                "第 {line} 行不是 UTF-8 编码：请在 Excel 中另存为“CSV UTF-8”，或上传 XLSX 文件"
            ),
            format!(
                "line {line} is not UTF-8: save as \"CSV UTF-8\" in Excel, or upload the XLSX file"
            ),
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    // One record buffer for the whole file: a record is at most a line of the upload.
    let mut record = csv::StringRecord::new();
    // The csv crate counts lines by LF only, so in a file with CR line endings (Excel for
    // Mac's "CSV (Macintosh)") every record was "line 1": a record starts at least one line
    // after the one before it (found by the bulk_import fuzz target).
    let mut last_line = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line()).max(last_line + 1);
                return Err(FileError(Msg::new(
                    format!("第 {line} 行无法按 CSV 读取：{e}"),
                    format!("line {line} cannot be read as CSV: {e}"),
                )));
            }
        }
        let line = record.position().map_or(0, |p| p.line()).max(last_line + 1);
        last_line = line;
        let mut cells = Vec::with_capacity(record.len().min(MAX_COLUMNS));
        for (i, cell) in record.iter().enumerate() {
            if cell.trim().is_empty() {
                cells.push("");
                continue;
            }
            if i >= MAX_COLUMNS {
                return Err(too_many_columns(line, i));
            }
            if cell.len() > MAX_CELL_BYTES {
                return Err(cell_too_long(line, i, cell.len()));
            }
            cells.push(cell);
        }
        sheet.row(line, &cells)?;
    }
}

fn xlsx_unreadable(e: impl std::fmt::Display) -> FileError {
    FileError(Msg::new(
        format!("无法读取 XLSX 文件：{e}"),
        format!("The XLSX file cannot be read: {e}"),
    ))
}

fn xlsx_too_big(part: &str, limit: u64) -> FileError {
    let mib = limit / (1024 * 1024);
    let (zh, en) = if part.is_empty() {
        ("全部内容".to_string(), "all its parts together".to_string())
    } else {
        (part.to_string(), part.to_string())
    };
    FileError(Msg::new(
        format!(
            "XLSX 文件解压后过大（{zh} 超过 {mib} MiB 上限）：请删除多余的工作表、图片和列，或另存为 CSV"
        ),
        format!(
            "The XLSX file is too large once inflated ({en} over the {mib} MiB limit): remove extra sheets, pictures and columns, or save it as CSV"
        ),
    ))
}

/// Refuses a ZIP that would inflate past [`MAX_XLSX_INFLATED`] (or one part past
/// [`MAX_PART_INFLATED`]): first by the sizes its central directory declares, without
/// inflating anything, then by inflating every part into a counter that stops at the limit
/// (a forged size must not let calamine inflate more). Nothing inflated is kept.
fn check_zip_sizes(bytes: &[u8]) -> Result<(), FileError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(xlsx_unreadable)?;
    let mut declared: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(xlsx_unreadable)?;
        let size = entry.size();
        if size > MAX_PART_INFLATED {
            let name = entry.name().map_err(xlsx_unreadable)?;
            return Err(xlsx_too_big(&name, MAX_PART_INFLATED));
        }
        declared = declared.saturating_add(size);
        if declared > MAX_XLSX_INFLATED {
            return Err(xlsx_too_big("", MAX_XLSX_INFLATED));
        }
    }
    let mut budget = MAX_XLSX_INFLATED;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(xlsx_unreadable)?;
        let name = entry.name().map_err(xlsx_unreadable)?.into_owned();
        let limit = budget.min(MAX_PART_INFLATED);
        let inflated = std::io::copy(
            &mut std::io::Read::take(&mut entry, limit + 1),
            &mut std::io::sink(),
        )
        .map_err(xlsx_unreadable)?;
        if inflated > limit {
            return Err(if limit == MAX_PART_INFLATED {
                xlsx_too_big(&name, MAX_PART_INFLATED)
            } else {
                xlsx_too_big("", MAX_XLSX_INFLATED)
            });
        }
        budget -= inflated;
    }
    Ok(())
}

/// An XLSX cell as the text a user sees.
fn cell_text(cell: &calamine::DataRef<'_>) -> String {
    use calamine::DataRef;
    match cell {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(n) => n.to_string(),
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        DataRef::Float(f) => f.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) => d
            .as_datetime()
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => format!("#{e:?}"),
    }
}

/// Streams the first sheet's cells (calamine's cell reader, never its whole-grid `Range`):
/// blank cells are skipped wherever they are, a row is at most [`MAX_COLUMNS`] wide.
fn read_xlsx(bytes: &[u8], sheet: &mut Collector) -> Result<(), FileError> {
    use calamine::{Reader, Xlsx};
    check_zip_sizes(bytes)?;
    let mut book = Xlsx::new(Cursor::new(bytes)).map_err(xlsx_unreadable)?;
    let Some(first) = book.sheet_names().first().cloned() else {
        return Err(xlsx_unreadable("no sheet"));
    };
    let mut cells = book
        .worksheet_cells_reader(&first)
        .map_err(xlsx_unreadable)?;
    // The row being gathered: its index and its cells, dense up to the last non-blank one.
    let mut current: Option<(u32, Vec<String>)> = None;
    let flush = |row: Option<(u32, Vec<String>)>, sheet: &mut Collector| match row {
        Some((r, cells)) => {
            let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
            sheet.row(u64::from(r) + 1, &refs)
        }
        None => Ok(()),
    };
    while let Some(cell) = cells.next_cell().map_err(xlsx_unreadable)? {
        let text = cell_text(cell.get_value());
        if text.trim().is_empty() {
            continue;
        }
        let (row, col) = cell.get_position();
        let (line, col) = (u64::from(row) + 1, col as usize);
        if col >= MAX_COLUMNS {
            return Err(too_many_columns(line, col));
        }
        if text.len() > MAX_CELL_BYTES {
            return Err(cell_too_long(line, col, text.len()));
        }
        if current.as_ref().is_some_and(|(r, _)| *r != row) {
            flush(current.take(), sheet)?;
        }
        let (_, row_cells) = current.get_or_insert_with(|| (row, Vec::new()));
        if row_cells.len() <= col {
            row_cells.resize(col + 1, String::new());
        }
        row_cells[col] = text;
    }
    flush(current, sheet)
}

/// Rows worked on so far, for the progress the API shows.
#[derive(Debug, Default)]
pub struct Progress {
    /// Rows checked, then rows written (each counted once per step).
    pub done: AtomicU64,
    /// Rows to check plus, for a commit, rows to write.
    pub total: AtomicU64,
    /// `queued`, `reading`, `checking`, `importing`, `done`.
    pub phase: Mutex<&'static str>,
}

impl Progress {
    pub fn set_phase(&self, phase: &'static str) {
        if let Ok(mut p) = self.phase.lock() {
            *p = phase;
        }
    }

    fn tick(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// A vehicle row ready to insert.
#[derive(Debug, Clone)]
pub struct VehicleRow {
    pub plate: String,
    pub plate_colour: String,
    pub vehicle_type: String,
    pub owner_id: i64,
    pub note: String,
}

/// A permit row ready to insert.
#[derive(Debug, Clone)]
pub struct PermitRow {
    pub category: String,
    pub holder_id: i64,
    pub vehicle_id: i64,
    pub valid_from_ms: i64,
    pub valid_until_ms: i64,
    pub gates: String,
    pub schedule: String,
    pub single_use: bool,
}

/// Rows that passed every check.
#[derive(Debug, Clone)]
pub enum Prepared {
    Persons(Vec<NewPerson>),
    Vehicles(Vec<VehicleRow>),
    Permits(Vec<PermitRow>),
}

impl Prepared {
    pub fn len(&self) -> usize {
        match self {
            Prepared::Persons(r) => r.len(),
            Prepared::Vehicles(r) => r.len(),
            Prepared::Permits(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A row's cells by column key.
struct Cells<'a> {
    line: u64,
    index: &'a HashMap<&'static str, usize>,
    cells: &'a [String],
    errors: &'a mut Vec<RowError>,
}

impl Cells<'_> {
    fn get(&self, key: &str) -> String {
        self.index
            .get(key)
            .and_then(|i| self.cells.get(*i))
            .map(|c| c.trim().to_string())
            .unwrap_or_default()
    }

    fn error(&mut self, column: &str, code: &'static str, message: Msg) {
        self.errors.push(RowError {
            line: self.line,
            column: column.to_string(),
            code,
            message,
        });
    }

    /// The cell, or an error when it is empty.
    fn required(&mut self, key: &str, zh: &str) -> Option<String> {
        let v = self.get(key);
        if v.is_empty() {
            self.error(
                key,
                "required",
                Msg::new(format!("“{zh}”不能为空"), format!("{key} is required")),
            );
            None
        } else {
            Some(v)
        }
    }
}

/// Maps header cells to column keys; a missing required column is an error on line 1.
fn header_index(
    kind: Kind,
    header: &[String],
    errors: &mut Vec<RowError>,
) -> HashMap<&'static str, usize> {
    let mut index = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        let h = h.trim().trim_start_matches('\u{feff}');
        if let Some((key, _, _)) = kind
            .columns()
            .iter()
            .find(|(key, zh, _)| h.eq_ignore_ascii_case(key) || h == *zh)
        {
            index.entry(*key).or_insert(i);
        }
    }
    for (key, zh, required) in kind.columns() {
        if *required && !index.contains_key(key) {
            errors.push(RowError {
                line: 1,
                column: key.to_string(),
                code: "missing_column",
                message: Msg::new(
                    format!("表头缺少“{zh}”（{key}）列"),
                    format!("the header has no {key} ({zh}) column"),
                ),
            });
        }
    }
    index
}

/// A person category from its code or Chinese name.
fn category(text: &str) -> Option<&'static str> {
    let code = match text.trim() {
        "教职工" | "教工" | "职工" | "员工" => "staff",
        "学生" => "student",
        "家属" => "family",
        "施工人员" | "承包商" | "外包" => "contractor",
        "公务" | "公务人员" => "official",
        "访客" => "visitor",
        other => other,
    };
    persons::CATEGORIES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(code))
        .copied()
}

fn category_error(c: &mut Cells<'_>, found: &str) {
    c.error(
        "category",
        "invalid_category",
        Msg::new(
            format!(
                "类别“{found}”无效，应为 staff/教职工、student/学生、family/家属、contractor/施工人员、official/公务 或 visitor/访客"
            ),
            format!(
                "category {found:?} is not one of staff, student, family, contractor, official, visitor"
            ),
        ),
    );
}

fn colour(text: &str) -> Option<&'static str> {
    let code = match text.trim().trim_end_matches('牌').trim_end_matches('色') {
        "" => "blue",
        "蓝" => "blue",
        "黄" => "yellow",
        "绿" | "渐变绿" => "green",
        "黄绿" => "yellow_green",
        "白" => "white",
        "黑" => "black",
        other => other,
    };
    PlateColour::from_code(&code.to_ascii_lowercase()).map(|c| c.as_str())
}

fn vehicle_type(text: &str) -> Option<&'static str> {
    let code = match text.trim() {
        "" | "轿车" | "小汽车" => "car",
        "面包车" => "van",
        "货车" | "卡车" => "truck",
        "客车" | "大巴" => "bus",
        "摩托车" => "motorcycle",
        "其他" => "other",
        other => other,
    };
    VEHICLE_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(code))
        .copied()
}

/// A site-local time: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` (also with `/`), or RFC 3339.
fn local_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let text = text.replace('/', "-");
    let naive = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    SITE_TZ
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn time_cell(c: &mut Cells<'_>, key: &'static str, zh: &str) -> Option<i64> {
    let text = c.required(key, zh)?;
    match local_time(&text) {
        Some(t)
            if t.timestamp() % 60 == 0 && (1970..=9999).contains(&chrono::Datelike::year(&t)) =>
        {
            Some(t.timestamp_millis())
        }
        _ => {
            c.error(
                key,
                "invalid_time",
                Msg::new(
                    format!("“{zh}”应为日期或到分钟的时间，如 2026-03-01 或 2026-03-01 08:00（收到“{text}”）"),
                    format!("{key} must be a date or a time to the minute, e.g. 2026-03-01 or 2026-03-01 08:00 (got {text:?})"),
                ),
            );
            None
        }
    }
}

fn bool_cell(c: &mut Cells<'_>, key: &'static str) -> bool {
    match c.get(key).to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "否" | "n" => false,
        "1" | "true" | "yes" | "是" | "y" => true,
        other => {
            let other = other.to_string();
            c.error(
                key,
                "invalid_flag",
                Msg::new(
                    format!("应填“是”或“否”（收到“{other}”）"),
                    format!("{key} must be yes or no (got {other:?})"),
                ),
            );
            false
        }
    }
}

/// The ID-card numbers of every person (normalised) → person id.
async fn people_by_id_card(db: &Db) -> Result<HashMap<String, i64>, RepoError> {
    let rows = sqlx::query("SELECT id, id_card FROM persons WHERE id_card <> ''")
        .fetch_all(db.pool())
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        out.insert(r.try_get("id_card")?, r.try_get("id")?);
    }
    Ok(out)
}

fn id_card_cell(c: &mut Cells<'_>, key: &'static str, text: &str) -> Option<String> {
    match check_id_card(text) {
        Ok(n) => Some(n),
        Err(e) => {
            c.error(
                key,
                e.code(),
                crate::central::api::persons::id_card_message(&e),
            );
            None
        }
    }
}

/// What checking rows needs from the database, read (async) before the rows are checked.
#[derive(Debug, Default)]
pub struct Lookups {
    /// ID-card number → person id.
    people: HashMap<String, i64>,
    /// (plate, colour) of every registered vehicle (vehicles).
    vehicles: HashSet<(String, String)>,
    /// Plate → vehicle ids (permits).
    plates: HashMap<String, Vec<i64>>,
    /// Gate ids (permits).
    gates: HashSet<i64>,
}

/// Reads what [`check`] compares `kind` rows against.
pub async fn lookups(db: &Db, kind: Kind) -> Result<Lookups, RepoError> {
    let mut out = Lookups {
        people: people_by_id_card(db).await?,
        ..Lookups::default()
    };
    match kind {
        Kind::Persons => {}
        Kind::Vehicles => {
            for r in sqlx::query("SELECT plate, plate_colour FROM vehicles")
                .fetch_all(db.pool())
                .await?
            {
                out.vehicles
                    .insert((r.try_get("plate")?, r.try_get("plate_colour")?));
            }
        }
        Kind::Permits => {
            for r in sqlx::query("SELECT id, plate FROM vehicles")
                .fetch_all(db.pool())
                .await?
            {
                out.plates
                    .entry(r.try_get("plate")?)
                    .or_default()
                    .push(r.try_get("id")?);
            }
            out.gates = sqlx::query("SELECT id FROM gates")
                .fetch_all(db.pool())
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
        }
    }
    Ok(out)
}

/// Checks every row of `sheet` as `kind` against `lookups` and the rest of the file: the rows
/// ready to write, and every error found. CPU-bound (no IO): callers on an async runtime run
/// it with `spawn_blocking`.
pub fn check(
    kind: Kind,
    sheet: &Sheet,
    lookups: &Lookups,
    progress: &Progress,
) -> (Prepared, Vec<RowError>) {
    let mut errors = Vec::new();
    let index = header_index(kind, &sheet.header, &mut errors);
    if !errors.is_empty() {
        return (Prepared::Persons(vec![]), errors);
    }
    progress.set_phase("checking");
    match kind {
        Kind::Persons => {
            let existing = &lookups.people;
            let mut seen: HashMap<String, u64> = HashMap::new();
            let mut out = Vec::with_capacity(sheet.rows.len());
            for (line, cells) in &sheet.rows {
                let mut c = Cells {
                    line: *line,
                    index: &index,
                    cells,
                    errors: &mut errors,
                };
                let cat = c.get("category");
                let code = category(&cat);
                if code.is_none() {
                    category_error(&mut c, &cat);
                }
                let new = NewPerson {
                    name: c.get("name"),
                    category: code.unwrap_or("staff").to_string(),
                    department: c.get("department"),
                    phone: c.get("phone"),
                    id_card: c.get("id_card"),
                };
                match crate::central::api::persons::validated(new) {
                    Ok(p) => {
                        if !p.id_card.is_empty() {
                            if let Some(id) = existing.get(&p.id_card) {
                                c.error(
                                    "id_card",
                                    "already_registered",
                                    Msg::new(
                                        format!("身份证号已登记（人员 {id}）"),
                                        format!("this ID-card number is already registered (person {id})"),
                                    ),
                                );
                            } else if let Some(first) = seen.insert(p.id_card.clone(), *line) {
                                c.error(
                                    "id_card",
                                    "duplicate_in_file",
                                    Msg::new(
                                        format!("身份证号与第 {first} 行重复"),
                                        format!("the same ID-card number as line {first}"),
                                    ),
                                );
                            }
                        }
                        out.push(p);
                    }
                    Err(ApiError::Validation(fields)) => {
                        for f in fields {
                            c.error(&f.field, f.code, f.message);
                        }
                    }
                    Err(_) => {}
                }
                progress.tick();
            }
            (Prepared::Persons(out), errors)
        }
        Kind::Vehicles => {
            let (owners, taken) = (&lookups.people, &lookups.vehicles);
            let mut seen: HashMap<(String, String), u64> = HashMap::new();
            let mut out = Vec::with_capacity(sheet.rows.len());
            for (line, cells) in &sheet.rows {
                let mut c = Cells {
                    line: *line,
                    index: &index,
                    cells,
                    errors: &mut errors,
                };
                let before = c.errors.len();
                let plate =
                    c.required("plate", "车牌号")
                        .and_then(|text| match Plate::parse(&text) {
                            Ok(p) => Some(p.as_str().to_string()),
                            Err(e) => {
                                c.error(
                                    "plate",
                                    e.code(),
                                    Msg::plate(&e),
                                );
                                None
                            }
                        });
                let colour_text = c.get("plate_colour");
                let colour = colour(&colour_text);
                if colour.is_none() {
                    c.error(
                        "plate_colour",
                        "invalid_plate_colour",
                        Msg::new(
                            format!("车牌颜色“{colour_text}”无效，应为蓝、黄、绿、黄绿、白、黑（或 blue、yellow、green、yellow_green、white、black）"),
                            format!("plate colour {colour_text:?} is not one of blue, yellow, green, yellow_green, white, black"),
                        ),
                    );
                }
                let type_text = c.get("vehicle_type");
                let vtype = vehicle_type(&type_text);
                if vtype.is_none() {
                    c.error(
                        "vehicle_type",
                        "invalid_vehicle_type",
                        Msg::new(
                            format!("车辆类型“{type_text}”无效，应为 car/轿车、suv、van/面包车、truck/货车、bus/客车、motorcycle/摩托车 或 other/其他"),
                            format!("vehicle type {type_text:?} is not one of car, suv, van, truck, bus, motorcycle, other"),
                        ),
                    );
                }
                let owner = c
                    .required("owner_id_card", "车主身份证号")
                    .and_then(|t| id_card_cell(&mut c, "owner_id_card", &t))
                    .and_then(|n| match owners.get(&n) {
                        Some(id) => Some(*id),
                        None => {
                            c.error(
                                "owner_id_card",
                                "unknown_owner",
                                Msg::new(
                                    "没有持此身份证号的人员：请先导入人员",
                                    "no person has this ID-card number: import the people first",
                                ),
                            );
                            None
                        }
                    });
                let note = c.get("note");
                if note.chars().count() > 500 {
                    c.error(
                        "note",
                        "too_long",
                        Msg::new(
                            "备注最多 500 个字符",
                            "the note has more than 500 characters",
                        ),
                    );
                }
                if let (Some(plate), Some(colour)) = (&plate, colour) {
                    let key = (plate.clone(), colour.to_string());
                    if taken.contains(&key) {
                        c.error(
                            "plate",
                            "already_registered",
                            Msg::new(
                                format!(
                                    "车辆 {plate}（{}）已登记",
                                    crate::central::api::vehicles::colour_zh(colour)
                                ),
                                format!("vehicle {plate} ({colour}) is already registered"),
                            ),
                        );
                    } else if let Some(first) = seen.insert(key, *line) {
                        c.error(
                            "plate",
                            "duplicate_in_file",
                            Msg::new(
                                format!("与第 {first} 行的车辆重复"),
                                format!("the same vehicle as line {first}"),
                            ),
                        );
                    }
                }
                if c.errors.len() == before
                    && let (Some(plate), Some(colour), Some(vtype), Some(owner)) =
                        (plate, colour, vtype, owner)
                {
                    out.push(VehicleRow {
                        plate,
                        plate_colour: colour.into(),
                        vehicle_type: vtype.into(),
                        owner_id: owner,
                        note,
                    });
                }
                progress.tick();
            }
            (Prepared::Vehicles(out), errors)
        }
        Kind::Permits => {
            let (holders, plates, gates) = (&lookups.people, &lookups.plates, &lookups.gates);
            let mut out = Vec::with_capacity(sheet.rows.len());
            for (line, cells) in &sheet.rows {
                let mut c = Cells {
                    line: *line,
                    index: &index,
                    cells,
                    errors: &mut errors,
                };
                let before = c.errors.len();
                let holder = c
                    .required("holder_id_card", "持证人身份证号")
                    .and_then(|t| id_card_cell(&mut c, "holder_id_card", &t))
                    .and_then(|n| match holders.get(&n) {
                        Some(id) => Some(*id),
                        None => {
                            c.error(
                                "holder_id_card",
                                "unknown_person",
                                Msg::new(
                                    "没有持此身份证号的人员：请先导入人员",
                                    "no person has this ID-card number: import the people first",
                                ),
                            );
                            None
                        }
                    });
                let vehicle = c.required("plate", "车牌号").and_then(|text| {
                    let plate = match Plate::parse(&text) {
                        Ok(p) => p.as_str().to_string(),
                        Err(e) => {
                            c.error("plate", e.code(), Msg::plate(&e));
                            return None;
                        }
                    };
                    match plates.get(&plate).map(Vec::as_slice) {
                        Some([one]) => Some(*one),
                        Some(_) => {
                            c.error(
                                "plate",
                                "ambiguous_plate",
                                Msg::new(
                                    format!("车牌 {plate} 登记了多辆（颜色不同）的车辆，请在系统中单独办理"),
                                    format!("plate {plate} is registered for several vehicles (colours); issue this permit in the console"),
                                ),
                            );
                            None
                        }
                        None => {
                            c.error(
                                "plate",
                                "unknown_vehicle",
                                Msg::new(
                                    format!("车辆 {plate} 未登记：请先导入车辆"),
                                    format!("vehicle {plate} is not registered: import the vehicles first"),
                                ),
                            );
                            None
                        }
                    }
                });
                let cat_text = c.get("category");
                let cat = category(&cat_text);
                if cat.is_none() {
                    category_error(&mut c, &cat_text);
                }
                let from = time_cell(&mut c, "valid_from", "生效时间");
                let until = time_cell(&mut c, "valid_until", "失效时间");
                if let (Some(f), Some(u)) = (from, until)
                    && u <= f
                {
                    c.error(
                        "valid_until",
                        "reversed_window",
                        Msg::new(
                            "失效时间须晚于生效时间",
                            "valid_until must be after valid_from",
                        ),
                    );
                }
                let mut gate_text = c.get("gates");
                if gate_text.is_empty() {
                    gate_text = "all".into();
                }
                match parse_gate_rights(&gate_text) {
                    Ok(GateRights::All(_)) => {}
                    Ok(GateRights::Only(rights)) => {
                        let unknown: Vec<String> = rights
                            .iter()
                            .map(|r| i64::from(r.gate.0))
                            .filter(|g| !gates.contains(g))
                            .map(|g| g.to_string())
                            .collect();
                        if !unknown.is_empty() {
                            let list = unknown.join(", ");
                            c.error(
                                "gates",
                                "unknown_gate",
                                Msg::new(
                                    format!("不存在的大门：{list}"),
                                    format!("no such gate: {list}"),
                                ),
                            );
                        }
                    }
                    Err(e) => c.error(
                        "gates",
                        "invalid_gates",
                        Msg::new(
                            format!("大门权限格式不正确（应为 all 或 1;2:exit）：{}", e.0),
                            format!("gates (all, or gate ids such as 1;2:exit): {}", e.0),
                        ),
                    ),
                }
                let schedule = c.get("schedule");
                if let Err(e) = parse_schedule(&schedule) {
                    c.error(
                        "schedule",
                        "invalid_schedule",
                        Msg::new(
                            format!("时段格式不正确（应为 mon-fri 07:00-22:00 之类）：{}", e.0),
                            format!("schedule (e.g. mon-fri 07:00-22:00): {}", e.0),
                        ),
                    );
                }
                let single_use = bool_cell(&mut c, "single_use");
                if c.errors.len() == before
                    && let (Some(holder_id), Some(vehicle_id), Some(cat), Some(f), Some(u)) =
                        (holder, vehicle, cat, from, until)
                {
                    out.push(PermitRow {
                        category: cat.into(),
                        holder_id,
                        vehicle_id,
                        valid_from_ms: f,
                        valid_until_ms: u,
                        gates: gate_text,
                        schedule,
                        single_use,
                    });
                }
                progress.tick();
            }
            (Prepared::Permits(out), errors)
        }
    }
}

/// Rows per multi-row INSERT: SQLite runs small statements fastest through sqlx (see
/// `repo::events`), PostgreSQL saves a round trip per row.
fn batch(db: &Db) -> usize {
    match db.kind() {
        DbKind::Sqlite => 10,
        DbKind::Postgres => 500,
    }
}

/// `n` fresh ids for `table`, so its rows can be written in multi-row INSERTs and still be
/// audited by id (neither database promises the order of `RETURNING` rows). The one dialect
/// difference of this module: PostgreSQL draws them from the identity sequence; SQLite counts
/// on from the largest id — a concurrent insert then fails this transaction (all or nothing)
/// instead of colliding silently.
async fn allocate_ids(
    conn: &mut AnyConnection,
    kind: DbKind,
    table: &str,
    n: usize,
) -> Result<Vec<i64>, RepoError> {
    if n == 0 {
        return Ok(vec![]);
    }
    match kind {
        DbKind::Postgres => {
            let sql = format!(
                "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id \
                 FROM generate_series(1, $1) ORDER BY 1"
            );
            let rows = sqlx::query(&sql)
                .bind(n as i64)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        }
        DbKind::Sqlite => {
            let max: i64 = sqlx::query(&format!("SELECT COALESCE(MAX(id), 0) AS m FROM {table}"))
                .fetch_one(&mut *conn)
                .await?
                .try_get("m")?;
            Ok((1..=n as i64).map(|k| max + k).collect())
        }
    }
}

/// Writes checked rows in one transaction: each row, its audit entry (`import`) and its
/// change-log entry, plus one summary audit entry. Returns the rows written.
pub async fn commit(
    db: &Db,
    actor: &Actor,
    rows: &Prepared,
    progress: &Progress,
) -> Result<u64, RepoError> {
    progress.set_phase("importing");
    let now = now_ms();
    let batch = batch(db);
    let mut tx = db.begin().await?;
    // (entity, id, the row as audited)
    let mut written: Vec<(&'static str, i64, serde_json::Value)> = Vec::with_capacity(rows.len());
    let mut values: Vec<Vec<Arg>> = Vec::with_capacity(rows.len());
    match rows {
        Prepared::Persons(list) => {
            let ids = allocate_ids(&mut tx, db.kind(), "persons", list.len()).await?;
            for (p, id) in list.iter().zip(ids) {
                values.push(vec![
                    id.into(),
                    p.name.as_str().into(),
                    p.category.as_str().into(),
                    p.department.as_str().into(),
                    p.phone.as_str().into(),
                    p.id_card.as_str().into(),
                    now.into(),
                    now.into(),
                ]);
                let mut v = serde_json::to_value(p).unwrap_or_default();
                v["id"] = id.into();
                written.push((persons::ENTITY, id, v));
            }
            for chunk in values.chunks(batch) {
                crate::central::db::insert_values(
                    &mut tx,
                    "persons (id, name, category, department, phone, id_card, created_ms, updated_ms)",
                    chunk,
                    batch, "",)
                .await?;
                progress
                    .done
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
        Prepared::Vehicles(list) => {
            let ids = allocate_ids(&mut tx, db.kind(), "vehicles", list.len()).await?;
            for (v, id) in list.iter().zip(ids) {
                values.push(vec![
                    id.into(),
                    v.plate.as_str().into(),
                    v.plate_colour.as_str().into(),
                    v.vehicle_type.as_str().into(),
                    v.owner_id.into(),
                    v.note.as_str().into(),
                    now.into(),
                    now.into(),
                ]);
                let json = serde_json::json!({"id": id, "plate": v.plate, "plate_colour": v.plate_colour,
                    "vehicle_type": v.vehicle_type, "owner_id": v.owner_id, "note": v.note});
                written.push((crate::central::repo::vehicles::ENTITY, id, json));
            }
            for chunk in values.chunks(batch) {
                crate::central::db::insert_values(
                    &mut tx,
                    "vehicles (id, plate, plate_colour, vehicle_type, owner_id, note, created_ms, updated_ms)",
                    chunk,
                    batch, "",)
                .await?;
                progress
                    .done
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
        Prepared::Permits(list) => {
            let ids = allocate_ids(&mut tx, db.kind(), "permits", list.len()).await?;
            let mut links = Vec::with_capacity(list.len());
            for (p, id) in list.iter().zip(ids) {
                values.push(vec![
                    id.into(),
                    p.category.as_str().into(),
                    p.holder_id.into(),
                    p.valid_from_ms.into(),
                    p.valid_until_ms.into(),
                    p.gates.as_str().into(),
                    p.schedule.as_str().into(),
                    i64::from(p.single_use).into(),
                    "active".into(),
                    "".into(),
                    1i64.into(),
                    now.into(),
                    now.into(),
                ]);
                links.push(vec![Arg::Int(id), Arg::Int(p.vehicle_id)]);
                let json = serde_json::json!({"id": id, "category": p.category,
                    "holder_id": p.holder_id, "vehicle_ids": [p.vehicle_id],
                    "valid_from_ms": p.valid_from_ms, "valid_until_ms": p.valid_until_ms,
                    "gates": p.gates, "schedule": p.schedule, "single_use": p.single_use,
                    "status": "active", "version": 1});
                written.push((crate::central::repo::permits::ENTITY, id, json));
            }
            for chunk in values.chunks(batch) {
                crate::central::db::insert_values(
                    &mut tx,
                    "permits (id, category, holder_id, valid_from_ms, valid_until_ms, gates, \
                     schedule, single_use, status, status_reason, version, created_ms, updated_ms)",
                    chunk,
                    batch,
                    "",
                )
                .await?;
                progress
                    .done
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            crate::central::db::insert_values(
                &mut tx,
                "permit_vehicles (permit_id, vehicle_id)",
                &links,
                batch,
                "",
            )
            .await?;
        }
    }
    let audits: Vec<Vec<Arg>> = written
        .iter()
        .map(|(entity, id, json)| {
            vec![
                now.into(),
                actor.operator_id.into(),
                actor.name.as_str().into(),
                "import".into(),
                (*entity).into(),
                id.to_string().into(),
                Arg::OptText(None),
                json.to_string().into(),
            ]
        })
        .collect();
    crate::central::db::insert_values(
        &mut tx,
        "audit_log (at_ms, operator_id, operator_name, action, entity, entity_id, before_json, after_json)",
        &audits,
        batch, "",)
    .await?;
    let changes: Vec<Vec<Arg>> = written
        .iter()
        .map(|(entity, id, _)| {
            vec![
                now.into(),
                (*entity).into(),
                id.to_string().into(),
                "upsert".into(),
            ]
        })
        .collect();
    crate::central::db::insert_values(
        &mut tx,
        "change_log (at_ms, entity, entity_id, op)",
        &changes,
        batch,
        "",
    )
    .await?;
    let summary = serde_json::json!({"rows": written.len()});
    crate::central::db::audit(
        &mut tx,
        actor,
        "bulk_import",
        written.first().map_or("import", |w| w.0),
        "",
        None,
        Some(&summary),
    )
    .await?;
    tx.commit().await?;
    Ok(written.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_with_classic_mac_line_endings_numbers_each_row_on_its_own_line() {
        let file = "姓名,类别\r张三,staff\r李四,student\r";
        let sheet = read(Kind::Persons, file.as_bytes()).expect("a CR-only CSV reads");
        let lines: Vec<u64> = sheet.rows.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [2, 3]);
    }
}
