//! The installer's CSV permit import: bad files are refused whole, with every bad row named.

use gatehouse::gate::import::{ImportError, import};
use gatehouse::gate::store::Store;

const HEADER: &str = "permit_id,holder_id,holder_name,department,category,plate,plate_colour,epc,tid,valid_from,valid_until,gates,schedule,single_use,max_inside";

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.db")).await.unwrap();
    (dir, store)
}

fn shanghai() -> chrono_tz::Tz {
    chrono_tz::Asia::Shanghai
}

#[tokio::test]
async fn a_good_file_imports_permits_vehicles_and_tags() {
    let (_dir, store) = store().await;
    let csv = format!(
        "\u{feff}{HEADER}\n\
         1,100,张三,计算机学院,staff,京A12345,blue,E2003098881900722140369E,,2026-01-01,2027-01-01 00:00,all,mon-fri 07:00-22:00,false,1\n\
         1,100,张三,计算机学院,staff,京AD12345,green,E2003098881900722140369F,E2801160200074CF085909A7,2026-01-01,2027-01-01 00:00,all,mon-fri 07:00-22:00,false,1\n\
         2,200,李四,后勤处,contractor,沪B6789A,yellow,E20000000000000000000001,,2026-11-01 08:00,2026-11-02 08:00,1:entry;2:exit,,true,\n"
    );
    let summary = import(csv.as_bytes(), shanghai(), &store).await.unwrap();
    assert_eq!(
        (summary.permits, summary.vehicles, summary.credentials),
        (2, 3, 3)
    );
    let snap = store.load().await.unwrap();
    assert_eq!(snap.permits.len(), 2);
    assert_eq!(snap.credentials.len(), 3);
    assert!(snap.credentials.iter().any(|c| c.tid.is_some()));
    let single = snap.permits.iter().find(|p| p.id.0 == 2).unwrap();
    assert!(single.single_use);
    assert_eq!(single.max_inside, None);
    assert_eq!(snap.data_version, 1);
}

#[tokio::test]
async fn a_file_with_the_wrong_columns_is_refused_at_line_one() {
    let (_dir, store) = store().await;
    let csv = "permit,plate,epc\n1,京A12345,E200\n";
    let Err(ImportError::Rows(errors)) = import(csv.as_bytes(), shanghai(), &store).await else {
        panic!("a file with the wrong columns must be refused");
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 1);
    assert!(
        errors[0].message.contains("wrong columns"),
        "{}",
        errors[0].message
    );
    assert_eq!(store.counts().await.unwrap(), (0, 0, 0));
}

#[tokio::test]
async fn every_bad_row_is_reported_with_its_line_and_nothing_is_imported() {
    let (_dir, store) = store().await;
    let csv = format!(
        "{HEADER}\n\
         1,100,张三,计算机学院,staff,京A12345,blue,E2003098881900722140369E,,2026-01-01,2027-01-01,all,,false,\n\
         2,101,王五,物理学院,staff,京AO1234,blue,E20000000000000000000002,,2026-01-01,2027-01-01,all,,false,\n\
         3,102,赵六,化学学院,staff,京B11111,blue,NOT-HEX,,2026-01-01,2027-01-01,all,,false,\n\
         4,103,钱七,数学学院,staff,京C22222,blue,E20000000000000000000004,,2027-01-01,2026-01-01,all,,false,\n\
         5,104,孙八,外语学院,staff,京D33333,blue,E2003098881900722140369E,,2026-01-01,2027-01-01,all,,false,\n"
    );
    let Err(ImportError::Rows(errors)) = import(csv.as_bytes(), shanghai(), &store).await else {
        panic!("a file with bad rows must be refused");
    };
    let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6], "{errors:?}");
    assert!(
        errors[0].message.contains("plate \"京AO1234\""),
        "invalid plate: {}",
        errors[0]
    );
    assert!(
        errors[1].message.contains("EPC"),
        "invalid EPC: {}",
        errors[1]
    );
    assert!(
        errors[2].message.contains("is not after valid_from"),
        "reversed dates: {}",
        errors[2]
    );
    assert!(
        errors[3]
            .message
            .contains("already used for another vehicle on line 2"),
        "duplicate tag: {}",
        errors[3]
    );
    assert_eq!(store.counts().await.unwrap(), (0, 0, 0), "nothing imported");
}

#[tokio::test]
async fn a_tag_already_issued_to_another_vehicle_in_the_store_is_refused() {
    let (_dir, store) = store().await;
    let first = format!(
        "{HEADER}\n1,100,张三,计算机学院,staff,京A12345,blue,E2003098881900722140369E,,2026-01-01,2027-01-01,all,,false,\n"
    );
    import(first.as_bytes(), shanghai(), &store).await.unwrap();
    let second = format!(
        "{HEADER}\n2,101,王五,物理学院,staff,京B12345,blue,E2003098881900722140369E,,2026-01-01,2027-01-01,all,,false,\n"
    );
    let Err(ImportError::Rows(errors)) = import(second.as_bytes(), shanghai(), &store).await else {
        panic!("a tag of another vehicle must be refused");
    };
    assert!(
        errors[0]
            .message
            .contains("already issued to another vehicle"),
        "{}",
        errors[0]
    );
    assert_eq!(store.counts().await.unwrap(), (1, 1, 1));
}
