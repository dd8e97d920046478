//! Persons (人员): permit holders, vehicle owners and booking hosts — their rows, search and
//! changes, and the checks and masks for their personal data (身份证号, phone).
//!
//! What it is for: the one place persons are read and written; every change runs in one
//! transaction with its audit entry and change-log entry.
//!
//! What it never does: decide who may see what (the API masks with [`mask_id_card`] and
//! [`mask_phone`] by role) or validate input (the API does, before calling in here; the database's
//! own constraints are the backstop).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::at;
use crate::central::db::{
    Actor, Arg, Db, Filter, Op, Page, Paged, RepoError, like_contains, now_ms,
};

/// The entity name in the audit and change logs.
pub const ENTITY: &str = "person";

/// Person category codes, as stored.
pub const CATEGORIES: [&str; 6] = [
    "staff",
    "student",
    "family",
    "contractor",
    "official",
    "visitor",
];

/// A person as the API shows it. `id_card` and `phone` are the stored values here; the API masks
/// them for roles that must not see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Person {
    pub id: i64,
    #[schema(example = "张伟")]
    pub name: String,
    /// staff, student, family, contractor, official or visitor.
    #[schema(example = "staff")]
    pub category: String,
    #[schema(example = "计算机学院")]
    pub department: String,
    /// Digits (a leading `+` allowed); masked as `138****5678` unless the caller is admin or
    /// security.
    #[schema(example = "138****5678")]
    pub phone: String,
    /// 身份证号; masked as `1101**********1234` unless the caller is admin or security. Empty when
    /// unknown.
    #[schema(example = "1101**********1234")]
    pub id_card: String,
    /// 工号/学号: the staff or student number the university knows the person by; a visitor
    /// names their host by it when self-booking. Empty when unknown.
    #[serde(default)]
    #[schema(example = "T2003117")]
    pub staff_no: String,
    /// E-mail for notices (a host is told of visit requests); empty when unknown.
    #[serde(default)]
    #[schema(example = "zhangwei@example.edu.cn")]
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A person to create, or the full new state of one (PUT replaces every field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    #[schema(example = "张伟")]
    pub name: String,
    /// staff, student, family, contractor, official or visitor.
    #[schema(example = "staff")]
    pub category: String,
    #[serde(default)]
    #[schema(example = "计算机学院")]
    pub department: String,
    /// Mobile or landline; spaces and hyphens are removed.
    #[serde(default)]
    #[schema(example = "13812345678")]
    pub phone: String,
    /// 18 characters with a valid GB 11643 check digit, or 15 digits (old cards); empty when
    /// unknown.
    #[serde(default)]
    #[schema(example = "11010519491231002X")]
    pub id_card: String,
    /// 工号/学号: letters, digits, `-` and `_`, at most 32; empty when unknown.
    #[serde(default)]
    #[schema(example = "T2003117")]
    pub staff_no: String,
    /// An e-mail address for notices; empty when unknown.
    #[serde(default)]
    #[schema(example = "zhangwei@example.edu.cn")]
    pub email: String,
}

/// What to search for; every filter is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonSearch {
    /// A substring of the name (case-insensitive), or of the phone when `text_matches_phone`.
    pub text: Option<String>,
    /// Whether `text` also matches phone numbers (only for callers who may see them: matching
    /// masked digits would reveal them one probe at a time).
    pub text_matches_phone: bool,
    /// Exact category code.
    pub category: Option<String>,
    /// Exact department.
    pub department: Option<String>,
}

/// What a person still holds, which keeps them from being deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holdings {
    pub permits: i64,
    pub vehicles: i64,
    pub bookings: i64,
}

impl Holdings {
    /// Whether anything refers to the person.
    pub fn any(&self) -> bool {
        self.permits + self.vehicles + self.bookings > 0
    }
}

const COLUMNS: &str =
    "id, name, category, department, phone, id_card, staff_no, email, created_ms, updated_ms";

