//! A step of the gate's wall clock (±1 h: NTP correcting a cabinet that drifted, a guard setting
//! the clock) changes only what the wall clock is for. Which clock is used for what:
//! - **monotonic** (`tokio::time::Instant`) for every timer and deadline: the lane machine's close
//!   delay and arm timeouts (`gate::lane` takes `now` as time since the lane started), input
//!   polls, pulse lengths, reader and Modbus timeouts, tag hold times, reconnect backoff;
//! - **wall clock, in the site's time zone** for deciding by schedule, validity and timed
//!   anti-passback (`DecisionInput::now`, read at each decision);
//! - **wall clock, UTC** for the journal's timestamps, which order nothing: the journal's order is
//!   its per-gate sequence.
//!
//! So after a step, a decision by schedule follows the new wall time in the site's zone (the step
//! is a correction: the new time is the right one), and the journal keeps appending in sequence
//! order with the times as read.

use chrono::{DateTime, Duration as Span, TimeZone, Timelike, Utc};
use gatehouse::domain::{Direction, Epc, LaneId};
use gatehouse::gate::decision::{AntiPassback, CredentialRead, DecisionInput, decide};
use gatehouse::gate::journal::Journal;
use gatehouse::gate::presence::{PresenceTable, PresenceView};
use gatehouse::wire::journal::EventBody;
use gatehouse::wire::rows::PermitRecord;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_step_of_an_hour_either_way_leaves_decisions_by_schedule_right_in_site_time() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let shared = gate.handle().shared().clone();
    // Half past an hour today in site time, away from midnight; the permit's schedule is that
    // hour only.
    let local = Utc::now().with_timezone(&shared.tz);
    let mut t0 = local.with_minute(30).unwrap().with_second(0).unwrap();
    if t0.hour() >= 21 {
        t0 -= Span::hours(4);
    } else if t0.hour() < 2 {
        t0 += Span::hours(4);
    }
    let hour = t0.hour();
    let tag = epc(9);
    let permit = PermitRecord {
        schedule: format!("daily {hour:02}:00-{:02}:00", hour + 1),
        ..permit(9)
    };
    gate.seed(vehicle_with_tag(9, "京A99999", permit, &tag))
        .await;
    let index = shared.index();
    let presence = PresenceTable::new();
    let reason_at = |now: DateTime<Utc>| {
        let input = DecisionInput {
            read: CredentialRead::Tag {
                epc: Epc::from_bytes(&tag).unwrap(),
                tid: None,
            },
            gate: shared.gate,
            lane: LaneId(1),
            direction: Direction::Entry,
            now,
            tz: shared.tz,
            passback: AntiPassback::Off,
        };
        decide(&index, &presence as &dyn PresenceView, &input)
            .reason
            .as_str()
            .to_string()
    };
    let t0 = t0.with_timezone(&Utc);
    // The wall clock as the gate reads it at each decision: stepped forward, back, back again
    // and forward: each decision follows the wall time it was taken at.
    for (wall, expected) in [
        (t0, "granted"),
        (t0 + Span::hours(1), "denied_outside_schedule"),
        (t0, "granted"),
        (t0 - Span::hours(1), "denied_outside_schedule"),
        (t0, "granted"),
    ] {
        let site = wall.with_timezone(&shared.tz);
        assert_eq!(reason_at(wall), expected, "at {site} site time");
    }
    gate.shutdown().await;
}

#[tokio::test]
async fn a_wall_clock_step_of_an_hour_either_way_keeps_the_journal_in_sequence_order() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.db"), 1000)
        .await
        .unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 12, 7, 8, 30, 0).unwrap();
    let walls = [
        t0,
        t0 + Span::hours(1),
        t0 + Span::seconds(1),
        t0 - Span::hours(1),
        t0 + Span::seconds(2),
    ];
    for (i, wall) in walls.iter().enumerate() {
        let body = EventBody::LaneFault {
            fault: "test".into(),
            detail: format!("event {i}"),
        };
        journal.append(*wall, "entry", body).await.unwrap();
    }
    let events = journal.read_after(0, 100).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "appended order, whatever the times");
    for (i, (e, wall)) in events.iter().zip(walls).enumerate() {
        assert_eq!(e.at, wall, "event {i} keeps the time it was read at");
        assert!(
            matches!(&e.body, EventBody::LaneFault { detail, .. } if *detail == format!("event {i}"))
        );
    }
}
