//! One row's cells by column key, and each cell read as what the import expects: a person
//! category, a plate colour, a vehicle type (codes or their Chinese names), a site-local time,
//! a yes/no flag, an ID-card number. A bad cell becomes a [`RowError`] on its row and column.
//!
//! What it never does: look anything up (the database or the rest of the file).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{Kind, RowError};
use crate::central::repo::persons::{self, check_id_card};
use crate::central::repo::vehicles::VEHICLE_TYPES;
use crate::central::validate;
use crate::domain::PlateColour;
use crate::i18n::Msg;

/// A row's cells by column key.
pub(super) struct Cells<'a> {
    pub(super) line: u64,
    pub(super) index: &'a HashMap<&'static str, usize>,
    pub(super) cells: &'a [String],
    pub(super) errors: &'a mut Vec<RowError>,
}

impl Cells<'_> {
    pub(super) fn get(&self, key: &str) -> String {
        self.index
            .get(key)
            .and_then(|i| self.cells.get(*i))
            .map(|c| c.trim().to_string())
            .unwrap_or_default()
    }

    pub(super) fn error(&mut self, column: &str, code: &'static str, message: Msg) {
        self.errors.push(RowError {
            line: self.line,
            column: column.to_string(),
            code,
            message,
        });
    }

    /// The cell, or an error when it is empty.
    pub(super) fn required(&mut self, key: &str, zh: &str) -> Option<String> {
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
pub(super) fn header_index(
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
            .find(|(key, zh, _)| super::header_names(key, zh, h))
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
pub(super) fn category(text: &str) -> Option<&'static str> {
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

pub(super) fn category_error(c: &mut Cells<'_>, found: &str) {
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

pub(super) fn colour(text: &str) -> Option<&'static str> {
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

pub(super) fn vehicle_type(text: &str) -> Option<&'static str> {
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

/// A time in the site's zone `tz`: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` (also with `/`), or RFC 3339.
pub(super) fn local_time(tz: Tz, text: &str) -> Option<DateTime<Utc>> {
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
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn time_cell(c: &mut Cells<'_>, tz: Tz, key: &'static str, zh: &str) -> Option<i64> {
    let text = c.required(key, zh)?;
    match local_time(tz, &text) {
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

pub(super) fn bool_cell(c: &mut Cells<'_>, key: &'static str) -> bool {
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

pub(super) fn id_card_cell(c: &mut Cells<'_>, key: &'static str, text: &str) -> Option<String> {
    match check_id_card(text) {
        Ok(n) => Some(n),
        Err(e) => {
            c.error(key, e.code(), validate::id_card_message(&e));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_cell_is_read_in_the_site_zone_it_is_given() {
        let utc = |h| Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).unwrap();
        let shanghai = local_time(chrono_tz::Asia::Shanghai, "2026-03-01 08:00");
        assert_eq!(shanghai, Some(utc(0)));
        let urumqi = local_time(chrono_tz::Asia::Urumqi, "2026/03/01 08:00");
        assert_eq!(urumqi, Some(utc(2)));
        let explicit = local_time(chrono_tz::Asia::Urumqi, "2026-03-01T08:00:00+08:00");
        assert_eq!(
            explicit,
            Some(utc(0)),
            "an RFC 3339 time keeps its own offset"
        );
    }
}
