//! The text forms of permit rules, as people type them in CSV files and forms, and as the gate's
//! local store keeps them:
//!
//! - directions: `entry`, `exit`, `entry+exit` (also `both`);
//! - gate rights: `all` or `all:exit`, or a list of gate ids with optional directions,
//!   `1;2:exit` (a gate without directions allows both);
//! - schedules: empty or `always`, or windows separated by `;`, each `DAYS HH:MM-HH:MM` where DAYS
//!   is `daily`, `workdays`, `weekend`, a range `mon-fri` or a list `mon,wed,fri`; an end before
//!   the start runs overnight (`fri 22:00-06:00`);
//! - local times: `YYYY-MM-DD HH:MM` in the site's time zone (`YYYY-MM-DD` means midnight).
//!
//! Every parser says precisely what is wrong. This module never does IO.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;

use super::{
    Direction, DirectionSet, GateId, GateRight, GateRights, PersonCategory, Schedule, TimeWindow,
    UtcMinute, Weekdays,
};

/// A text form that does not parse, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TextError(pub String);

fn err<T>(message: String) -> Result<T, TextError> {
    Err(TextError(message))
}

/// Parses `entry`, `exit`, `entry+exit` or `both`.
pub fn parse_directions(text: &str) -> Result<DirectionSet, TextError> {
    match text.trim() {
        "entry" => Ok(DirectionSet::ENTRY),
        "exit" => Ok(DirectionSet::EXIT),
        "entry+exit" | "exit+entry" | "both" => Ok(DirectionSet::BOTH),
        other => err(format!(
            "directions {other:?} is not entry, exit or entry+exit"
        )),
    }
}

/// Parses a single direction.
pub fn parse_direction(text: &str) -> Result<Direction, TextError> {
    match text.trim() {
        "entry" => Ok(Direction::Entry),
        "exit" => Ok(Direction::Exit),
        other => err(format!("direction {other:?} is not entry or exit")),
    }
}

/// Parses gate rights: `all`, `all:DIRS`, or `ID[:DIRS];ID[:DIRS]…`.
pub fn parse_gate_rights(text: &str) -> Result<GateRights, TextError> {
    let text = text.trim();
    if text.is_empty() {
        return err("gates must not be empty (use all, or gate ids such as 1;2:exit)".into());
    }
    let split = |item: &str| -> Result<(String, DirectionSet), TextError> {
        match item.split_once(':') {
            Some((gate, dirs)) => Ok((gate.trim().to_string(), parse_directions(dirs)?)),
            None => Ok((item.trim().to_string(), DirectionSet::BOTH)),
        }
    };
    let items: Vec<&str> = text.split(';').filter(|s| !s.trim().is_empty()).collect();
    if items.len() == 1 {
        let (gate, dirs) = split(items[0])?;
        if gate == "all" {
            return Ok(GateRights::All(dirs));
        }
    }
    let mut rights = Vec::with_capacity(items.len());
    for item in items {
        let (gate, directions) = split(item)?;
        let Ok(id) = gate.parse::<u16>() else {
            return err(format!("gate {gate:?} is not a gate id (a number) or all"));
        };
        if rights.iter().any(|r: &GateRight| r.gate == GateId(id)) {
            return err(format!("gate {id} is listed twice"));
        }
        rights.push(GateRight {
            gate: GateId(id),
            directions,
        });
    }
    Ok(GateRights::Only(rights.into_boxed_slice()))
}

fn parse_day(text: &str) -> Result<Weekday, TextError> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        other => {
            return err(format!(
                "day {other:?} is not mon, tue, wed, thu, fri, sat or sun"
            ));
        }
    })
}

fn parse_days(text: &str) -> Result<Weekdays, TextError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "daily" | "all" => return Ok(Weekdays::ALL),
        "workdays" => return Ok(Weekdays::WORKDAYS),
        "weekend" => return Ok(Weekdays::WEEKEND),
        _ => {}
    }
    let mut days = Vec::new();
    for part in text.split(',') {
        if let Some((from, to)) = part.split_once('-') {
            let (mut d, to) = (parse_day(from)?, parse_day(to)?);
            days.push(d);
            while d != to {
                d = d.succ();
                days.push(d);
            }
        } else {
            days.push(parse_day(part)?);
        }
    }
    Ok(Weekdays::of(&days))
}

fn parse_clock(text: &str) -> Result<u16, TextError> {
    let t = NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| TextError(format!("time {:?} is not HH:MM", text.trim())))?;
    use chrono::Timelike;
    Ok((t.hour() * 60 + t.minute()) as u16)
}

/// Parses a schedule: empty / `always`, or `DAYS HH:MM-HH:MM` windows separated by `;`.
pub fn parse_schedule(text: &str) -> Result<Schedule, TextError> {
    let text = text.trim();
    if text.is_empty() || text == "always" {
        return Ok(Schedule::always());
    }
    let mut windows = Vec::new();
    for window in text.split(';').map(str::trim).filter(|w| !w.is_empty()) {
        let Some((days, times)) = window.rsplit_once(' ') else {
            return err(format!(
                "schedule window {window:?} is not DAYS HH:MM-HH:MM (e.g. mon-fri 07:00-22:00)"
            ));
        };
        let Some((start, end)) = times.split_once('-') else {
            return err(format!(
                "schedule window {window:?} has no HH:MM-HH:MM range"
            ));
        };
        let (start, end) = (parse_clock(start)?, parse_clock(end)?);
        let days = parse_days(days)?;
        windows.push(TimeWindow::new(days, start, end).map_err(|e| TextError(e.to_string()))?);
    }
    Ok(Schedule::new(windows))
}