fn from_row(row: &AnyRow) -> Person {
    Person {
        id: row.get("id"),
        name: row.get("name"),
        category: row.get("category"),
        department: row.get("department"),
        phone: row.get("phone"),
        id_card: row.get("id_card"),
        staff_no: row.get("staff_no"),
        email: row.get("email"),
        created_at: at(row.get("created_ms")),
        updated_at: at(row.get("updated_ms")),
    }
}

async fn fetch(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Person, RepoError> {
    let row = super::row_by_id(
        conn,
        &format!("SELECT {COLUMNS} FROM persons WHERE id = $1"),
        id,
    )
    .await?;
    Ok(from_row(&row))
}

/// Creates a person.
pub async fn create(db: &Db, actor: &Actor, new: NewPerson) -> Result<Person, RepoError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    let id: i64 = sqlx::query(
        "INSERT INTO persons (name, category, department, phone, id_card, created_ms, updated_ms, \
         staff_no, email) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8) RETURNING id",
    )
    .bind(&new.name)
    .bind(&new.category)
    .bind(&new.department)
    .bind(&new.phone)
    .bind(&new.id_card)
    .bind(now)
    .bind(&new.staff_no)
    .bind(&new.email)
    .fetch_one(&mut *tx)
    .await?
    .get("id");
    super::commit_upsert(tx, actor, Op::Upsert("create"), (ENTITY, id), None, fetch).await
}

/// The person `id`, or [`RepoError::NotFound`].
pub async fn get(db: &Db, id: i64) -> Result<Person, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch(&mut conn, id).await
}

/// Whether the person `id` exists.
pub async fn exists(db: &Db, id: i64) -> Result<bool, RepoError> {
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM persons WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await?
        .get("n");
    Ok(n > 0)
}

/// Replaces every field of the person `id`.
pub async fn update(db: &Db, actor: &Actor, id: i64, new: NewPerson) -> Result<Person, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    sqlx::query(
        "UPDATE persons SET name = $1, category = $2, department = $3, phone = $4, id_card = $5, \
         updated_ms = $6, staff_no = $8, email = $9 WHERE id = $7",
    )
    .bind(&new.name)
    .bind(&new.category)
    .bind(&new.department)
    .bind(&new.phone)
    .bind(&new.id_card)
    .bind(now_ms())
    .bind(id)
    .bind(&new.staff_no)
    .bind(&new.email)
    .execute(&mut *tx)
    .await?;
    let op = Op::Upsert("update");
    super::commit_upsert(tx, actor, op, (ENTITY, id), Some(&before), fetch).await
}

async fn holdings_in(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Holdings, RepoError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM permits WHERE holder_id = $1) AS permits, \
         (SELECT COUNT(*) FROM vehicles WHERE owner_id = $1) AS vehicles, \
         (SELECT COUNT(*) FROM visitor_bookings WHERE host_id = $1) AS bookings",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Holdings {
        permits: row.get("permits"),
        vehicles: row.get("vehicles"),
        bookings: row.get("bookings"),
    })
}

/// The permits, vehicles and visitor bookings that refer to the person `id`.
pub async fn holdings(db: &Db, id: i64) -> Result<Holdings, RepoError> {
    let mut conn = db.pool().acquire().await?;
    holdings_in(&mut conn, id).await
}

/// Deletes the person `id`; refused with [`RepoError::Reference`] while they hold permits,
/// vehicles or visitor bookings (see [`holdings`]).
pub async fn delete(db: &Db, actor: &Actor, id: i64) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    let held = holdings_in(&mut tx, id).await?;
    if held.any() {
        return Err(RepoError::Reference(format!(
            "person {id} still holds {} permits, {} vehicles and {} visitor bookings",
            held.permits, held.vehicles, held.bookings
        )));
    }
    super::delete_row(&mut tx, actor, "persons", ENTITY, id, &before).await?;
    tx.commit().await?;
    Ok(())
}

