//! The signal light's rule: which colour a lane state asks for, and whether the light coil is
//! made for it. Pure; the lane's I/O task (the one owner of the Modbus link) writes the coil,
//! and only when the answer changes.

use super::{GreenWhen, LightColour, SignalLightConfig};

/// The colour the light shows in lane state `state` (the snake_case names of the lane's live
/// status). Green while a grant is opening the arm (with `granted_or_open`) or the arm is up;
/// red otherwise — idle, a vehicle waiting, refused, closing, in a fault.
pub fn colour_for(config: &SignalLightConfig, state: &str) -> LightColour {
    let green = match state {
        "open" | "passing" | "close_pending" | "held_open" => true,
        "opening" => config.green_when == GreenWhen::GrantedOrOpen,
        _ => false,
    };
    if green {
        LightColour::Green
    } else {
        LightColour::Red
    }
}

/// Whether the light coil is made to show `colour`.
pub fn coil_on(config: &SignalLightConfig, colour: LightColour) -> bool {
    colour == config.coil_on_means
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_light_is_green_from_a_grants_open_until_the_arm_closes_and_red_otherwise() {
        let c = SignalLightConfig::default();
        for s in ["opening", "open", "passing", "close_pending", "held_open"] {
            assert_eq!(colour_for(&c, s), LightColour::Green, "{s}");
        }
        for s in [
            "idle",
            "vehicle_present",
            "identifying",
            "closing",
            "denied",
            "fault",
        ] {
            assert_eq!(colour_for(&c, s), LightColour::Red, "{s}");
        }
    }

    #[test]
    fn with_green_when_open_the_light_waits_for_the_arm_to_be_up() {
        let c = SignalLightConfig {
            green_when: GreenWhen::Open,
            ..SignalLightConfig::default()
        };
        assert_eq!(colour_for(&c, "opening"), LightColour::Red);
        assert_eq!(colour_for(&c, "open"), LightColour::Green);
    }

    #[test]
    fn a_coil_wired_to_red_is_made_for_red() {
        let mut c = SignalLightConfig::default();
        assert!(coil_on(&c, LightColour::Green) && !coil_on(&c, LightColour::Red));
        c.coil_on_means = LightColour::Red;
        assert!(coil_on(&c, LightColour::Red) && !coil_on(&c, LightColour::Green));
    }
}
