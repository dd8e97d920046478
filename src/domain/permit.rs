//! Permits (出门证 / 通行证): who may drive which vehicles through which gates, in which directions
//! and at which times — and the pieces a permit is made of (directions, gate rights, schedules).
//!
//! What it is for: the rules one permit carries, each with a small pure check the gate's decision
//! combines in the product's order. What it never does: decide on its own (blacklists, anti-passback,
//! quotas and bookings are combined in [`crate::gate::decision`]) or read the clock.

use std::num::NonZeroU16;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::{GateId, PermitId, PersonId, UtcMinute};

/// Which way a vehicle crosses a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Into the campus.
    Entry,
    /// Out of the campus.
    Exit,
}

impl Direction {
    /// `entry` / `exit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Entry => "entry",
            Direction::Exit => "exit",
        }
    }
}

/// A set of directions (entry, exit, both, none) in one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirectionSet(u8);

impl DirectionSet {
    /// Neither direction.
    pub const NONE: DirectionSet = DirectionSet(0);
    /// Entry only.
    pub const ENTRY: DirectionSet = DirectionSet(1);
    /// Exit only.
    pub const EXIT: DirectionSet = DirectionSet(2);
    /// Both directions.
    pub const BOTH: DirectionSet = DirectionSet(3);

    /// The set holding just `d`.
    pub fn only(d: Direction) -> DirectionSet {
        match d {
            Direction::Entry => DirectionSet::ENTRY,
            Direction::Exit => DirectionSet::EXIT,
        }
    }

    /// Whether `d` is in the set.
    pub fn contains(self, d: Direction) -> bool {
        self.0 & DirectionSet::only(d).0 != 0
    }
}

/// Who a permit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersonCategory {
    /// 教职工: staff.
    Staff,
    /// 学生: student.
    Student,
    /// 家属: staff family member living on campus.
    Family,
    /// 施工 / 外包: contractor.
    Contractor,
    /// 公务: official visitor with a standing permit.
    Official,
    /// 访客: visitor (through a booking or a temporary pass).
    Visitor,
}

impl PersonCategory {
    /// A stable snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonCategory::Staff => "staff",
            PersonCategory::Student => "student",
            PersonCategory::Family => "family",
            PersonCategory::Contractor => "contractor",
            PersonCategory::Official => "official",
            PersonCategory::Visitor => "visitor",
        }
    }
}

/// Whether a permit currently works, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PermitStatus {
    /// In force (subject to its window, gates and schedule).
    Active,
    /// Temporarily stopped; may be reactivated.
    Suspended {
        /// Why, as the security office wrote it.
        reason: Box<str>,
    },
    /// Withdrawn for good.
    Revoked {
        /// Why, as the security office wrote it.
        reason: Box<str>,
    },
}

/// The permit holder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The person.
    pub person_id: PersonId,
    /// Name as shown to the guard.
    pub name: Box<str>,
    /// Department (院系 / 部门).
    pub department: Box<str>,
}

/// One gate a permit covers and the directions it allows there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GateRight {
    /// The gate.
    pub gate: GateId,
    /// Directions allowed at that gate.
    pub directions: DirectionSet,
}

/// Which gates a permit covers, with directions per gate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GateRights {
    /// Every gate, in these directions.
    All(DirectionSet),
    /// Only the listed gates (a gate not listed is refused).
    Only(Box<[GateRight]>),
}

/// Why [`GateRights::check`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateRefusal {
    /// The gate is not covered at all.
    WrongGate,
    /// The gate is covered, the direction is not.
    WrongDirection,
}

impl GateRights {
    /// Whether the rights allow `direction` at `gate`.
    pub fn check(&self, gate: GateId, direction: Direction) -> Result<(), GateRefusal> {
        let dirs = match self {
            GateRights::All(d) => *d,
            GateRights::Only(list) => match list.iter().find(|r| r.gate == gate) {
                Some(r) => r.directions,
                None => return Err(GateRefusal::WrongGate),
            },
        };
        if dirs.contains(direction) {
            Ok(())
        } else {
            Err(GateRefusal::WrongDirection)
        }
    }
}

/// A set of weekdays in one byte (bit 0 = Monday … bit 6 = Sunday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Weekdays(u8);

impl Weekdays {
    /// Every day.
    pub const ALL: Weekdays = Weekdays(0x7F);
    /// Monday to Friday.
    pub const WORKDAYS: Weekdays = Weekdays(0x1F);
    /// Saturday and Sunday.
    pub const WEEKEND: Weekdays = Weekdays(0x60);

    /// The set of the given days.
    pub fn of(days: &[Weekday]) -> Weekdays {
        Weekdays(
            days.iter()
                .fold(0, |acc, d| acc | (1 << d.num_days_from_monday())),
        )
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

/// Why a schedule window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A minute of the day past 23:59 (1440 or more).
    #[error("minute of day {0} is past 23:59")]
    MinuteOutOfRange(u16),
}

/// A weekly window in the site's local time: on `days`, from `start` (inclusive) to `end`
/// (exclusive), in minutes after local midnight. `end <= start` means the window runs past
/// midnight into the next day (22:00–06:00 on Monday covers Monday 22:00 to Tuesday 06:00);
/// `start == end` means the whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeWindow {
    days: Weekdays,
    start: u16,
    end: u16,
}

impl TimeWindow {
    /// A window; minutes must be below 1440.
    pub fn new(days: Weekdays, start: u16, end: u16) -> Result<TimeWindow, ScheduleError> {
        for m in [start, end] {
            if m >= 1440 {
                return Err(ScheduleError::MinuteOutOfRange(m));
            }
        }
        Ok(TimeWindow { days, start, end })
    }

