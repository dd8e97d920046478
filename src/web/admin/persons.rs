//! `/admin/persons`: people (staff, students, family, contractors…) — search by name (and phone
//! for roles that see phones), filter by category and department, a page at a time; the security
//! office adds people here (`POST /api/v1/persons`).
//!
//! What it never does: show a full ID-card or phone number to a role that does not need it
//! (viewers see `1101**********002X`, `138****5678`), or let a masked number be searched.

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    CATEGORIES, OFFICE, allowed, field, frame, given, label_of, options, page_number, page_of,
    pager, status_line,
};
use crate::central::repo::persons::{self, PersonSearch, mask_id_card, mask_phone};
use crate::central::state::AppState;
use crate::i18n::t;
use crate::web::{PageError, Viewer};

/// `?q=&category=&department=&page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    q: Option<String>,
    category: Option<String>,
    department: Option<String>,
    page: Option<String>,
}

/// `GET /admin/persons`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let full = viewer.authed.sees_personal_ids();
    let number = page_number(p.page.as_deref());
    let found = persons::search(
        &state.db,
        &PersonSearch {
            text: given(&p.q),
            text_matches_phone: full,
            category: given(&p.category),
            department: given(&p.department),
        },
        page_of(number),
    )
    .await?;
    let body = html! {
        section.panel aria-labelledby="find-title" {
            h2 id="find-title" { (t(lang, "查找人员", "Find people")) }
            form.search method="get" role="search" {
                (field("q", "q", t(lang, if full { "姓名或电话" } else { "姓名" }, if full { "Name or phone" } else { "Name" }),
                    html! { input id="q" name="q" value=[p.q.as_deref()] autocomplete="off"; }))
                (field("category", "category", t(lang, "类别", "Category"),
                    html! { select id="category" name="category" { (options(lang, CATEGORIES, p.category.as_deref(), Some(t(lang, "全部", "All")))) } }))
                (field("department", "department", t(lang, "部门", "Department"),
                    html! { input id="department" name="department" value=[p.department.as_deref()]; }))
                button.primary type="submit" { (t(lang, "查询", "Search")) }
            }
            table.data id="persons" {
                thead { tr {
                    th.num scope="col" { (t(lang, "编号", "No.")) }
                    th scope="col" { (t(lang, "姓名", "Name")) }
                    th scope="col" { (t(lang, "类别", "Category")) }
                    th scope="col" { (t(lang, "部门", "Department")) }
                    th scope="col" { (t(lang, "电话", "Phone")) }
                    th scope="col" { (t(lang, "身份证号", "ID card")) }
                    th scope="col" { (t(lang, "工号/学号", "Staff/student no.")) }
                    th scope="col" { (t(lang, "邮箱", "E-mail")) }
                } }
                tbody {
                    @if found.items.is_empty() { tr { td colspan="8" { (t(lang, "没有符合条件的人员", "No one matches")) } } }
                    @for person in &found.items {
                        tr data-person=(person.id) {
                            td.num { (person.id) }
                            td { (person.name) }
                            td { (label_of(lang, CATEGORIES, &person.category)) }
                            td { (person.department) }
                            td.mono { (if full { person.phone.clone() } else { mask_phone(&person.phone) }) }
                            td.mono { (if full { person.id_card.clone() } else { mask_id_card(&person.id_card) }) }
                            td.mono { (person.staff_no) }
                            td { (if full { person.email.clone() } else { String::new() }) }
                        }
                    }
                }
            }
            (pager(lang, "/admin/persons", &[("q", p.q.clone()), ("category", p.category.clone()), ("department", p.department.clone())], number, found.total))
        }
        @if allowed(&viewer, OFFICE) {
            section.panel aria-labelledby="add-title" {
                h2 id="add-title" { (t(lang, "登记人员", "Add a person")) }
                form.grid id="person-form" data-url="/api/v1/persons" data-reload novalidate {
                    (field("p-name", "name", t(lang, "姓名", "Name"), html! { input id="p-name" name="name" required autocomplete="off"; }))
                    (field("p-category", "category", t(lang, "类别", "Category"), html! { select id="p-category" name="category" { (options(lang, CATEGORIES, Some("staff"), None)) } }))
                    (field("p-department", "department", t(lang, "部门", "Department"), html! { input id="p-department" name="department" autocomplete="off"; }))
                    (field("p-phone", "phone", t(lang, "电话", "Phone"), html! { input id="p-phone" name="phone" type="tel" autocomplete="off"; }))
                    (field("p-id-card", "id_card", t(lang, "身份证号", "ID card number"), html! { input id="p-id-card" name="id_card" autocomplete="off" maxlength="18"; }))
                    (field("p-staff-no", "staff_no", t(lang, "工号/学号", "Staff/student no."), html! { input id="p-staff-no" name="staff_no" autocomplete="off" maxlength="32"; }))
                    (field("p-email", "email", t(lang, "邮箱", "E-mail"), html! { input id="p-email" name="email" type="email" autocomplete="off"; }))
                    div.buttons { button.primary type="submit" { (t(lang, "保存", "Save")) } }
                    (status_line())
                }
            }
        }
    };
    Ok(frame(
        &viewer,
        "/admin/persons",
        t(lang, "人员", "People"),
        body,
    ))
}
