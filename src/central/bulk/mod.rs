//! Bulk import and export of people, vehicles and permits, as a university's HR and student
//! systems produce them: CSV (UTF-8, with or without a byte-order mark) or XLSX (the first
//! sheet), a header row naming the columns (English keys or their Chinese names, in any order;
//! other columns are ignored), tens of thousands of rows.
//!
//! An import is two steps over the whole file: [`check()`] validates **every** row against the
//! same rules as the API (and against the database and the rest of the file: duplicates,
//! unknown owners and vehicles) and reports each bad row with its line, column and a reason in
//! both languages; only a file with no bad row is written, by [`commit()`], in **one
//! transaction** (every row, its audit entry and its change-log entry — or nothing). Both steps
//! count rows into a [`Progress`] the API shows while a large file is worked on.
//!
//! People and vehicles are linked by ID-card number (身份证号), which HR files carry; permits name
//! their holder by ID-card number and their vehicle by plate.
//!
//! A file is untrusted input on the server every gate syncs with, so [`read()`] streams it: cells
//! one by one (never a whole-sheet grid, whose extent a 1.5 KB file can set to 16 billion
//! cells), only the columns the import reads kept, and each limit (`MAX_*` below) checked
//! before what it bounds is allocated; an XLSX's inflated size is checked before calamine
//! reads it. [`read()`] and [`check()`] are CPU-bound and do no IO: the API runs them off the
//! async workers.
//!
//! What it never does: update or delete existing rows (an import only adds), write anything
//! when any row is bad, or decide who may import (the API does).
//!
//! - `read` — the file's cells, streamed and bounded (CSV or XLSX);
//! - `check` — every row against the API's rules, the database and the rest of the file;
//! - `cells` — one cell read as a category, colour, time or flag;
//! - `commit` — the checked rows written in one transaction;
//! - `export` — every person, vehicle or permit as a table in the import's columns.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::central::repo::persons::NewPerson;
use crate::i18n::Msg;

mod cells;
pub mod check;
pub mod commit;
pub mod export;
pub mod jobs;
pub mod read;

pub use check::{Lookups, check, lookups};
pub use commit::commit;
pub use export::table;
pub use read::{
    MAX_CELL_BYTES, MAX_COLUMNS, MAX_PART_INFLATED, MAX_ROWS, MAX_XLSX_INFLATED, Sheet, read,
};

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
                ("staff_no", "工号/学号", false),
                ("email", "邮箱", false),
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

/// Whether the header cell `h` names the column (`key`, Chinese name `zh`): its key (any case),
/// its Chinese name, or one of the other names HR and student-system files give it.
pub fn header_names(key: &str, zh: &str, h: &str) -> bool {
    const ALIASES: &[(&str, &[&str])] = &[
        ("staff_no", &["工号", "学号", "工号学号"]),
        ("email", &["电子邮箱", "电子邮件", "e-mail"]),
    ];
    h.eq_ignore_ascii_case(key)
        || h == zh
        || ALIASES
            .iter()
            .any(|(k, names)| *k == key && names.iter().any(|n| h.eq_ignore_ascii_case(n)))
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.en)]
pub struct FileError(pub Msg);

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

    pub(crate) fn tick(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// A vehicle row of an import, checked and ready to insert.
#[derive(Debug, Clone)]
pub struct VehicleImportRow {
    pub plate: String,
    pub plate_colour: String,
    pub vehicle_type: String,
    pub owner_id: i64,
    pub note: String,
}

/// A permit row of an import, checked and ready to insert.
#[derive(Debug, Clone)]
pub struct PermitImportRow {
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
    Vehicles(Vec<VehicleImportRow>),
    Permits(Vec<PermitImportRow>),
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
