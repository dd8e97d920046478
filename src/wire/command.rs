//! Commands from the centre to a gate: a guard's or the office's manual open / keep closed /
//! release on one lane, and mode changes. The centre queues them, the gate's command long poll
//! fetches them ([`crate::wire::sync::PendingCommand`]) and the gate answers each with a
//! [`crate::wire::sync::CommandResult`].
//!
//! The action and the mode are enums whose JSON is the snake_case code (`"open"`,
//! `"locked_closed"`, …): the gate never parses a string back into them. This module never
//! does IO and never carries a command out.

use serde::{Deserialize, Serialize};

/// What a gate is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GateCommand {
    /// A guard's command on one lane, with a reason code (visitor_registered,
    /// permit_holder_without_tag, emergency_vehicle, official_business, device_fault, other)
    /// and the guard's note.
    Guard {
        lane: String,
        command: GuardAction,
        reason: String,
        note: Option<String>,
        operator: String,
        /// The plate of the vehicle let through or held (normalised), as the guard confirmed
        /// it: a manual open records which vehicle it was for. Absent from the JSON when
        /// there is none, so a gate of the previous release reads the command unchanged, and
        /// a command from a centre of the previous release reads as `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plate: Option<String>,
    },
    /// Set the mode of one lane, or of every lane of the gate (`lane: None`).
    SetMode {
        lane: Option<String>,
        mode: LaneMode,
        by: String,
    },
}

/// What a guard's command does to the barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardAction {
    /// Lift the barrier once (手动抬杆).
    Open,
    /// Keep the barrier down whatever is read.
    KeepClosed,
    /// Undo a keep-closed: the lane decides again.
    Release,
}

impl GuardAction {
    /// The snake_case code, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardAction::Open => "open",
            GuardAction::KeepClosed => "keep_closed",
            GuardAction::Release => "release",
        }
    }

    /// The action whose code is `code`, if any.
    pub fn from_code(code: &str) -> Option<GuardAction> {
        [
            GuardAction::Open,
            GuardAction::KeepClosed,
            GuardAction::Release,
        ]
        .into_iter()
        .find(|a| a.as_str() == code)
    }
}

/// The mode a command sets on a lane. `lockdown` and `evacuation` are the office's names for
/// `locked_closed` and `locked_open`; each travels as the name it was sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneMode {
    /// Grants open automatically.
    Normal,
    /// Nothing opens automatically; a guard's open still does.
    LockedClosed,
    /// The arm is held open.
    LockedOpen,
    /// Only the guard opens, in both directions.
    ManualOnly,
    /// Only the guard opens entries.
    ManualOnlyEntry,
    /// Only the guard opens exits.
    ManualOnlyExit,
    /// `locked_closed` by the office's name.
    Lockdown,
    /// `locked_open` by the office's name.
    Evacuation,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The JSON a gate and a centre of the previous release exchange: the bytes on the link must
    // not change when the types do.

    #[test]
    fn a_guard_command_and_a_mode_change_serialise_to_the_bytes_the_link_carries() {
        let guard = GateCommand::Guard {
            lane: "in".into(),
            command: GuardAction::KeepClosed,
            reason: "emergency_vehicle".into(),
            note: Some("救护车".into()),
            operator: "guard1".into(),
            plate: None,
        };
        let json = r#"{"type":"guard","lane":"in","command":"keep_closed","reason":"emergency_vehicle","note":"救护车","operator":"guard1"}"#;
        assert_eq!(serde_json::to_string(&guard).unwrap(), json);
        assert_eq!(serde_json::from_str::<GateCommand>(json).unwrap(), guard);

        let mode = GateCommand::SetMode {
            lane: None,
            mode: LaneMode::ManualOnlyEntry,
            by: "保卫处".into(),
        };
        let json = r#"{"type":"set_mode","lane":null,"mode":"manual_only_entry","by":"保卫处"}"#;
        assert_eq!(serde_json::to_string(&mode).unwrap(), json);
        assert_eq!(serde_json::from_str::<GateCommand>(json).unwrap(), mode);
    }

    #[test]
    fn a_guard_command_carries_its_plate_and_one_without_a_plate_is_read_either_way() {
        let with = GateCommand::Guard {
            lane: "in".into(),
            command: GuardAction::Open,
            reason: "visitor_registered".into(),
            note: None,
            operator: "guard1".into(),
            plate: Some("浙AM1205".into()),
        };
        let json = r#"{"type":"guard","lane":"in","command":"open","reason":"visitor_registered","note":null,"operator":"guard1","plate":"浙AM1205"}"#;
        assert_eq!(serde_json::to_string(&with).unwrap(), json);
        assert_eq!(serde_json::from_str::<GateCommand>(json).unwrap(), with);
        // From a centre of the previous release: no plate field at all.
        let old = r#"{"type":"guard","lane":"in","command":"open","reason":"other","note":"x","operator":"g"}"#;
        match serde_json::from_str::<GateCommand>(old).unwrap() {
            GateCommand::Guard { plate, .. } => assert_eq!(plate, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_command_with_an_unknown_action_or_mode_is_not_a_command() {
        for json in [
            r#"{"type":"guard","lane":"in","command":"explode","reason":"other","note":null,"operator":"g"}"#,
            r#"{"type":"set_mode","lane":null,"mode":"party","by":"g"}"#,
        ] {
            assert!(serde_json::from_str::<GateCommand>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn every_guard_action_reads_back_from_its_code() {
        for a in [
            GuardAction::Open,
            GuardAction::KeepClosed,
            GuardAction::Release,
        ] {
            assert_eq!(GuardAction::from_code(a.as_str()), Some(a));
        }
        assert_eq!(GuardAction::from_code("Open"), None);
    }
}
