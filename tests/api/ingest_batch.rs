//! One mixed upload through the real ingest (`central::ingest::accept_from`), and everything it
//! keeps checked exactly, on SQLite and PostgreSQL: every column of every stored row, the
//! duplicates (within the upload and re-sent), a sequence number reused with another event
//! (quarantined, audited, alarmed), an unknown tag (a denial counted), a visitor's single-use
//! pass at the entry (the pass marked used, the booking arrived), passages that change presence
//! (the statistics' and the gates'), the watermark, and the live publication of exactly the
//! events stored. Issue 22 makes the ingest faster by changing how it writes (batched,
//! set-based, fewer round trips); this is the check that a faster path still writes the same
//! things: a column lost on the way, a statistic or a presence row not written fails here.

use chrono::{DateTime, TimeZone, Utc};
use gatehouse::central::ingest::accept_from;
use gatehouse::central::live::LiveMessage;
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::{
    BarrierAction, DecisionRecord, EventBody, JournalEvent, JournalIdentity, PassUse,
};
use sqlx::Row;

use crate::harness::{TestApp, count, each_database};

/// 2026-03-02 08:00 in Shanghai, plus `s` seconds.
fn at(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
}

fn decision(
    seq: u64,
    s: i64,
    direction: &str,
    plate: Option<&str>,
    ids: Option<(i64, i64)>,
    reason: ReasonCode,
    pass: Option<PassUse>,
) -> JournalEvent {
    let granted = reason == ReasonCode::Granted;
    JournalEvent {
        seq,
        at: at(s),
        lane: direction.into(),
        body: EventBody::Decision(DecisionRecord {
            direction: direction.into(),
            credential: if pass.is_some() { "pass" } else { "tag" }.into(),
            epc: pass.is_none().then(|| "E20030980000000A2140369E".into()),
            tid: None,
            antenna: Some(1),
            rssi_dbm: Some(-52),
            plate: plate.map(Into::into),
            granted,
            reason,
            flags: vec![],
            permit_id: ids.map(|(_, p)| p),
            vehicle_id: ids.map(|(v, _)| v),
            holder: None,
            category: None,
            data_version: 1,
            decide_ns: 900,
            camera: None,
            pass,
        }),
    }
}

fn passage(
    seq: u64,
    s: i64,
    direction: &str,
    plate: &str,
    ids: Option<(i64, i64)>,
) -> JournalEvent {
    JournalEvent {
        seq,
        at: at(s),
        lane: direction.into(),
        body: EventBody::Passage {
            direction: direction.into(),
            plate: Some(plate.into()),
            vehicle_id: ids.map(|(v, _)| v),
            permit_id: ids.map(|(_, p)| p),
        },
    }
}

fn barrier(seq: u64, s: i64, lane: &str) -> JournalEvent {
    JournalEvent {
        seq,
        at: at(s),
        lane: lane.into(),
        body: EventBody::Barrier {
            action: BarrierAction::Open,
            cause: "grant".into(),
        },
    }
}

async fn id_of(app: &TestApp, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
        .get("id")
}

/// A stored row as the test compares it: every column but the centre's receiving time.
type StoredRow = (
    i64,
    i64,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    serde_json::Value,
);

/// A `stats_presence` row: key, category, inside, last passage, expected departure, booking.
type PresenceRow = (String, String, i64, i64, Option<i64>, Option<i64>);

async fn stored(app: &TestApp) -> Vec<StoredRow> {
    sqlx::query(
        "SELECT journal_no, seq, lane, kind, at_ms, plate, vehicle_id, permit_id, direction, \
         granted, reason, body FROM passage_events WHERE gate_id = 1 ORDER BY journal_no, seq",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("journal_no"),
            r.get("seq"),
            r.get("lane"),
            r.get("kind"),
            r.get("at_ms"),
            r.get("plate"),
            r.get("vehicle_id"),
            r.get("permit_id"),
            r.get("direction"),
            r.get("granted"),
            r.get("reason"),
            serde_json::from_str(&r.get::<String, _>("body")).unwrap(),
        )
    })
    .collect()
}

