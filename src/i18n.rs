//! The product's two languages, zh-CN (the default) and English, for the API's messages and
//! the pages alike: [`Lang`] and how a request chooses it (the API by `Accept-Language`, the
//! pages by the `gh_lang` cookie that the language switch `/lang` sets), [`Msg`] (a message in
//! both), and the product's words in both: decision reasons, guard reasons, vehicle
//! categories, lane states and modes.
//!
//! What it never does: translate free text typed by people (names, notes), guess the pages'
//! language from the browser (booth PCs are often set to English while their guards read
//! Chinese), or depend on the centre, the gate or the pages that use it.

use std::borrow::Cow;

use axum::http::{HeaderMap, header};

use crate::domain::PlateError;

/// A message in both of the product's languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub zh: Cow<'static, str>,
    pub en: Cow<'static, str>,
}

impl Msg {
    pub fn new(zh: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> Msg {
        Msg {
            zh: zh.into(),
            en: en.into(),
        }
    }

    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }

    /// A refused plate, in both languages: the same text from every route that takes one.
    pub fn plate(e: &PlateError) -> Msg {
        Msg::new(e.message_zh(), e.to_string())
    }
}

/// The response language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// Picks the language from an `Accept-Language` header: the first of zh / en by the client's
    /// order of preference (q-values respected); zh-CN when neither is named.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let Some(value) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::Zh;
        };
        let mut best: Option<(f32, Lang)> = None;
        for part in value.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = if tag.starts_with("zh") {
                Lang::Zh
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Zh, |(_, l)| l)
    }
}

/// The cookie holding the chosen language (`zh` or `en`).
pub const LANG_COOKIE: &str = "gh_lang";

/// The language a request's cookie asks for; zh-CN without one.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    match crate::http_cookie::cookie(headers, LANG_COOKIE).as_deref() {
        Some("en") => Lang::En,
        _ => Lang::Zh,
    }
}

/// The text in `lang`.
pub fn t(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// The `lang` attribute of a page.
pub fn html_lang(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh-CN",
        Lang::En => "en",
    }
}

/// A guard's reasons for a manual open or keep-closed: (code, zh, en). The codes are the ones
/// `wire::command::GateCommand::Guard` and the gate's journal carry.
pub const GUARD_REASONS: &[(&str, &str, &str)] = &[
    ("visitor_registered", "访客已登记", "Visitor registered"),
    (
        "permit_holder_without_tag",
        "持证人未带标签",
        "Permit holder without tag",
    ),
    (
        "emergency_vehicle",
        "警车/消防/救护车",
        "Police / fire / ambulance",
    ),
    ("official_business", "公务车辆", "Official business"),
    ("device_fault", "设备故障", "Device fault"),
    ("other", "其他（须填写说明）", "Other (explain)"),
];

/// Whether `code` is a guard reason.
pub fn is_guard_reason(code: &str) -> bool {
    GUARD_REASONS.iter().any(|(c, _, _)| *c == code)
}

/// A guard reason's label (the code itself if unknown).
pub fn guard_reason_label(lang: Lang, code: &str) -> String {
    GUARD_REASONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or_else(
            || code.to_string(),
            |(_, zh, en)| t(lang, zh, en).to_string(),
        )
}

