//! The words of each notice for each audience: a subject and a plain-text body, zh-CN first
//! with an English line, naming the plate, the people and the times (in the site's time zone).
//!
//! What it never does: put a pass link in a message for the group chat (a link is the pass),
//! or a phone number anywhere.

use chrono::{DateTime, TimeZone, Utc};

use super::{BOOKING_APPROVED, BOOKING_REJECTED, PASS_ISSUED, VISIT_REQUESTED, VISITOR_ARRIVED};

/// The sender's display name and the subject's tag.
pub const PRODUCT: &str = "校园车辆门禁";

/// Who a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The visitor (the booking's `visitor_email`).
    Visitor,
    /// The person visited.
    Host,
    /// Whoever booked the visit (the operator who created it), when not the host.
    Booker,
    /// The enterprise-chat group.
    Group,
}

/// What a message says, read from the booking when the notice is queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub booking_id: i64,
    pub plate: String,
    /// The visitor (the booking's driver).
    pub visitor_name: String,
    pub host_name: String,
    pub department: String,
    pub purpose: String,
    pub slot_from_ms: i64,
    pub slot_until_ms: i64,
    /// The pass page's full link, when a pass was issued and `public_url` is set.
    pub link: Option<String>,
    /// The gate (for an arrival).
    pub gate_name: String,
    /// When the visitor entered (for an arrival).
    pub at_ms: i64,
}

/// A message's subject and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub subject: String,
    pub body: String,
}

fn local(tz: chrono_tz::Tz, ms: i64) -> DateTime<chrono_tz::Tz> {
    tz.from_utc_datetime(
        &Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .naive_utc(),
    )
}

/// `2026年12月8日 09:00`.
fn zh_time(tz: chrono_tz::Tz, ms: i64) -> String {
    local(tz, ms).format("%Y年%-m月%-d日 %H:%M").to_string()
}

/// `2026-12-08 09:00`.
fn en_time(tz: chrono_tz::Tz, ms: i64) -> String {
    local(tz, ms).format("%Y-%m-%d %H:%M").to_string()
}

/// The slot: `2026年12月8日 09:00 至 11:00` (the end's date only when it differs).
fn zh_slot(tz: chrono_tz::Tz, f: &Facts) -> String {
    let (from, until) = (local(tz, f.slot_from_ms), local(tz, f.slot_until_ms));
    if from.date_naive() == until.date_naive() {
        format!(
            "{} 至 {}",
            zh_time(tz, f.slot_from_ms),
            until.format("%H:%M")
        )
    } else {
        format!(
            "{} 至 {}",
            zh_time(tz, f.slot_from_ms),
            zh_time(tz, f.slot_until_ms)
        )
    }
}

fn en_slot(tz: chrono_tz::Tz, f: &Facts) -> String {
    let (from, until) = (local(tz, f.slot_from_ms), local(tz, f.slot_until_ms));
    if from.date_naive() == until.date_naive() {
        format!("{}–{}", en_time(tz, f.slot_from_ms), until.format("%H:%M"))
    } else {
        format!(
            "{} – {}",
            en_time(tz, f.slot_from_ms),
            en_time(tz, f.slot_until_ms)
        )
    }
}

fn or_dash(s: &str) -> &str {
    if s.trim().is_empty() { "-" } else { s }
}

/// The words of notice `kind` for `audience`.
pub fn compose(kind: &str, audience: Audience, f: &Facts, tz: chrono_tz::Tz) -> Words {
    let plate = or_dash(&f.plate);
    let visitor = or_dash(&f.visitor_name);
    let host = or_dash(&f.host_name);
    let purpose = or_dash(&f.purpose);
    let (slot_zh, slot_en) = (zh_slot(tz, f), en_slot(tz, f));
    let details_zh =
        format!("访客：{visitor}\n车牌：{plate}\n被访人：{host}\n时间：{slot_zh}\n事由：{purpose}");
    let details_en = format!(
        "Visitor: {visitor} · Plate: {plate} · Host: {host} · Time: {slot_en} · Purpose: {purpose}"
    );
    // A pass link only for people, never for the group.
    let link = match (&f.link, audience) {
        (Some(link), Audience::Visitor | Audience::Booker | Audience::Host) => Some(link.as_str()),
        _ => None,
    };
    let (subject_zh, subject_en, lead_zh, lead_en) = match kind {
        VISIT_REQUESTED => (
            format!("新的来访申请：{plate}"),
            format!("New visit request: {plate}"),
            format!("{visitor} 申请来访，请在管理后台批准或拒绝。"),
            format!("{visitor} asks to visit; please approve or reject it in the admin pages."),
        ),
        BOOKING_APPROVED => (
            format!("来访预约已批准：{plate}"),
            format!("Visit approved: {plate}"),
            match audience {
                Audience::Visitor => "您的来访预约已批准。".to_string(),
                _ => format!("{visitor} 的来访预约已批准。"),
            },
            match audience {
                Audience::Visitor => "Your visit has been approved.".to_string(),
                _ => format!("The visit of {visitor} has been approved."),
            },
        ),
        BOOKING_REJECTED => (
            format!("来访预约未获批准：{plate}"),
            format!("Visit not approved: {plate}"),
            match audience {
                Audience::Visitor => "很抱歉，您的来访预约未获批准。".to_string(),
                _ => format!("{visitor} 的来访预约未获批准。"),
            },
            match audience {
                Audience::Visitor => "Sorry, your visit has not been approved.".to_string(),
                _ => format!("The visit of {visitor} has not been approved."),
            },
        ),
        PASS_ISSUED => (
            format!("访客通行证：{plate}"),
            format!("Visitor pass: {plate}"),
            match audience {
                Audience::Visitor => {
                    "您的来访预约已批准，访客通行证已签发：入校时在车道扫码器前出示通行证二维码。".to_string()
                }
                _ => format!("{visitor} 的来访预约已批准，访客通行证已签发。"),
            },
            match audience {
                Audience::Visitor => {
                    "Your visit is approved and your visitor pass is ready: show its QR code to the scanner at the lane."
                        .to_string()
                }
                _ => format!("The visitor pass of {visitor} has been issued."),
            },
        ),
        VISITOR_ARRIVED => (
            format!("访客已到达：{plate}"),
            format!("Visitor arrived: {plate}"),
            format!(
                "{visitor}（{plate}）已于 {} 从{}进入校园。",
                zh_time(tz, f.at_ms),
                or_dash(&f.gate_name)
            ),
            format!(
                "{visitor} ({plate}) entered at {} through {}.",
                en_time(tz, f.at_ms),
                or_dash(&f.gate_name)
            ),
        ),
        _ => (
            format!("通知：{plate}"),
            format!("Notice: {plate}"),
            String::new(),
            String::new(),
        ),
    };
    let greeting = match audience {
        Audience::Visitor => format!("{visitor} 您好：\n\n"),
        Audience::Host => format!("{host} 您好：\n\n"),
        Audience::Booker | Audience::Group => String::new(),
    };
    let mut body = format!("{greeting}{lead_zh}\n\n{details_zh}\n");
    if let Some(link) = link {
        body.push_str(&format!("通行证 / Pass: {link}\n"));
    }
    body.push_str(&format!("\n{lead_en}\n{details_en}\n"));
    if audience != Audience::Group {
        body.push_str(&format!(
            "\n—— {PRODUCT}（此邮件由系统自动发送，请勿回复）/ sent automatically, please do not reply\n"
        ));
    }
    Words {
        subject: format!("【{PRODUCT}】{subject_zh} / {subject_en}"),
        body,
    }
}
