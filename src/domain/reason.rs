//! Why a lane let a vehicle through or not: the stable reason codes journalled with every decision,
//! counted in statistics and shown to the guard.
//!
//! The snake_case codes from [`ReasonCode::as_str`] are stored and sent to the centre: they never
//! change meaning and are never renumbered. Translation to zh-CN / English happens elsewhere.

/// The reason for a lane decision. Codes are stable (see [`ReasonCode::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    /// A permit allows this vehicle at this gate, in this direction, now.
    Granted,
    /// No permit grants, but an approved visitor booking covers this plate now.
    GrantedVisitor,
    /// The tag, the plate or a permit holder is on the blacklist (checked first, fails closed).
    DeniedBlacklisted,
    /// Every permit of the vehicle has ended (`valid_until` passed).
    DeniedExpired,
    /// The permit starts later (`valid_from` not reached).
    DeniedNotYetValid,
    /// The permit is suspended (temporarily, with a reason).
    DeniedSuspended,
    /// The permit is revoked (for good, with a reason).
    DeniedRevoked,
    /// The permit does not cover this gate.
    DeniedWrongGate,
    /// The permit covers this gate but not this direction (the exit-pass rule: exits are checked too).
    DeniedWrongDirection,
    /// Outside the permit's weekday/time schedule in the site's time zone.
    DeniedOutsideSchedule,
    /// A single-use pass that has already been used.
    DeniedSingleUseConsumed,
    /// Anti-passback: the vehicle is recorded inside and tries to enter again.
    DeniedPassback,
    /// The permit's `max_inside` vehicles are already inside.
    DeniedPermitQuota,
    /// The vehicle is on the lock list (锁车) and tries to leave.
    DeniedLockedVehicle,
    /// The tag is bound to a factory TID and this read carried another one: a cloned tag.
    DeniedTagTidMismatch,
    /// The vehicle is registered but holds no permit (and no booking covers it).
    DeniedNoPermit,
    /// A visitor booking exists for the plate but its slot does not cover now.
    DeniedVisitorOutsideSlot,
    /// A visitor booking exists for the plate but is not approved (pending, rejected, cancelled).
    DeniedVisitorNotApproved,
    /// The tag is not any credential's EPC.
    DeniedUnknownTag,
    /// The plate is neither a registered vehicle nor a booked visitor.
    DeniedUnknownPlate,
    /// A tag and a plate camera read the same vehicle and the tag's registered plate is not the
    /// camera's: a cloned or moved tag (双重识别, dual identification).
    DeniedPlateMismatch,
    /// A plate read below the camera's minimum confidence: never opens by itself; the guard sees
    /// the photo and near matches and decides (used by the lane runtime, never by `decide`).
    HeldLowConfidence,
    /// The lane is locked closed or manual-only: the read was decided but not acted on
    /// (used by the lane runtime, never by `decide`).
    DeniedLaneLocked,
    /// A guard opened the barrier by hand (手动抬杆; used by the lane runtime, never by `decide`).
    GuardOpen,
    /// The barrier opened because the lane is locked open or the fire linkage fired
    /// (used by the lane runtime, never by `decide`).
    OpenedForEvacuation,
    /// A signed visitor pass (访客通行码) scanned at the lane, verified offline: valid now, at this
    /// gate and in this direction, unused if single use, its booking not revoked.
    GrantedPass,
    /// A scanned code that is not a visitor pass (another QR code, a truncated scan).
    DeniedPassMalformed,
    /// A pass whose signature no key of the site makes: changed, made up, or signed with a
    /// retired key. Never opens.
    DeniedPassForged,
    /// A pass scanned before its window opens.
    DeniedPassNotYetValid,
    /// A pass scanned after its window ended.
    DeniedPassExpired,
    /// A pass not valid at this gate.
    DeniedPassWrongGate,
    /// A pass valid at this gate, but not in this lane's direction.
    DeniedPassWrongDirection,
    /// A single-use pass already used in this direction (here, or at another gate once the
    /// centre told this one). A replayed pass never opens twice.
    DeniedPassUsed,
    /// A pass whose booking was cancelled or rejected after it was issued (the revocation
    /// reached the gate like any change).
    DeniedPassRevoked,
    /// A pass for another plate than the one the lane's camera read on the vehicle.
    DeniedPassPlateMismatch,
}