/// A decision reason code in words, as the lane card shows it.
pub fn reason_label(lang: Lang, code: &str) -> String {
    let (zh, en) = match code {
        "granted" => ("通行证有效，放行", "Valid permit — open"),
        "granted_visitor" => ("预约访客，放行", "Booked visitor — open"),
        "denied_blacklisted" => (
            "黑名单车辆！禁止通行",
            "BLACKLISTED vehicle — do not let in",
        ),
        "denied_expired" => ("通行证已过期", "Permit expired"),
        "denied_not_yet_valid" => ("通行证尚未生效", "Permit not yet valid"),
        "denied_suspended" => ("通行证已暂停", "Permit suspended"),
        "denied_revoked" => ("通行证已吊销", "Permit revoked"),
        "denied_wrong_gate" => ("通行证不含本大门", "Permit not valid at this gate"),
        "denied_wrong_direction" => ("通行证不含此方向", "Permit not valid in this direction"),
        "denied_outside_schedule" => ("不在允许通行时段", "Outside the permitted hours"),
        "denied_single_use_consumed" => ("一次性通行证已使用", "Single-use pass already used"),
        "denied_passback" => (
            "防潜回：车辆已在校内",
            "Anti-passback: vehicle already inside",
        ),
        "denied_permit_quota" => ("同证车辆在校数已满", "Permit's vehicles already inside"),
        "denied_locked_vehicle" => ("锁车车辆，禁止驶出", "Locked vehicle — may not leave"),
        "denied_tag_tid_mismatch" => ("疑似克隆标签", "Suspected cloned tag"),
        "denied_no_permit" => ("登记车辆但无通行证", "Registered vehicle without a permit"),
        "denied_visitor_outside_slot" => ("访客不在预约时段", "Visitor outside the booked slot"),
        "denied_visitor_not_approved" => ("访客预约未批准", "Visitor booking not approved"),
        "denied_unknown_tag" => ("未登记的标签", "Unknown tag"),
        "denied_unknown_plate" => ("未登记的车牌", "Unknown plate"),
        "denied_lane_locked" => ("车道已锁定", "Lane locked"),
        "guard_open" => ("门卫手动抬杆", "Opened by the guard"),
        "opened_for_evacuation" => ("紧急疏散常开", "Open for evacuation"),
        "denied_plate_mismatch" => (
            "标签与车牌不符！疑似套用标签",
            "Tag and plate do not match — tag cloned or moved",
        ),
        "held_low_confidence" => (
            "车牌识别置信度低，请门卫核对",
            "Low-confidence plate read — guard to check",
        ),
        "granted_pass" => ("访客通行码有效，放行", "Valid visitor pass — open"),
        "denied_pass_malformed" => ("无法识别的二维码", "Not a visitor pass"),
        "denied_pass_forged" => ("通行码无效（疑似伪造）", "Invalid pass — possibly forged"),
        "denied_pass_not_yet_valid" => ("通行码尚未生效", "Pass not yet valid"),
        "denied_pass_expired" => ("通行码已过期", "Pass expired"),
        "denied_pass_wrong_gate" => ("通行码不含本大门", "Pass not valid at this gate"),
        "denied_pass_wrong_direction" => ("通行码不含此方向", "Pass not valid in this direction"),
        "denied_pass_used" => ("通行码已使用", "Pass already used"),
        "denied_pass_revoked" => ("预约已取消，通行码作废", "Booking cancelled — pass revoked"),
        "denied_pass_plate_mismatch" => ("通行码车牌与识别车牌不符", "Pass is for another plate"),
        other => return other.to_string(),
    };
    t(lang, zh, en).to_string()
}

/// A permit category in words.
pub fn category_label(lang: Lang, code: &str) -> String {
    let (zh, en) = match code {
        "staff" => ("教职工", "Staff"),
        "student" => ("学生", "Student"),
        "family" => ("家属", "Family"),
        "contractor" => ("施工/外包", "Contractor"),
        "official" => ("公务", "Official"),
        "visitor" => ("访客", "Visitor"),
        "unregistered" => ("未登记车辆", "Unregistered"),
        other => return other.to_string(),
    };
    t(lang, zh, en).to_string()
}

/// A lane or gate mode in words.
pub fn mode_label(lang: Lang, code: &str) -> String {
    let (zh, en) = match code {
        "normal" => ("正常", "Normal"),
        "locked_closed" => ("锁闭（仅手动）", "Locked closed (manual only)"),
        "locked_open" => ("常开（疏散）", "Locked open (evacuation)"),
        "emergency" => ("紧急", "Emergency"),
        "manual_only" => ("仅手动抬杆", "Manual only"),
        "manual_only_entry" => ("进门仅手动", "Manual only (in)"),
        "manual_only_exit" => ("出门仅手动", "Manual only (out)"),
        other => return other.to_string(),
    };
    t(lang, zh, en).to_string()
}