    /// Whether local `day` at local minute `minute` falls in the window.
    pub fn contains(&self, day: Weekday, minute: u16) -> bool {
        if self.start < self.end {
            self.days.contains(day) && (self.start..self.end).contains(&minute)
        } else {
            (self.days.contains(day) && minute >= self.start)
                || (self.days.contains(day.pred()) && minute < self.end)
        }
    }
}

/// When a permit may be used: a union of weekly windows. No windows means "at any time".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Schedule {
    windows: Box<[TimeWindow]>,
}

impl Schedule {
    /// At any time.
    pub fn always() -> Schedule {
        Schedule::default()
    }

    /// The union of `windows` (empty = at any time).
    pub fn new(windows: Vec<TimeWindow>) -> Schedule {
        Schedule {
            windows: windows.into_boxed_slice(),
        }
    }

    /// Whether the schedule places no restriction.
    pub fn is_always(&self) -> bool {
        self.windows.is_empty()
    }

    /// The windows.
    pub fn windows(&self) -> &[TimeWindow] {
        &self.windows
    }

    /// Whether local `day` / `minute` falls in the schedule.
    pub fn allows_local(&self, day: Weekday, minute: u16) -> bool {
        self.is_always() || self.windows.iter().any(|w| w.contains(day, minute))
    }

    /// Whether the UTC instant `now`, seen in the site's zone `tz`, falls in the schedule.
    pub fn allows(&self, now: DateTime<Utc>, tz: Tz) -> bool {
        if self.is_always() {
            return true;
        }
        let local = now.with_timezone(&tz);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.allows_local(local.weekday(), minute)
    }
}

/// A permit (出门证): the right of its vehicles to pass given gates in given directions and times.
///
/// Vehicles point at permits ([`crate::domain::Vehicle::permit_ids`]); a vehicle may hold several
/// permits and a permit may cover several vehicles (a family's two cars), limited by `max_inside`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    /// Identity.
    pub id: PermitId,
    /// Who the holder is.
    pub category: PersonCategory,
    /// The holder.
    pub holder: Holder,
    /// Active, suspended or revoked.
    pub status: PermitStatus,
    /// First minute the permit works (inclusive).
    pub valid_from: UtcMinute,
    /// Minute the permit stops working (exclusive); [`UtcMinute::MAX`] for no end.
    pub valid_until: UtcMinute,
    /// Gates and directions per gate.
    pub gates: GateRights,
    /// Weekday/time windows in the site's time zone.
    pub schedule: Schedule,
    /// A one-off pass (临时出入证): consumed by the first passage it grants.
    pub single_use: bool,
    /// How many of its vehicles may be inside at once; `None` for no limit.
    pub max_inside: Option<NonZeroU16>,
    /// Incremented by the centre at each change; journalled with each decision.
    pub version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at_shanghai(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_workday_window_is_evaluated_in_the_site_time_zone_not_utc() {
        let s = Schedule::new(vec![
            TimeWindow::new(Weekdays::WORKDAYS, 7 * 60, 22 * 60).unwrap(),
        ]);
        let tz = chrono_tz::Asia::Shanghai;
        // Monday 2025-03-03 07:30 in Shanghai is Sunday 23:30 UTC.
        assert!(s.allows(at_shanghai(2025, 3, 3, 7, 30), tz));
        assert!(!s.allows(at_shanghai(2025, 3, 3, 6, 59), tz));
        assert!(
            !s.allows(at_shanghai(2025, 3, 3, 22, 0), tz),
            "end is exclusive"
        );
        assert!(!s.allows(at_shanghai(2025, 3, 1, 12, 0), tz), "Saturday");
        assert!(Schedule::always().allows(at_shanghai(2025, 3, 1, 12, 0), tz));
    }

    #[test]
    fn an_overnight_window_runs_into_the_next_morning() {
        let w = TimeWindow::new(Weekdays::of(&[Weekday::Fri]), 22 * 60, 6 * 60).unwrap();
        assert!(w.contains(Weekday::Fri, 23 * 60));
        assert!(w.contains(Weekday::Sat, 5 * 60 + 59));
        assert!(!w.contains(Weekday::Sat, 6 * 60));
        assert!(!w.contains(Weekday::Fri, 5 * 60));
        assert!(!w.contains(Weekday::Sat, 23 * 60));
        let whole = TimeWindow::new(Weekdays::of(&[Weekday::Sun]), 0, 0).unwrap();
        assert!(whole.contains(Weekday::Sun, 0) && whole.contains(Weekday::Sun, 1439));
        assert!(!whole.contains(Weekday::Mon, 0));
    }

    #[test]
    fn minutes_past_midnight_are_refused() {
        assert_eq!(
            TimeWindow::new(Weekdays::ALL, 0, 1440),
            Err(ScheduleError::MinuteOutOfRange(1440))
        );
    }

    #[test]
    fn gate_rights_tell_a_wrong_gate_from_a_wrong_direction() {
        let r = GateRights::Only(
            vec![GateRight {
                gate: GateId(1),
                directions: DirectionSet::EXIT,
            }]
            .into(),
        );
        assert_eq!(r.check(GateId(1), Direction::Exit), Ok(()));
        assert_eq!(
            r.check(GateId(1), Direction::Entry),
            Err(GateRefusal::WrongDirection)
        );
        assert_eq!(
            r.check(GateId(2), Direction::Exit),
            Err(GateRefusal::WrongGate)
        );
        assert_eq!(
            GateRights::All(DirectionSet::BOTH).check(GateId(9), Direction::Entry),
            Ok(())
        );
    }
}
