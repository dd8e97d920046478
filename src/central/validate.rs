//! The field checks the admin API and bulk import share: a person's fields, and the messages for
//! a refused plate or ID-card number and a plate colour's Chinese name. Each check reports every
//! problem at once, as [`FieldError`]s (field, stable code, message in both languages); the API
//! answers them as a 422, an import as bad rows.
//!
//! What it never does: read the database, decide who may change what, or build an HTTP answer.

use crate::central::repo::persons::{
    CATEGORIES, IdCardError, NewPerson, check_id_card, check_phone,
};
use crate::i18n::Msg;

/// Longest name or department accepted, in characters.
pub const MAX_TEXT: usize = 100;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as the client sent it (`plate`, `valid_until`, `vehicle_ids[2]`).
    pub field: String,
    /// A stable machine-readable code (`invalid_plate`, `reversed_window`, ...).
    pub code: &'static str,
    pub message: Msg,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: Msg) -> FieldError {
        FieldError {
            field: field.into(),
            code,
            message,
        }
    }
}

/// The message for a person category that is not one of [`CATEGORIES`] (code
/// `invalid_category`).
pub fn category_message(found: &str) -> Msg {
    Msg::new(
        format!(
            "人员类别“{found}”无效，应为 staff、student、family、contractor、official 或 visitor 之一"
        ),
        format!(
            "category {found:?} is not one of staff, student, family, contractor, official, visitor"
        ),
    )
}

/// The zh-CN / English message for a refused ID-card number (the code is
/// [`IdCardError::code`]).
pub fn id_card_message(e: &IdCardError) -> Msg {
    match e {
        IdCardError::Length(n) => Msg::new(
            format!("身份证号应为 18 位（旧证 15 位数字），实际为 {n} 位"),
            e.to_string(),
        ),
        IdCardError::Characters => Msg::new(
            "身份证号只能由数字组成，18 位号码的最后一位可以是 X",
            e.to_string(),
        ),
        IdCardError::BirthDate => Msg::new("身份证号中的出生日期不是有效日期", e.to_string()),
        IdCardError::CheckDigit { expected } => Msg::new(
            format!("身份证号校验位错误（按 GB 11643 应为 {expected}）"),
            e.to_string(),
        ),
    }
}

/// Checks and normalises a person's fields, reporting every problem at once.
pub fn person(new: NewPerson) -> Result<NewPerson, Vec<FieldError>> {
    let mut f = Vec::new();
    let name = new.name.trim().to_string();
    if name.is_empty() {
        f.push(FieldError::new(
            "name",
            "required",
            Msg::new("姓名不能为空", "the name is required"),
        ));
    } else if name.chars().count() > MAX_TEXT {
        f.push(FieldError::new(
            "name",
            "too_long",
            Msg::new(
                format!("姓名最多 {MAX_TEXT} 个字符"),
                format!("the name has more than {MAX_TEXT} characters"),
            ),
        ));
    }
    if !CATEGORIES.contains(&new.category.as_str()) {
        f.push(FieldError::new(
            "category",
            "invalid_category",
            category_message(&new.category),
        ));
    }
    let department = new.department.trim().to_string();
    if department.chars().count() > MAX_TEXT {
        f.push(FieldError::new(
            "department",
            "too_long",
            Msg::new(
                format!("部门名称最多 {MAX_TEXT} 个字符"),
                format!("the department has more than {MAX_TEXT} characters"),
            ),
        ));
    }
    let phone = match check_phone(&new.phone) {
        Ok(p) => p,
        Err(e) => {
            f.push(FieldError::new(
                "phone",
                "invalid_phone",
                Msg::new("电话号码应为 5 到 20 位数字，可以 + 开头", e.to_string()),
            ));
            String::new()
        }
    };
    let id_card = if new.id_card.trim().is_empty() {
        String::new()
    } else {
        match check_id_card(&new.id_card) {
            Ok(c) => c,
            Err(e) => {
                f.push(FieldError::new("id_card", e.code(), id_card_message(&e)));
                String::new()
            }
        }
    };
    let staff_no = new.staff_no.trim().to_string();
    if let Err(message) = check_staff_no(&staff_no) {
        f.push(FieldError::new("staff_no", "invalid_staff_no", message));
    }
    let email = match check_email(&new.email) {
        Ok(e) => e,
        Err(message) => {
            f.push(FieldError::new("email", "invalid_email", message));
            String::new()
        }
    };
    if !f.is_empty() {
        return Err(f);
    }
    Ok(NewPerson {
        name,
        category: new.category,
        department,
        phone,
        id_card,
        staff_no,
        email,
    })
}

/// Longest staff/student number accepted.
pub const MAX_STAFF_NO: usize = 32;

/// A 工号/学号: empty, or letters, digits, `-` and `_`, at most [`MAX_STAFF_NO`].
pub fn check_staff_no(staff_no: &str) -> Result<(), Msg> {
    let ok = staff_no.chars().count() <= MAX_STAFF_NO
        && staff_no
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Msg::new(
            format!("工号/学号只能包含字母、数字、- 和 _，最多 {MAX_STAFF_NO} 位"),
            format!(
                "a staff/student number has only letters, digits, - and _, at most {MAX_STAFF_NO}"
            ),
        ))
    }
}

/// Longest e-mail address accepted (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// An e-mail address, trimmed: empty (unknown), or `local@domain` with a dot in the domain,
/// no spaces or control characters, at most [`MAX_EMAIL`] characters.
pub fn check_email(email: &str) -> Result<String, Msg> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(String::new());
    }
    let ok = email.chars().count() <= MAX_EMAIL
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(email.to_string())
    } else {
        Err(Msg::new(
            "邮箱地址格式不正确（如 zhangwei@example.edu.cn）",
            "the e-mail address is not valid (e.g. zhangwei@example.edu.cn)",
        ))
    }
}

/// The plate colour's Chinese name, for messages.
pub fn colour_zh(colour: &str) -> &'static str {
    match colour {
        "blue" => "蓝牌",
        "yellow" => "黄牌",
        "green" => "绿牌",
        "yellow_green" => "黄绿牌",
        "white" => "白牌",
        "black" => "黑牌",
        _ => "未知颜色",
    }
}