/// One page of the persons matching `q`, ordered by id.
pub async fn search(db: &Db, q: &PersonSearch, page: Page) -> Result<Paged<Person>, RepoError> {
    let mut f = Filter::new();
    if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
        let p = f.arg(Arg::Text(like_contains(text)));
        if q.text_matches_phone {
            f.and(format!(
                "(LOWER(name) LIKE LOWER({p}) ESCAPE '\\' OR phone LIKE {p} ESCAPE '\\')"
            ));
        } else {
            f.contains_ci("name", text);
        }
    }
    if let Some(c) = &q.category {
        f.eq("category", c.as_str());
    }
    if let Some(d) = &q.department {
        f.eq("department", d.as_str());
    }
    let select = format!("SELECT {COLUMNS} FROM persons");
    f.paged(db, ("persons", &select), "id", page, |r| Ok(from_row(r)))
        .await
}

/// The one person a visitor means by `host` (a staff/student number, or a phone number typed
/// any way: spaces, hyphens, `+86`), for self-booking. `None` when nobody or more than one
/// person matches: an ambiguous number books nobody rather than the wrong host.
pub async fn find_host(db: &Db, host: &str) -> Result<Option<i64>, RepoError> {
    let typed = host.trim();
    if typed.is_empty() || typed.chars().count() > 64 {
        return Ok(None);
    }
    let digits: String = typed
        .trim_start_matches("+86")
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\u{3000}' | '(' | ')'))
        .collect();
    let with_cc = format!("+86{digits}");
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM persons WHERE (staff_no <> '' AND UPPER(staff_no) = UPPER($1)) \
         OR ($2 <> '' AND (phone = $2 OR phone = $3)) ORDER BY id LIMIT 2",
    )
    .bind(typed)
    .bind(
        if digits.chars().all(|c| c.is_ascii_digit()) && digits.len() >= 5 {
            digits.as_str()
        } else {
            ""
        },
    )
    .bind(&with_cc)
    .fetch_all(db.pool())
    .await?;
    Ok(match ids.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// Why a 身份证号 was refused. Each variant has a stable [`IdCardError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdCardError {
    /// Neither 18 nor 15 characters.
    #[error("an ID card number has 18 characters (or 15 digits on old cards), found {0}")]
    Length(usize),
    /// A character other than a digit (or X as the 18th).
    #[error("an ID card number is digits only, with X allowed as the last of 18")]
    Characters,
    /// The birth date (characters 7–14, or 7–12 on old cards) is not a calendar date.
    #[error("the birth date in the ID card number is not a valid date")]
    BirthDate,
    /// The 18th character does not match the GB 11643 check digit.
    #[error("the check digit of the ID card number is wrong (expected {expected})")]
    CheckDigit {
        /// The check character the first 17 digits call for.
        expected: char,
    },
}

impl IdCardError {
    /// A stable snake_case code for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            IdCardError::Length(_) => "id_card_length",
            IdCardError::Characters => "id_card_characters",
            IdCardError::BirthDate => "id_card_birth_date",
            IdCardError::CheckDigit { .. } => "id_card_check_digit",
        }
    }
}

/// Checks a 身份证号 and returns it normalised (trimmed, `x` → `X`): 18 characters whose last is
/// the GB 11643-1999 check character (ISO 7064 MOD 11-2), or 15 digits (first-generation cards).
/// The birth date inside must be a calendar date.
pub fn check_id_card(input: &str) -> Result<String, IdCardError> {
    let s: String = input.trim().to_ascii_uppercase();
    let chars: Vec<char> = s.chars().collect();
    let (date, year_prefix) = match chars.len() {
        18 => {
            if !chars[..17].iter().all(char::is_ascii_digit)
                || !(chars[17].is_ascii_digit() || chars[17] == 'X')
            {
                return Err(IdCardError::Characters);
            }
            (&s[6..14], "")
        }
        15 => {
            if !chars.iter().all(char::is_ascii_digit) {
                return Err(IdCardError::Characters);
            }
            (&s[6..12], "19")
        }
        n => return Err(IdCardError::Length(n)),
    };
    chrono::NaiveDate::parse_from_str(&format!("{year_prefix}{date}"), "%Y%m%d")
        .map_err(|_| IdCardError::BirthDate)?;
    if chars.len() == 18 {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
        let sum: u32 = chars[..17]
            .iter()
            .zip(WEIGHTS)
            .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
            .sum();
        let expected = CHECK[(sum % 11) as usize];
        if chars[17] != expected {
            return Err(IdCardError::CheckDigit { expected });
        }
    }
    Ok(s)
}

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a phone number is 5 to 20 digits, optionally starting with +")]
pub struct PhoneError;