/// A permit status in words.
pub fn permit_status_label(lang: Lang, code: &str) -> String {
    let (zh, en) = match code {
        "active" => ("有效", "active"),
        "suspended" => ("已暂停", "suspended"),
        "revoked" => ("已吊销", "revoked"),
        "expired" => ("已过期", "expired"),
        other => return other.to_string(),
    };
    t(lang, zh, en).to_string()
}

/// An alarm webhook call's status in words.
pub fn webhook_status_label(lang: Lang, code: &str) -> String {
    let (zh, en) = match code {
        "none" => ("未联动", "not sent"),
        "pending" => ("发送中", "sending"),
        "sent" => ("已送达", "sent"),
        "failed" => ("发送失败", "FAILED"),
        "given_up" => ("已停止重试", "given up"),
        other => return other.to_string(),
    };
    t(lang, zh, en).to_string()
}

/// An alarm's kind in words (see `central::alarms`).
pub fn alarm_kind_label(lang: Lang, kind: &str) -> String {
    let (zh, en) = match kind {
        "manual" => ("一键报警", "Booth alarm"),
        "fire" => ("消防报警", "Fire alarm"),
        "journal_failure" => ("记录无法写入", "Journal cannot write"),
        "clock_offset" => ("大门时钟偏差", "Gate clock off"),
        "device_offline" => ("设备离线", "Device offline"),
        "event_conflict" => ("事件冲突", "Event conflict"),
        "plate_mismatch" => ("标签与车牌不符", "Tag/plate mismatch"),
        "cloned_tag" => ("疑似克隆标签", "Suspected cloned tag"),
        "tailgating" => ("尾随/未授权通过", "Tailgating / passage without a grant"),
        "booth_unstaffed" => ("岗亭无人值班", "Booth unstaffed"),
        other => return other.replace('_', " "),
    };
    t(lang, zh, en).to_string()
}

/// A lane state (the gate's `LaneStatus::state`) in words.
pub fn state_label(lang: Lang, code: &str) -> String {
    let (zh, en) = match code {
        "idle" => ("空闲", "Idle"),
        "vehicle_present" => ("有车", "Vehicle present"),
        "identifying" => ("识别中", "Identifying"),
        "opening" => ("抬杆中", "Opening"),
        "open" => ("已抬杆", "Open"),
        "passing" => ("车辆通过中", "Passing"),
        "close_pending" => ("即将落杆", "Closing soon"),
        "closing" => ("落杆中", "Closing"),
        "denied" => ("已拒绝", "Denied"),
        "held_open" => ("常开", "Held open"),
        "fault" => ("故障", "FAULT"),
        other => return other.to_string(),
    };
    t(lang, zh, en).to_string()
}

/// A direction in words.
pub fn direction_label(lang: Lang, code: &str) -> &'static str {
    match code {
        "entry" => t(lang, "入", "In"),
        "exit" => t(lang, "出", "Out"),
        _ => t(lang, "双向", "Both"),
    }
}

