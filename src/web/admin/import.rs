//! `/admin/import`: bulk import of people, vehicles and permits from CSV or XLSX, and their
//! export. The page sends the file to `POST /api/v1/bulk/{kind}/import?commit=false` (a dry
//! run), shows the job's progress while a large file is checked, then every bad row with its
//! line, column and reason in the page's language; only after a dry run with no bad row is the
//! same file committed (`commit=true`), all or nothing. Export links download the same columns.
//!
//! What it never does: read the file itself or decide whether a row is good (the import job
//! does, with the API's rules).

use axum::Extension;
use maud::{Markup, html};

use super::frame;
use crate::central::bulk::Kind;
use crate::i18n::t;
use crate::web::Viewer;

/// Every column key with its name in `lang`, as JSON (the error table names columns so).
fn column_names(lang: crate::i18n::Lang) -> String {
    let mut names = serde_json::Map::new();
    for kind in [Kind::Persons, Kind::Vehicles, Kind::Permits] {
        for (key, zh, _) in kind.columns() {
            let name = match lang {
                crate::i18n::Lang::Zh => *zh,
                crate::i18n::Lang::En => *key,
            };
            names.insert((*key).into(), name.into());
        }
    }
    serde_json::Value::Object(names).to_string()
}

/// The import's limits as the page states them (the API refuses a file over any of them).
fn limits(lang: crate::i18n::Lang) -> String {
    use crate::central::bulk::{MAX_CELL_BYTES, MAX_COLUMNS, MAX_ROWS};
    let mib = crate::central::api::bulk::IMPORT_LIMIT / (1024 * 1024);
    match lang {
        crate::i18n::Lang::Zh => format!(
            "每个文件最大 {mib} MiB、{MAX_ROWS} 行数据、{MAX_COLUMNS} 列，每个单元格最多 {MAX_CELL_BYTES} 字节；更大的名单请拆分为几个文件。"
        ),
        crate::i18n::Lang::En => format!(
            "A file may have up to {mib} MiB, {MAX_ROWS} data rows and {MAX_COLUMNS} columns, and a cell up to {MAX_CELL_BYTES} bytes; split bigger lists into several files."
        ),
    }
}

/// `GET /admin/import`.
pub async fn page(Extension(viewer): Extension<Viewer>) -> Markup {
    let lang = viewer.lang;
    let kinds = [
        (Kind::Persons, t(lang, "人员", "People")),
        (Kind::Vehicles, t(lang, "车辆", "Vehicles")),
        (Kind::Permits, t(lang, "通行证", "Permits")),
    ];
    let body = html! {
        section.panel aria-labelledby="import-title" {
            h2 id="import-title" { (t(lang, "批量导入", "Bulk import")) }
            p.hint { (t(lang, "先“检查文件”：逐行检查并列出每一处错误（行号与原因），不写入任何数据；全部正确后才能“确认导入”，要么全部导入，要么一条也不导入。", "First “Check the file”: every row is checked and each bad one listed with its line and reason, and nothing is written; only a file with no bad row can then be imported — all of it or nothing.")) }
            form.grid id="import-form" novalidate {
                div.field {
                    label for="import-kind" { (t(lang, "导入内容", "What to import")) }
                    select id="import-kind" name="kind" {
                        @for (k, label) in kinds { option value=(k.as_str()) { (label) } }
                    }
                }
                div.field {
                    label for="import-file" { (t(lang, "文件（CSV 或 XLSX，首行为列名）", "File (CSV or XLSX, header in the first row)")) }
                    input id="import-file" name="file" type="file" accept=".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" required;
                }
                div.buttons {
                    button.primary type="submit" id="import-check" { (t(lang, "检查文件（试导入）", "Check the file (dry run)")) }
                    button.ok type="button" id="import-commit" disabled { (t(lang, "确认导入", "Import")) }
                }
                div.wide {
                    label for="import-progress" { (t(lang, "进度", "Progress")) }
                    progress id="import-progress" max="1" value="0" { "0" }
                    span id="import-phase" aria-live="polite" {}
                }
            }
            div id="import-report" aria-live="polite"
                data-good=(t(lang, "检查通过：{n} 行全部正确，可以确认导入。", "Checked: all {n} rows are good; you may import them."))
                data-bad=(t(lang, "发现 {n} 处错误，未导入任何数据。请修改文件后重新检查。", "{n} problems found; nothing was imported. Correct the file and check it again."))
                data-imported=(t(lang, "已导入 {n} 行。", "{n} rows imported."))
                data-caption=(t(lang, "错误明细", "Problems"))
                data-line=(t(lang, "行号", "Line"))
                data-column=(t(lang, "列", "Column"))
                data-reason=(t(lang, "原因", "Reason"))
                data-nofile=(t(lang, "请先选择文件", "Choose a file first"))
                data-phase_queued=(t(lang, "排队中（前一个文件检查完后开始）", "Queued (starts when the file before it is checked)"))
                data-phase_reading=(t(lang, "读取中", "Reading"))
                data-phase_checking=(t(lang, "检查中", "Checking"))
                data-phase_importing=(t(lang, "导入中", "Importing"))
                data-phase_done=(t(lang, "完成", "Done"))
                data-columns=(column_names(lang)) {}
        }
        section.panel aria-labelledby="columns-title" {
            h2 id="columns-title" { (t(lang, "文件列", "Columns")) }
            p.hint { (t(lang, "列名可用英文或中文，顺序不限，多余的列被忽略；* 为必填。", "Columns may be named in English or Chinese, in any order; other columns are ignored; * is required.")) }
            p.hint { (limits(lang)) }
            table.data {
                thead { tr { th scope="col" { (t(lang, "内容", "What")) } th scope="col" { (t(lang, "列", "Columns")) } th scope="col" { (t(lang, "导出", "Export")) } } }
                tbody {
                    @for (k, label) in kinds {
                        tr {
                            td { (label) }
                            td { @for (key, zh, required) in k.columns() { (zh) " / " code.ident { (key) } @if *required { "*" } "　" } }
                            td.exports {
                                a href={ "/api/v1/bulk/" (k.as_str()) "/export?format=csv" } download { "CSV" }
                                a href={ "/api/v1/bulk/" (k.as_str()) "/export?format=xlsx" } download { "XLSX" }
                            }
                        }
                    }
                }
            }
        }
    };
    frame(
        &viewer,
        "/admin/import",
        t(lang, "批量导入导出", "Import and export"),
        body,
    )
}
