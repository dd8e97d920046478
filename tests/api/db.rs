//! The central database opens and migrates on every database kind.

use gatehouse::central::db::{Actor, audit};

use crate::harness::count;

#[tokio::test]
async fn both_database_kinds_migrate_and_take_an_audit_entry() {
    for t in crate::harness::each_database().await {
        let mut conn = t.db.pool().acquire().await.unwrap();
        audit(
            &mut conn,
            &Actor::system(),
            "create",
            "person",
            7,
            None,
            None,
        )
        .await
        .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE entity_id = $1")
            .bind("7")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(n, 1, "{:?}", t.kind);
    }
}

/// The shape of most changes: read (is the plate taken? which version is current?), then write.
/// Another connection commits a write between the two; the change must still go through, on
/// SQLite by waiting its turn rather than being refused with "database is locked".
#[tokio::test]
async fn a_change_that_reads_first_goes_through_while_another_connection_writes() {
    for t in crate::harness::each_database().await {
        let before = count(&t.db, "SELECT COUNT(*) FROM audit_log").await;
        let mut tx = t.db.begin().await.unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(seen, before);
        let db = t.db.clone();
        let other = tokio::spawn(async move {
            let mut tx = db.begin().await?;
            audit(&mut tx, &Actor::system(), "create", "person", 2, None, None).await?;
            tx.commit().await?;
            Ok::<_, gatehouse::central::db::RepoError>(())
        });
        // Time for the other writer to commit first if it can: a transaction that takes the
        // write lock only at its first write would then be refused below.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        audit(&mut tx, &Actor::system(), "create", "person", 1, None, None)
            .await
            .unwrap_or_else(|e| panic!("{:?}: the first change was refused: {e}", t.kind));
        tx.commit().await.unwrap();
        other
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{:?}: the second change was refused: {e}", t.kind));
        let after = count(&t.db, "SELECT COUNT(*) FROM audit_log").await;
        assert_eq!(after, before + 2, "{:?}", t.kind);
    }
}

/// Office staff registering vehicles side by side, each change checking the plate first: none is
/// refused, and every vehicle is stored once.
#[tokio::test]
async fn vehicles_registered_side_by_side_are_all_stored() {
    use gatehouse::central::repo::persons::{self, NewPerson};
    use gatehouse::central::repo::vehicles::{self, NewVehicle};
    for t in crate::harness::each_database().await {
        let owner = persons::create(
            &t.db,
            &Actor::system(),
            NewPerson {
                name: "张伟".into(),
                category: "staff".into(),
                department: String::new(),
                phone: String::new(),
                id_card: String::new(),
                staff_no: String::new(),
                email: String::new(),
            },
        )
        .await
        .unwrap();
        let clerks: Vec<_> = (0..6)
            .map(|clerk| {
                let db = t.db.clone();
                tokio::spawn(async move {
                    for n in 0..15 {
                        let new = NewVehicle {
                            plate: format!("京A{clerk}{n:04}"),
                            plate_colour: "blue".into(),
                            vehicle_type: "car".into(),
                            owner_id: owner.id,
                            note: String::new(),
                        };
                        vehicles::create(&db, &Actor::system(), new).await?;
                    }
                    Ok::<_, gatehouse::central::db::RepoError>(())
                })
            })
            .collect();
        for clerk in clerks {
            clerk
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{:?}: a registration was refused: {e}", t.kind));
        }
        let n = count(&t.db, "SELECT COUNT(*) FROM vehicles").await;
        assert_eq!(n, 90, "{:?}", t.kind);
    }
}

/// A request cancelled just after its BEGIN (a gate hung up) returns its connection to the pool
/// with the transaction still open. The next changes must neither wait on its lock nor become
/// part of it: each is committed and seen by everybody.
#[tokio::test]
async fn a_transaction_left_open_by_a_cancelled_request_does_not_swallow_the_next_changes() {
    use sqlx::Connection;
    for t in crate::harness::each_database().await {
        {
            let mut conn = t.db.pool().acquire().await.unwrap();
            let begin = match t.kind {
                gatehouse::central::db::DbKind::Sqlite => "BEGIN IMMEDIATE",
                gatehouse::central::db::DbKind::Postgres => "BEGIN",
            };
            let mut leaked = conn.begin_with(begin).await.unwrap();
            audit(
                &mut leaked,
                &Actor::system(),
                "leak",
                "person",
                0,
                None,
                None,
            )
            .await
            .unwrap();
            // What a cancelled request leaves: no transaction object to roll it back.
            std::mem::forget(leaked);
        }
        for n in 1..=10 {
            let change = async {
                let mut tx = t.db.begin().await?;
                audit(&mut tx, &Actor::system(), "create", "person", n, None, None).await?;
                tx.commit().await?;
                Ok::<_, gatehouse::central::db::RepoError>(())
            };
            tokio::time::timeout(std::time::Duration::from_secs(5), change)
                .await
                .unwrap_or_else(|_| panic!("{:?}: change {n} waited on the lost lock", t.kind))
                .unwrap_or_else(|e| panic!("{:?}: change {n} was refused: {e}", t.kind));
        }
        // A connection of its own, outside the pool, sees what was committed.
        let mut other = sqlx::AnyConnection::connect(&t.url).await.unwrap();
        let actions: Vec<String> =
            sqlx::query_scalar("SELECT action FROM audit_log ORDER BY entity_id")
                .fetch_all(&mut other)
                .await
                .unwrap();
        assert_eq!(actions, vec!["create"; 10], "{:?}", t.kind);
    }
}