/// Gate rights (`all`, `all:exit`, `1;2:exit`) in words: 全部大门, 仅出门（全部大门）,
/// 北门（入、出）；南门（出）. `gate_name` names a gate by id (`None`: "大门 N"). Text that does
/// not parse is shown as it is (it cannot have been stored through the API).
pub fn gate_rights_words(
    lang: Lang,
    text: &str,
    gate_name: impl Fn(i64) -> Option<String>,
) -> String {
    use crate::domain::{DirectionSet, GateRights};
    let dirs = |d: DirectionSet| -> &'static str {
        if d == DirectionSet::ENTRY {
            t(lang, "入", "in")
        } else if d == DirectionSet::EXIT {
            t(lang, "出", "out")
        } else {
            t(lang, "入、出", "in, out")
        }
    };
    match crate::domain::text::parse_gate_rights(text) {
        Ok(GateRights::All(d)) if d == DirectionSet::ENTRY => {
            t(lang, "仅进门（全部大门）", "Entry only (all gates)").into()
        }
        Ok(GateRights::All(d)) if d == DirectionSet::EXIT => {
            t(lang, "仅出门（全部大门）", "Exit only (all gates)").into()
        }
        Ok(GateRights::All(_)) => t(lang, "全部大门", "All gates").into(),
        Ok(GateRights::Only(list)) => list
            .iter()
            .map(|r| {
                let id = i64::from(r.gate.0);
                let name = gate_name(id).unwrap_or_else(|| match lang {
                    Lang::Zh => format!("大门 {id}"),
                    Lang::En => format!("gate {id}"),
                });
                match lang {
                    Lang::Zh => format!("{name}（{}）", dirs(r.directions)),
                    Lang::En => format!("{name} ({})", dirs(r.directions)),
                }
            })
            .collect::<Vec<_>>()
            .join(t(lang, "；", "; ")),
        Err(_) => text.to_string(),
    }
}

/// A permit's schedule (`mon-fri 07:00-22:00;sat 08:00-12:00`) in words (周一至周五
/// 07:00-22:00；周六 08:00-12:00); empty means always (不限时段).
pub fn schedule_words(lang: Lang, text: &str) -> String {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("always") {
        return t(lang, "不限时段", "Any time").into();
    }
    let day = |d: &str| -> Option<&'static str> {
        Some(match d.trim().to_ascii_lowercase().as_str() {
            "mon" => t(lang, "周一", "Mon"),
            "tue" => t(lang, "周二", "Tue"),
            "wed" => t(lang, "周三", "Wed"),
            "thu" => t(lang, "周四", "Thu"),
            "fri" => t(lang, "周五", "Fri"),
            "sat" => t(lang, "周六", "Sat"),
            "sun" => t(lang, "周日", "Sun"),
            "daily" | "all" => t(lang, "每天", "Daily"),
            "workdays" => t(lang, "工作日", "Workdays"),
            "weekend" => t(lang, "周末", "Weekends"),
            _ => return None,
        })
    };
    let days = |spec: &str| -> String {
        spec.split(',')
            .map(|part| match part.split_once('-') {
                Some((a, b)) => match (day(a), day(b)) {
                    (Some(a), Some(b)) => format!("{a}{}{b}", t(lang, "至", "–")),
                    _ => part.to_string(),
                },
                None => day(part).map_or_else(|| part.to_string(), str::to_string),
            })
            .collect::<Vec<_>>()
            .join(t(lang, "、", ", "))
    };
    text.split(';')
        .filter(|w| !w.trim().is_empty())
        .map(|w| match w.trim().split_once(' ') {
            Some((d, hours)) => format!("{} {}", days(d), hours.trim()),
            None => w.trim().to_string(),
        })
        .collect::<Vec<_>>()
        .join(t(lang, "；", "; "))
}

/// A pass's kind in words: a period pass or a one-off exit pass.
pub fn pass_kind_label(lang: Lang, single_use: bool) -> &'static str {
    if single_use {
        t(lang, "一次性出门证", "One-off exit pass")
    } else {
        t(lang, "车辆通行证", "Vehicle pass")
    }
}