/// Checks a phone number and returns it normalised: spaces and hyphens removed; then an optional
/// leading `+` and 5 to 20 digits. Empty stays empty (unknown).
pub fn check_phone(input: &str) -> Result<String, PhoneError> {
    let s: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\u{3000}'))
        .collect();
    if s.is_empty() {
        return Ok(s);
    }
    let digits = s.strip_prefix('+').unwrap_or(&s);
    if (5..=20).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(s)
    } else {
        Err(PhoneError)
    }
}

/// Masks a 身份证号 for roles that must not see it: the first 4 and last 4 characters stay
/// (`1101**********1234`); anything 8 characters or shorter is masked whole.
pub fn mask_id_card(id_card: &str) -> String {
    mask(id_card, 4, 4)
}

/// Masks a phone number for roles that must not see it: a landline keeps its area code and last
/// 4 digits (`010-****5678`); otherwise the first 3 and last 4 characters stay (`138****5678`),
/// and anything 7 characters or shorter keeps only its last 2.
pub fn mask_phone(phone: &str) -> String {
    let n = phone.chars().count();
    if n <= 7 {
        return mask(phone, 0, 2);
    }
    match phone.split_once('-') {
        Some((area, _)) => {
            let tail: String = phone.chars().skip(n - 4).collect();
            format!("{area}-****{tail}")
        }
        None => mask(phone, 3, 4),
    }
}

fn mask(s: &str, keep_start: usize, keep_end: usize) -> String {
    let n = s.chars().count();
    if n == 0 {
        return String::new();
    }
    if n <= keep_start + keep_end {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_start || i >= n - keep_end {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_card_with_the_gb_11643_check_digit_is_accepted_and_upper_cased() {
        assert_eq!(
            check_id_card(" 11010519491231002x ").unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            check_id_card("440524188001010014").unwrap(),
            "440524188001010014"
        );
    }

    #[test]
    fn an_id_card_with_a_wrong_check_digit_names_the_expected_one() {
        assert_eq!(
            check_id_card("110105194912310021"),
            Err(IdCardError::CheckDigit { expected: 'X' })
        );
    }

    #[test]
    fn an_old_fifteen_digit_card_is_accepted_when_its_birth_date_is_real() {
        assert_eq!(check_id_card("110105491231002").unwrap(), "110105491231002");
        assert_eq!(
            check_id_card("110105491331002"),
            Err(IdCardError::BirthDate)
        );
    }

    #[test]
    fn id_cards_of_other_lengths_letters_or_impossible_dates_are_refused() {
        assert_eq!(check_id_card("1101"), Err(IdCardError::Length(4)));
        assert_eq!(
            check_id_card("11010519491231002Y"),
            Err(IdCardError::Characters)
        );
        assert_eq!(
            check_id_card("11010519490231002X"),
            Err(IdCardError::BirthDate)
        );
    }

    #[test]
    fn phones_lose_their_separators_and_must_be_digits() {
        assert_eq!(check_phone("138 1234-5678").unwrap(), "13812345678");
        assert_eq!(check_phone("+86 10 6275 1234").unwrap(), "+861062751234");
        assert_eq!(check_phone("").unwrap(), "");
        assert_eq!(check_phone("call me"), Err(PhoneError));
        assert_eq!(check_phone("1234"), Err(PhoneError));
    }

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(mask_id_card("110105194912311234"), "1101**********1234");
        assert_eq!(mask_id_card("110105491231002"), "1101*******1002");
        assert_eq!(mask_id_card(""), "");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("010-62345678"), "010-****5678");
        assert_eq!(mask_phone("0755-2345678"), "0755-****5678");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_phone(""), "");
    }
}