/// Parses a person category code (`staff`, `student`, ...).
pub fn parse_category(text: &str) -> Result<PersonCategory, TextError> {
    Ok(match text.trim() {
        "staff" => PersonCategory::Staff,
        "student" => PersonCategory::Student,
        "family" => PersonCategory::Family,
        "contractor" => PersonCategory::Contractor,
        "official" => PersonCategory::Official,
        "visitor" => PersonCategory::Visitor,
        other => {
            return err(format!(
                "category {other:?} is not staff, student, family, contractor, official or visitor"
            ));
        }
    })
}

/// Parses `YYYY-MM-DD HH:MM` (or `YYYY-MM-DD`, midnight) in the site's time zone.
pub fn parse_local_minute(text: &str, tz: Tz) -> Result<UtcMinute, TextError> {
    let text = text.trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN))
        })
        .map_err(|_| TextError(format!("time {text:?} is not YYYY-MM-DD HH:MM")))?;
    let local = tz
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| TextError(format!("time {text:?} does not exist in {tz}")))?;
    Ok(UtcMinute::from_datetime(local.with_timezone(&chrono::Utc)))
}

/// The first character of `text` that has no place in what people type into a name, a plate or
/// a note: a control character (C0, DEL, C1: invisible in a list, they break CSV rows and
/// terminal logs) or a bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069, which
/// make `京A12345` display as something else). Line breaks (LF, CR) are allowed when
/// `multiline` (notes and reasons typed in a text area); a tab never is.
pub fn unprintable_char(text: &str, multiline: bool) -> Option<char> {
    text.chars().find(|&c| {
        let line_break = c == '\n' || c == '\r';
        (c.is_control() && !(multiline && line_break))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn gate_rights_read_all_single_gates_and_directions() {
        assert_eq!(
            parse_gate_rights("all").unwrap(),
            GateRights::All(DirectionSet::BOTH)
        );
        assert_eq!(
            parse_gate_rights("all:exit").unwrap(),
            GateRights::All(DirectionSet::EXIT)
        );
        let rights = parse_gate_rights("1;2:exit").unwrap();
        assert_eq!(rights.check(GateId(1), Direction::Entry), Ok(()));
        assert!(rights.check(GateId(2), Direction::Entry).is_err());
        assert_eq!(rights.check(GateId(2), Direction::Exit), Ok(()));
        assert!(rights.check(GateId(3), Direction::Exit).is_err());
    }

    #[test]
    fn bad_gate_rights_say_what_is_wrong() {
        assert!(
            parse_gate_rights("")
                .unwrap_err()
                .0
                .contains("must not be empty")
        );
        assert!(
            parse_gate_rights("north")
                .unwrap_err()
                .0
                .contains("not a gate id")
        );
        assert!(
            parse_gate_rights("1;1")
                .unwrap_err()
                .0
                .contains("listed twice")
        );
        assert!(
            parse_gate_rights("1:sideways")
                .unwrap_err()
                .0
                .contains("not entry, exit")
        );
    }

    #[test]
    fn schedules_read_day_ranges_lists_and_overnight_windows() {
        let s = parse_schedule("mon-fri 07:00-22:00; sat,sun 09:00-12:00").unwrap();
        assert!(s.allows_local(Weekday::Wed, 8 * 60));
        assert!(!s.allows_local(Weekday::Wed, 23 * 60));
        assert!(s.allows_local(Weekday::Sun, 10 * 60));
        assert!(!s.allows_local(Weekday::Sun, 13 * 60));
        let night = parse_schedule("fri 22:00-06:00").unwrap();
        assert!(night.allows_local(Weekday::Sat, 5 * 60));
        assert!(parse_schedule("always").unwrap().is_always());
        assert!(parse_schedule("").unwrap().is_always());
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        assert!(
            parse_schedule("mon-fri")
                .unwrap_err()
                .0
                .contains("DAYS HH:MM-HH:MM")
        );
        assert!(
            parse_schedule("funday 07:00-08:00")
                .unwrap_err()
                .0
                .contains("day \"funday\"")
        );
        assert!(
            parse_schedule("mon 7-8")
                .unwrap_err()
                .0
                .contains("not HH:MM")
        );
    }

    #[test]
    fn local_times_are_read_in_the_site_time_zone() {
        let tz = chrono_tz::Asia::Shanghai;
        let m = parse_local_minute("2026-09-01 08:00", tz).unwrap();
        assert_eq!(
            m.to_datetime(),
            Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap()
        );
        let midnight = parse_local_minute("2026-09-01", tz).unwrap();
        assert_eq!(
            midnight.to_datetime(),
            Utc.with_ymd_and_hms(2026, 8, 31, 16, 0, 0).unwrap()
        );
        assert!(parse_local_minute("2026-13-01", tz).is_err());
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_found_and_line_breaks_only_in_notes() {
        assert_eq!(unprintable_char("张三 Zhang San-2", false), None);
        assert_eq!(unprintable_char("a\tb", false), Some('\t'));
        assert_eq!(unprintable_char("a\tb", true), Some('\t'));
        assert_eq!(unprintable_char("line\nline", false), Some('\n'));
        assert_eq!(unprintable_char("line\r\nline", true), None);
        assert_eq!(unprintable_char("bell\u{7}", true), Some('\u{7}'));
        assert_eq!(unprintable_char("del\u{7f}", false), Some('\u{7f}'));
        assert_eq!(unprintable_char("c1\u{85}", false), Some('\u{85}'));
        assert_eq!(
            unprintable_char("\u{202E}54321A京", false),
            Some('\u{202E}')
        );
        assert_eq!(unprintable_char("x\u{2066}y", true), Some('\u{2066}'));
    }
}