/// An audit entry's action in words (see `central::db::write_change` and its callers); an
/// unknown action as its words with spaces (never a snake_case code).
pub fn action_label(lang: Lang, action: &str) -> String {
    let (zh, en) = match action {
        "create" => ("新建", "Created"),
        "update" => ("修改", "Changed"),
        "update_with_password" => ("修改（含密码）", "Changed (with password)"),
        "delete" => ("删除", "Deleted"),
        "rename" => ("改名", "Renamed"),
        "set_mode" => ("更改模式", "Mode changed"),
        "lift" => ("解除", "Lifted"),
        "raise" => ("报警", "Alarm raised"),
        "acknowledge" => ("确认处理", "Acknowledged"),
        "withdraw" => ("撤回报警", "Alarm withdrawn"),
        "give_up_delivery" => ("停止联动重试", "Delivery given up"),
        "apply" => ("提交申请", "Applied"),
        "approve" => ("批准", "Approved"),
        "approve_department" => ("部门批准", "Approved by the department"),
        "reject" => ("驳回", "Rejected"),
        "cancel" => ("取消", "Cancelled"),
        "issue" => ("发证", "Issued"),
        "arrive" => ("到达", "Arrived"),
        "leave" => ("离开", "Left"),
        "no_show" => ("未到访", "No-show"),
        "suspend" => ("暂停", "Suspended"),
        "revoke" => ("吊销", "Revoked"),
        "reactivate" => ("恢复", "Reactivated"),
        "duty_start" => ("上岗", "Went on duty"),
        "slip_issued" => ("打印临时通行单", "Visitor slip printed"),
        "manual_command_refused" => (
            "拒绝手动操作（未在本岗签到）",
            "Manual command refused (not on duty here)",
        ),
        "duty_end" => ("下岗", "Went off duty"),
        "link_person" => ("关联人员", "Linked to a person"),
        "unlock" => ("解除登录锁定", "Sign-in unlocked"),
        "sign_in" => ("登录", "Signed in"),
        "sign_in_failed" => ("登录失败", "Sign-in failed"),
        "login_alarm" => ("多次登录失败告警", "Repeated sign-in failures"),
        "sign_out" => ("退出登录", "Signed out"),
        "manual_command" => ("门卫手动操作道闸", "Guard's manual barrier command"),
        "gate_command" => ("向大门下发指令", "Command sent to the gate"),
        "gate_command_ack" => ("大门已执行指令", "Gate confirmed a command"),
        "event_gap" => ("大门事件缺号", "Gap in the gate's events"),
        "event_conflict" => ("大门事件冲突", "Conflicting gate events"),
        "foreign_events_refused" => ("拒收其他大门的事件", "Another gate's events refused"),
        "plate_correction" => ("更正车牌", "Plate corrected"),
        "purge" => ("清理过期数据", "Expired data purged"),
        "bulk_import" => ("批量导入", "Bulk import"),
        other => return other.replace('_', " "),
    };
    t(lang, zh, en).to_string()
}

/// The kind of record an audit entry is about, in words; unknown as words with spaces.
pub fn entity_label(lang: Lang, entity: &str) -> String {
    let (zh, en) = match entity {
        "person" => ("人员", "Person"),
        "vehicle" => ("车辆", "Vehicle"),
        "credential" => ("标签", "Tag"),
        "permit" => ("通行证", "Permit"),
        "exit_pass_application" => ("出门证申请", "Exit-pass application"),
        "visitor_booking" => ("访客预约", "Visitor booking"),
        "visit" => ("访客来访", "Visit"),
        "blacklist" => ("黑名单", "Blacklist"),
        "vehicle_lock" => ("锁车", "Vehicle lock"),
        "gate" => ("大门", "Gate"),
        "lane" => ("车道", "Lane"),
        "operator" => ("操作员", "Operator"),
        "import" => ("批量导入", "Import"),
        "alarm" => ("报警", "Alarm"),
        "alarm_webhook" => ("报警联动设置", "Alarm link settings"),
        "duty" => ("值班", "Duty"),
        "handover_note" => ("交接班记录", "Handover note"),
        "site_settings" => ("系统设置", "Site settings"),
        "passage_event" => ("通行记录", "Passage"),
        "passage_events" => ("通行记录", "Passages"),
        "photos" => ("照片", "Photos"),
        other => return other.replace('_', " "),
    };
    t(lang, zh, en).to_string()
}

/// Who an audit entry or event names, in words: the system, a gate (`gate:3`), or an
/// operator's display name as `display` gives it (the recorded name when unknown).
pub fn actor_label<'a>(
    lang: Lang,
    recorded: &'a str,
    display: impl Fn(&'a str) -> &'a str,
) -> String {
    match recorded {
        "" | "system" => t(lang, "系统", "System").to_string(),
        "unknown" => t(lang, "未知用户", "Unknown user").to_string(),
        other => match other.strip_prefix("gate:") {
            Some(id) => format!("{}{id}", t(lang, "大门 #", "Gate #")),
            None => display(other).to_string(),
        },
    }
}

