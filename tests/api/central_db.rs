//! The central database opens and migrates on every database kind.

use gatehouse::central::db::{Actor, audit};

#[tokio::test]
async fn both_database_kinds_migrate_and_take_an_audit_entry() {
    for t in crate::central_support::each_database().await {
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
