//! `/api/v1/settings`: the site settings an administrator changes at run time (站点设置) —
//! the province plate inputs start with, whether a guard must be on duty at a gate before
//! opening there by hand, how long a lane's verdict stays bright, how long a false alarm may be
//! withdrawn, after how long an unstaffed booth alerts the office. Administrators read and
//! change them; the security office reads them (it answers for the rules at the booths, but
//! changing them is the administrator's).
//!
//! What it never does: store a value it has not checked (a bad value is a 422 naming the field,
//! in zh-CN or English, and nothing is saved), or save without an audit entry
//! ([`settings::save`] writes it with the settings before and after).

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::error::{ApiResult, ErrorBody, Fields};
use super::extract::ApiJson;
use crate::central::repo::settings::{self, SiteSettings};
use crate::central::state::AppState;
use crate::domain::plate::is_province;
use crate::i18n::Msg;

/// Bounds of `verdict_fade_s`: 5 s to 1 h.
pub const VERDICT_FADE_S: (i64, i64) = (5, 3600);
/// Bounds of `alarm_withdraw_s`: 10 s to 30 min (a false alarm is noticed at once).
pub const ALARM_WITHDRAW_S: (i64, i64) = (10, 1800);
/// Bounds of `unstaffed_alert_min`: 0 (off) to 24 h.
pub const UNSTAFFED_ALERT_MIN: (i64, i64) = (0, 1440);

/// A change of settings: each field left out keeps its current value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// One province abbreviation (京, 浙, …).
    pub province: Option<String>,
    pub require_duty_for_open: Option<bool>,
    /// Seconds, 5–3600.
    pub verdict_fade_s: Option<i64>,
    /// Seconds, 10–1800.
    pub alarm_withdraw_s: Option<i64>,
    /// Minutes, 0 (no alert) – 1440.
    pub unstaffed_alert_min: Option<i64>,
}

/// `value` within `bounds`, or a field error in both languages.
fn within(
    field: &'static str,
    value: i64,
    (lo, hi): (i64, i64),
    unit: (&str, &str),
    f: &mut Fields,
) -> u32 {
    if value < lo || value > hi {
        f.add(
            field,
            "out_of_range",
            Msg::new(
                format!("应在 {lo} 到 {hi} {}之间", unit.0),
                format!("Must be between {lo} and {hi} {}", unit.1),
            ),
        );
        return 0;
    }
    u32::try_from(value).unwrap_or(0)
}

/// `current` with `input` applied, or every field error at once.
pub fn apply(current: &SiteSettings, input: &SettingsInput) -> ApiResult<SiteSettings> {
    let mut f = Fields::new();
    let mut new = current.clone();
    if let Some(p) = &input.province {
        let p = p.trim();
        let mut cs = p.chars();
        match (cs.next(), cs.next()) {
            (Some(c), None) if is_province(c) => new.province = p.to_string(),
            _ => f.add(
                "province",
                "invalid_value",
                Msg::new(
                    format!("“{p}”不是省份简称：请选择京、津、沪、浙等 31 个之一"),
                    format!(
                        "“{p}” is not a province abbreviation: choose one of the 31 (京, 津, 沪, 浙, …)"
                    ),
                ),
            ),
        }
    }
    if let Some(on) = input.require_duty_for_open {
        new.require_duty_for_open = on;
    }
    if let Some(v) = input.verdict_fade_s {
        new.verdict_fade_s = within("verdict_fade_s", v, VERDICT_FADE_S, ("秒", "s"), &mut f);
    }
    if let Some(v) = input.alarm_withdraw_s {
        new.alarm_withdraw_s = within("alarm_withdraw_s", v, ALARM_WITHDRAW_S, ("秒", "s"), &mut f);
    }
    if let Some(v) = input.unstaffed_alert_min {
        new.unstaffed_alert_min = within(
            "unstaffed_alert_min",
            v,
            UNSTAFFED_ALERT_MIN,
            ("分钟", "min"),
            &mut f,
        );
    }
    f.finish()?;
    Ok(new)
}

/// The site settings (defaults for any never saved).
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, body = SiteSettings), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn read(State(state): State<AppState>) -> ApiResult<ApiJson<SiteSettings>> {
    Ok(ApiJson(settings::load(&state.db).await?))
}

/// Change site settings (the fields given); audited with the settings before and after.
#[utoipa::path(put, path = "/api/v1/settings", tag = "settings", request_body = SettingsInput,
    responses((status = 200, body = SiteSettings), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<SettingsInput>,
) -> ApiResult<ApiJson<SiteSettings>> {
    let current = settings::load(&state.db).await?;
    let new = apply(&current, &input)?;
    Ok(ApiJson(
        settings::save(&state.db, &authed.actor(), &new).await?,
    ))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(read, update))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_value_is_named_at_once_and_good_ones_apply() {
        let current = SiteSettings::default();
        let bad = SettingsInput {
            province: Some("北".into()),
            verdict_fade_s: Some(0),
            alarm_withdraw_s: Some(99_999),
            unstaffed_alert_min: Some(-1),
            ..SettingsInput::default()
        };
        let Err(super::super::error::ApiError::Validation(fields)) = apply(&current, &bad) else {
            panic!("refused");
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "province",
                "verdict_fade_s",
                "alarm_withdraw_s",
                "unstaffed_alert_min"
            ]
        );
        let good = SettingsInput {
            province: Some(" 浙 ".into()),
            require_duty_for_open: Some(false),
            unstaffed_alert_min: Some(0),
            ..SettingsInput::default()
        };
        let new = apply(&current, &good).unwrap();
        assert_eq!(new.province, "浙");
        assert!(!new.require_duty_for_open);
        assert_eq!(new.unstaffed_alert_min, 0);
        assert_eq!(new.verdict_fade_s, current.verdict_fade_s);
    }
}