/// An operator role in words.
pub fn role_label(lang: Lang, role: &str) -> &'static str {
    match role {
        "admin" => t(lang, "系统管理员", "Administrator"),
        "security" => t(lang, "保卫处", "Security office"),
        "guard" => t(lang, "门卫", "Guard"),
        "approver" => t(lang, "部门审批人", "Department approver"),
        "viewer" => t(lang, "查看（行政）", "Viewer (administration)"),
        "applicant" => t(lang, "申请人（教职工/学生）", "Applicant (staff/student)"),
        _ => t(lang, "其他角色", "Other role"),
    }
}

/// A gate's offline policy in words.
pub fn offline_policy_label(lang: Lang, code: &str) -> String {
    let (zh, en) = match code {
        "cached" => ("按本地名单判断", "Decide from the local copy"),
        "locked_closed" => ("锁闭（仅手动）", "Locked closed (manual only)"),
        "locked_open" => ("常开", "Held open"),
        other => return other.replace('_', " "),
    };
    t(lang, zh, en).to_string()
}

/// A gate's anti-passback setting in words (`timed:15` → 15 分钟内防潜回).
pub fn anti_passback_label(lang: Lang, code: &str) -> String {
    if let Some(m) = code.strip_prefix("timed:") {
        return match lang {
            Lang::Zh => format!("{m} 分钟内防潜回"),
            Lang::En => format!("Anti-passback for {m} min"),
        };
    }
    let (zh, en) = match code {
        "off" => ("不防潜回", "Off"),
        "hard" => ("严格防潜回", "Hard"),
        "soft" => ("宽松（仅提示）", "Soft (warn only)"),
        other => return other.replace('_', " "),
    };
    t(lang, zh, en).to_string()
}