impl ReasonCode {
    /// Every code, in declaration order.
    pub const ALL: [ReasonCode; 35] = [
        ReasonCode::Granted,
        ReasonCode::GrantedVisitor,
        ReasonCode::DeniedBlacklisted,
        ReasonCode::DeniedExpired,
        ReasonCode::DeniedNotYetValid,
        ReasonCode::DeniedSuspended,
        ReasonCode::DeniedRevoked,
        ReasonCode::DeniedWrongGate,
        ReasonCode::DeniedWrongDirection,
        ReasonCode::DeniedOutsideSchedule,
        ReasonCode::DeniedSingleUseConsumed,
        ReasonCode::DeniedPassback,
        ReasonCode::DeniedPermitQuota,
        ReasonCode::DeniedLockedVehicle,
        ReasonCode::DeniedTagTidMismatch,
        ReasonCode::DeniedNoPermit,
        ReasonCode::DeniedVisitorOutsideSlot,
        ReasonCode::DeniedVisitorNotApproved,
        ReasonCode::DeniedUnknownTag,
        ReasonCode::DeniedUnknownPlate,
        ReasonCode::DeniedLaneLocked,
        ReasonCode::GuardOpen,
        ReasonCode::OpenedForEvacuation,
        ReasonCode::DeniedPlateMismatch,
        ReasonCode::HeldLowConfidence,
        ReasonCode::GrantedPass,
        ReasonCode::DeniedPassMalformed,
        ReasonCode::DeniedPassForged,
        ReasonCode::DeniedPassNotYetValid,
        ReasonCode::DeniedPassExpired,
        ReasonCode::DeniedPassWrongGate,
        ReasonCode::DeniedPassWrongDirection,
        ReasonCode::DeniedPassUsed,
        ReasonCode::DeniedPassRevoked,
        ReasonCode::DeniedPassPlateMismatch,
    ];

    /// The stable snake_case code, e.g. `denied_wrong_direction`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Granted => "granted",
            ReasonCode::GrantedVisitor => "granted_visitor",
            ReasonCode::DeniedBlacklisted => "denied_blacklisted",
            ReasonCode::DeniedExpired => "denied_expired",
            ReasonCode::DeniedNotYetValid => "denied_not_yet_valid",
            ReasonCode::DeniedSuspended => "denied_suspended",
            ReasonCode::DeniedRevoked => "denied_revoked",
            ReasonCode::DeniedWrongGate => "denied_wrong_gate",
            ReasonCode::DeniedWrongDirection => "denied_wrong_direction",
            ReasonCode::DeniedOutsideSchedule => "denied_outside_schedule",
            ReasonCode::DeniedSingleUseConsumed => "denied_single_use_consumed",
            ReasonCode::DeniedPassback => "denied_passback",
            ReasonCode::DeniedPermitQuota => "denied_permit_quota",
            ReasonCode::DeniedLockedVehicle => "denied_locked_vehicle",
            ReasonCode::DeniedTagTidMismatch => "denied_tag_tid_mismatch",
            ReasonCode::DeniedNoPermit => "denied_no_permit",
            ReasonCode::DeniedVisitorOutsideSlot => "denied_visitor_outside_slot",
            ReasonCode::DeniedVisitorNotApproved => "denied_visitor_not_approved",
            ReasonCode::DeniedUnknownTag => "denied_unknown_tag",
            ReasonCode::DeniedUnknownPlate => "denied_unknown_plate",
            ReasonCode::DeniedLaneLocked => "denied_lane_locked",
            ReasonCode::GuardOpen => "guard_open",
            ReasonCode::OpenedForEvacuation => "opened_for_evacuation",
            ReasonCode::DeniedPlateMismatch => "denied_plate_mismatch",
            ReasonCode::HeldLowConfidence => "held_low_confidence",
            ReasonCode::GrantedPass => "granted_pass",
            ReasonCode::DeniedPassMalformed => "denied_pass_malformed",
            ReasonCode::DeniedPassForged => "denied_pass_forged",
            ReasonCode::DeniedPassNotYetValid => "denied_pass_not_yet_valid",
            ReasonCode::DeniedPassExpired => "denied_pass_expired",
            ReasonCode::DeniedPassWrongGate => "denied_pass_wrong_gate",
            ReasonCode::DeniedPassWrongDirection => "denied_pass_wrong_direction",
            ReasonCode::DeniedPassUsed => "denied_pass_used",
            ReasonCode::DeniedPassRevoked => "denied_pass_revoked",
            ReasonCode::DeniedPassPlateMismatch => "denied_pass_plate_mismatch",
        }
    }

    /// The code for a string produced by [`ReasonCode::as_str`].
    pub fn from_code(code: &str) -> Option<ReasonCode> {
        ReasonCode::ALL.into_iter().find(|r| r.as_str() == code)
    }

    /// Whether this reason lets the vehicle through.
    pub fn is_grant(self) -> bool {
        matches!(
            self,
            ReasonCode::Granted
                | ReasonCode::GrantedVisitor
                | ReasonCode::GrantedPass
                | ReasonCode::GuardOpen
                | ReasonCode::OpenedForEvacuation
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_code_is_unique_snake_case_and_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for r in ReasonCode::ALL {
            let s = r.as_str();
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert!(seen.insert(s), "duplicate {s}");
            assert_eq!(ReasonCode::from_code(s), Some(r));
            // Held reads wait for the guard: not a grant either.
            let refused = s.starts_with("denied_") || s.starts_with("held_");
            assert_eq!(r.is_grant(), !refused, "{s}");
        }
    }
}