#[tokio::test]
async fn a_mixed_upload_stores_exactly_its_rows_statistics_presence_and_pass_use() {
    for t in each_database().await {
        let kind = t.kind;
        let app = TestApp::spawn(t).await;
        let person = id_of(
            &app,
            "INSERT INTO persons (name, category, department, created_ms, updated_ms) \
             VALUES ('张三', 'staff', '计算机学院', 0, 0) RETURNING id",
        )
        .await;
        let vehicle = id_of(
            &app,
            &format!(
                "INSERT INTO vehicles (plate, plate_colour, owner_id, created_ms, updated_ms) \
                 VALUES ('京A12345', 'blue', {person}, 0, 0) RETURNING id"
            ),
        )
        .await;
        let permit = id_of(
            &app,
            &format!(
                "INSERT INTO permits (category, holder_id, valid_from_ms, valid_until_ms, \
                 created_ms, updated_ms) VALUES ('staff', {person}, 0, 4102444800000, 0, 0) \
                 RETURNING id"
            ),
        )
        .await;
        sqlx::query("INSERT INTO permit_vehicles (permit_id, vehicle_id) VALUES ($1, $2)")
            .bind(permit)
            .bind(vehicle)
            .execute(app.db.pool())
            .await
            .unwrap();
        let slot_until = at(4 * 3600).timestamp_millis();
        let booking = id_of(
            &app,
            &format!(
                "INSERT INTO visitor_bookings (host_id, department, plate, slot_from_ms, \
                 slot_until_ms, status, created_ms, updated_ms) VALUES ({person}, '计算机学院', \
                 '沪C34567', {}, {slot_until}, 'approved', 0, 0) RETURNING id",
                at(-3600).timestamp_millis()
            ),
        )
        .await;
        let ids = Some((vehicle, permit));
        let pass = PassUse {
            booking_id: booking,
            key_id: 1,
            single_use: true,
        };
        let journal = JournalIdentity {
            id: "00000000000000000000000000000abc".into(),
            from_legacy: false,
        };
        let mut rx = app.state.live.subscribe();

        // The first upload: a staff car in, an unknown tag, a visitor in on a pass; event 2
        // repeated within the upload.
        let first = vec![
            decision(
                1,
                0,
                "entry",
                Some("京A12345"),
                ids,
                ReasonCode::Granted,
                None,
            ),
            passage(2, 4, "entry", "京A12345", ids),
            decision(
                3,
                30,
                "entry",
                None,
                None,
                ReasonCode::DeniedUnknownTag,
                None,
            ),
            decision(
                4,
                60,
                "entry",
                Some("沪C34567"),
                None,
                ReasonCode::Granted,
                Some(pass.clone()),
            ),
            barrier(5, 60, "entry"),
            passage(6, 64, "entry", "沪C34567", None),
            passage(2, 4, "entry", "京A12345", ids),
        ];
        let out = accept_from(&app.state, 1, Some(&journal), &first)
            .await
            .unwrap();
        assert_eq!(
            (out.stored, out.duplicates, out.conflicts),
            (6, 1, 0),
            "{kind:?}"
        );
        assert_eq!(out.stored_seqs, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(out.highest_contiguous, 6);
        assert_eq!(out.journal_no, 1);
        // The second: event 2 sent again, event 3's number reused by another event (the
        // journal rewound), the staff car out.
        let second = vec![
            passage(2, 4, "entry", "京A12345", ids),
            passage(3, 31, "entry", "京Z99999", None),
            passage(7, 600, "exit", "京A12345", ids),
        ];
        let out = accept_from(&app.state, 1, Some(&journal), &second)
            .await
            .unwrap();
        assert_eq!(
            (out.stored, out.duplicates, out.conflicts),
            (1, 1, 1),
            "{kind:?}"
        );
        assert_eq!(out.stored_seqs, vec![7]);
        assert_eq!(out.quarantined_seqs, vec![3]);
        assert_eq!(out.highest_contiguous, 7);

        // Every stored row, every column.
        let ms = |s: i64| at(s).timestamp_millis();
        let body = |e: &JournalEvent| serde_json::to_value(&e.body).unwrap();
        let want: Vec<StoredRow> = vec![
            (
                1,
                1,
                "entry".into(),
                "decision".into(),
                ms(0),
                Some("京A12345".into()),
                Some(vehicle),
                Some(permit),
                Some("entry".into()),
                Some(1),
                Some("granted".into()),
                body(&first[0]),
            ),
            (
                1,
                2,
                "entry".into(),
                "passage".into(),
                ms(4),
                Some("京A12345".into()),
                Some(vehicle),
                Some(permit),
                Some("entry".into()),
                None,
                None,
                body(&first[1]),
            ),
            (
                1,
                3,
                "entry".into(),
                "decision".into(),
                ms(30),
                None,
                None,
                None,
                Some("entry".into()),
                Some(0),
                Some(ReasonCode::DeniedUnknownTag.as_str().into()),
                body(&first[2]),
            ),
            (
                1,
                4,
                "entry".into(),
                "decision".into(),
                ms(60),
                Some("沪C34567".into()),
                None,
                None,
                Some("entry".into()),
                Some(1),
                Some("granted".into()),
                body(&first[3]),
            ),
            (
                1,
                5,
                "entry".into(),
                "barrier".into(),
                ms(60),
                None,
                None,
                None,
                None,
                None,
                None,
                body(&first[4]),
            ),
            (
                1,
                6,
                "entry".into(),
                "passage".into(),
                ms(64),
                Some("沪C34567".into()),
                None,
                None,
                Some("entry".into()),
                None,
                None,
                body(&first[5]),
            ),
            (
                1,
                7,
                "exit".into(),
                "passage".into(),
                ms(600),
                Some("京A12345".into()),
                Some(vehicle),
                Some(permit),
                Some("exit".into()),
                None,
                None,
                body(&second[2]),
            ),
        ];
        assert_eq!(stored(&app).await, want, "{kind:?}");

        // The conflict: kept, audited, alarmed.
        let db = &app.db;
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) FROM event_conflicts WHERE gate_id = 1 AND seq = 3 \
                 AND kind = 'passage'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'event_conflict' AND entity = 'gate'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) FROM alarms WHERE kind = 'event_conflict' AND gate_id = 1"
            )
            .await,
            1
        );

        // The statistics: flows by category and direction, the denial, the visitor's day.
        let flows: Vec<(String, String, i64)> = sqlx::query(
            "SELECT category, direction, CAST(SUM(passages) AS BIGINT) AS n FROM stats_flows \
             WHERE gate_id = 1 GROUP BY category, direction ORDER BY category, direction",
        )
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("category"), r.get("direction"), r.get("n")))
        .collect();
        assert_eq!(
            flows,
            vec![
                ("staff".into(), "entry".into(), 1),
                ("staff".into(), "exit".into(), 1),
                ("visitor".into(), "entry".into(), 1),
            ],
            "{kind:?}"
        );
        assert_eq!(
            count(
                db,
                "SELECT CAST(COALESCE(SUM(denials), 0) AS BIGINT) FROM stats_denials \
                 WHERE reason = 'denied_unknown_tag' AND gate_id = 1 AND day = '2026-03-02'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                db,
                "SELECT CAST(COALESCE(SUM(denials), 0) AS BIGINT) FROM stats_denials"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) FROM stats_visitor_days WHERE day = '2026-03-02' \
                 AND vehicle_key = 'p:沪C34567'"
            )
            .await,
            1
        );
        // Presence: the staff car out, the visitor in until the slot's end.
        let presence: Vec<PresenceRow> = sqlx::query(
            "SELECT vehicle_key, category, inside, last_ms, expected_leave_ms, booking_id \
             FROM stats_presence ORDER BY vehicle_key",
        )
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("vehicle_key"),
                r.get("category"),
                r.get("inside"),
                r.get("last_ms"),
                r.get("expected_leave_ms"),
                r.get("booking_id"),
            )
        })
        .collect();
        assert_eq!(
            presence,
            vec![
                ("p:京A12345".into(), "staff".into(), 0, ms(600), None, None),
                (
                    "p:沪C34567".into(),
                    "visitor".into(),
                    1,
                    ms(64),
                    Some(slot_until),
                    Some(booking)
                ),
            ],
            "{kind:?}"
        );
        // The gates' campus-wide presence: the staff car out, queued for announcement.
        let row = sqlx::query(
            "SELECT inside, since_ms, gate_id FROM vehicle_presence WHERE vehicle_id = $1",
        )
        .bind(vehicle)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(
            (
                row.get::<i64, _>("inside"),
                row.get::<i64, _>("since_ms"),
                row.get::<i64, _>("gate_id")
            ),
            (0, ms(600), 1)
        );
        assert_eq!(count(db, "SELECT COUNT(*) FROM vehicle_presence").await, 1);
        assert!(count(db, "SELECT COUNT(*) FROM presence_pending").await >= 1);
        // The visitor's single-use pass: its entry used, the booking arrived (with its
        // change-log entry for the gates).
        let row = sqlx::query(
            "SELECT status, pass_used_entry_ms, pass_used_exit_ms FROM visitor_bookings \
             WHERE id = $1",
        )
        .bind(booking)
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(
            (
                row.get::<String, _>("status"),
                row.get::<Option<i64>, _>("pass_used_entry_ms"),
                row.get::<Option<i64>, _>("pass_used_exit_ms")
            ),
            ("arrived".into(), Some(ms(60)), None),
            "{kind:?}"
        );
        // The watermark the gate is told.
        assert_eq!(
            gatehouse::central::repo::events::watermark(db, 1)
                .await
                .unwrap(),
            7
        );
        // The live view got exactly the events stored, once each, in order.
        let mut seen = Vec::new();
        while let Ok(m) = rx.try_recv() {
            if let LiveMessage::Events { gate_id, events } = &*m {
                seen.push((*gate_id, events.iter().map(|e| e.seq).collect::<Vec<_>>()));
            }
        }
        assert_eq!(seen, vec![(1, vec![1, 2, 3, 4, 5, 6]), (1, vec![7])]);
    }
}