/// A field of a record, as an audit entry's summary names it; unknown as words with spaces.
pub fn field_label(lang: Lang, field: &str) -> String {
    let (zh, en) = match field {
        "name" => ("名称", "name"),
        "name_en" => ("英文名称", "English name"),
        "display_name" => ("姓名", "display name"),
        "mode" => ("模式", "mode"),
        "reason" => ("原因", "reason"),
        "note" => ("说明", "note"),
        "status" => ("状态", "status"),
        "enabled" => ("启用", "enabled"),
        "roles" => ("角色", "roles"),
        "gates" => ("大门", "gates"),
        "department" => ("部门", "department"),
        "plate" => ("车牌", "plate"),
        "colour" => ("车牌颜色", "plate colour"),
        "category" => ("类别", "category"),
        "valid_from" => ("生效时间", "valid from"),
        "valid_until" => ("失效时间", "valid until"),
        "slot_from" => ("预约开始", "slot from"),
        "slot_until" => ("预约结束", "slot until"),
        "visitor_name" => ("访客姓名", "visitor name"),
        "phone" => ("电话", "phone"),
        "purpose" => ("事由", "purpose"),
        "direction" => ("方向", "direction"),
        "settings" => ("设备设置", "device settings"),
        "anti_passback" => ("防潜回", "anti-passback"),
        "offline_policy" => ("离线策略", "offline policy"),
        "lane_key" => ("车道标识", "lane key"),
        "command" => ("指令", "command"),
        "holder_id" => ("持证人", "holder"),
        "vehicle_id" => ("车辆", "vehicle"),
        "person_id" => ("人员", "person"),
        "updated_at" | "updated_ms" => ("更新时间", "updated"),
        "decided_by" => ("审批人", "decided by"),
        "decided_at" => ("审批时间", "decided at"),
        "decision_note" => ("审批意见", "decision note"),
        "issued_by" => ("发证人", "issued by"),
        "issued_at" => ("发证时间", "issued at"),
        "created_by" => ("创建人", "created by"),
        "acknowledged_by" => ("确认人", "acknowledged by"),
        "acknowledged_at" => ("确认时间", "acknowledged at"),
        "department_approved_by" => ("部门批准人", "department approval by"),
        "applicant_id" => ("申请人", "applicant"),
        "host_id" | "host_name" => ("被访人", "host"),
        "driver_name" => ("驾驶人", "driver"),
        "driver_phone" => ("驾驶人电话", "driver's phone"),
        "kind" => ("类型", "kind"),
        "permit_id" => ("通行证", "permit"),
        "lane" => ("车道", "lane"),
        "gate_id" => ("大门", "gate"),
        "expected_departure" => ("预计离开", "expected departure"),
        "arrived_at" => ("到达时间", "arrived"),
        "left_at" => ("离开时间", "left"),
        "alarm_level" => ("报警级别", "alarm level"),
        "schedule" => ("通行时段", "schedule"),
        "single_use" => ("一次性", "single use"),
        "vehicle_type" => ("车辆类型", "vehicle type"),
        "plate_colour" => ("车牌颜色", "plate colour"),
        "id_card" => ("身份证号", "ID card"),
        "owner_id" => ("车主", "owner"),
        "corrected_plate" => ("更正后车牌", "corrected plate"),
        "message" => ("内容", "message"),
        "source" => ("来源地址", "source"),
        other => return other.replace('_', " "),
    };
    t(lang, zh, en).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, value.parse().unwrap());
        h
    }

    #[test]
    fn the_language_follows_the_clients_preference_and_defaults_to_chinese() {
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::Zh);
        assert_eq!(Lang::from_headers(&headers("en-US,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::from_headers(&headers("zh-CN,zh;q=0.9,en;q=0.8")),
            Lang::Zh
        );
        assert_eq!(Lang::from_headers(&headers("en;q=0.5,zh;q=0.9")), Lang::Zh);
        assert_eq!(Lang::from_headers(&headers("fr-FR")), Lang::Zh);
    }

    #[test]
    fn gate_rights_and_schedules_read_as_words_not_codes() {
        let names = |id: i64| (id == 1).then(|| "北门".to_string());
        assert_eq!(gate_rights_words(Lang::Zh, "all", names), "全部大门");
        assert_eq!(
            gate_rights_words(Lang::Zh, "all:exit", names),
            "仅出门（全部大门）"
        );
        assert_eq!(
            gate_rights_words(Lang::Zh, "1;2:exit", names),
            "北门（入、出）；大门 2（出）"
        );
        assert_eq!(gate_rights_words(Lang::En, "1:entry", names), "北门 (in)");
        assert_eq!(
            schedule_words(Lang::Zh, "mon-fri 07:00-22:00;sat,sun 08:00-12:00"),
            "周一至周五 07:00-22:00；周六、周日 08:00-12:00"
        );
        assert_eq!(schedule_words(Lang::Zh, ""), "不限时段");
    }

    #[test]
    fn audit_words_are_never_codes_and_an_unknown_code_reads_as_words() {
        for code in [
            "manual_command",
            "set_mode",
            "give_up_delivery",
            "update_with_password",
        ] {
            let zh = action_label(Lang::Zh, code);
            assert!(!zh.is_ascii(), "{code} → {zh}");
        }
        assert_eq!(action_label(Lang::En, "acknowledge"), "Acknowledged");
        assert_eq!(entity_label(Lang::Zh, "site_settings"), "系统设置");
        assert_eq!(action_label(Lang::Zh, "brand_new_thing"), "brand new thing");
        assert_eq!(actor_label(Lang::Zh, "gate:3", |n| n), "大门 #3");
        assert_eq!(actor_label(Lang::Zh, "system", |n| n), "系统");
        assert_eq!(
            actor_label(Lang::Zh, "guard", |_| "门卫 李师傅"),
            "门卫 李师傅"
        );
        assert_eq!(mode_label(Lang::Zh, "manual_only_exit"), "出门仅手动");
        assert_eq!(anti_passback_label(Lang::Zh, "timed:15"), "15 分钟内防潜回");
    }
}
