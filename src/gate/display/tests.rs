//! The templates: defaults, placeholders, privacy of names and reasons, config errors.

use super::*;

/// `[display]` as gate.toml would carry it.
#[derive(Debug, serde::Deserialize)]
struct File {
    #[serde(default)]
    display: DisplayConfig,
}

fn parse(toml_text: &str) -> Result<DisplayConfig, toml::de::Error> {
    toml::from_str::<File>(toml_text).map(|f| f.display)
}

/// A lane's status as the display sees it.
#[derive(Debug, Default)]
struct Status {
    state: String,
    decisions: u64,
    last_decision: Option<DecisionRecord>,
}

impl LaneView for Status {
    fn decisions(&self) -> u64 {
        self.decisions
    }
    fn state(&self) -> &str {
        &self.state
    }
    fn last_decision(&self) -> Option<&DecisionRecord> {
        self.last_decision.as_ref()
    }
}

pub(super) fn decision(reason: ReasonCode, direction: &str, plate: Option<&str>) -> DecisionRecord {
    DecisionRecord {
        direction: direction.into(),
        credential: "tag".into(),
        epc: None,
        tid: None,
        antenna: None,
        rssi_dbm: None,
        plate: plate.map(str::to_string),
        granted: reason.as_str().starts_with("granted") || reason == ReasonCode::GuardOpen,
        reason,
        flags: Vec::new(),
        permit_id: None,
        vehicle_id: None,
        holder: Some("张三丰".into()),
        category: None,
        data_version: 1,
        decide_ns: 0,
        camera: None,
        pass: None,
    }
}

fn templates(toml: &str) -> Result<Templates, DisplayConfigError> {
    Templates::from_config(&parse(toml).unwrap())
}

#[test]
fn the_default_words_welcome_an_entry_and_wish_an_exit_a_good_journey() {
    let t = Templates::from_config(&DisplayConfig::default()).unwrap();
    let a = t.announce(&decision(ReasonCode::Granted, "entry", Some("京A12345")));
    assert_eq!(a.outcome, Outcome::Granted);
    assert_eq!(a.colour, Colour::Green);
    assert_eq!(a.screen, ["欢迎光临"]);
    assert_eq!(a.voice, "京A12345，欢迎光临");
    let a = t.announce(&decision(ReasonCode::Granted, "exit", Some("京A12345")));
    assert_eq!(a.screen, ["一路顺风"]);
    let a = t.announce(&decision(
        ReasonCode::DeniedExpired,
        "entry",
        Some("京A12345"),
    ));
    assert_eq!(a.colour, Colour::Red);
    assert_eq!(a.screen, ["禁止通行", "通行证已过期"]);
    assert_eq!(a.voice, "京A12345，通行证已过期，禁止通行");
}

#[test]
fn a_blacklisted_vehicle_is_told_to_contact_the_guard_and_never_why() {
    let t = Templates::from_config(&DisplayConfig::default()).unwrap();
    for reason in [
        ReasonCode::DeniedBlacklisted,
        ReasonCode::DeniedTagTidMismatch,
        ReasonCode::DeniedPlateMismatch,
        ReasonCode::DeniedPassback,
    ] {
        let a = t.announce(&decision(reason, "entry", Some("京C66666")));
        assert_eq!(a.outcome, Outcome::ContactGuard);
        let all = format!("{} {} {}", a.screen.join(" "), a.voice, a.reason);
        assert!(all.contains("请联系门卫"), "{all}");
        for word in ["黑名单", "克隆", "套用", "防潜回"] {
            assert!(!all.contains(word), "{reason:?} says {word}: {all}");
        }
    }
    // Even a site template that asks for {reason} does not get the guard's words.
    let t = templates("[display.contact_guard]\nvoice = \"{reason}\"\n").unwrap();
    let a = t.announce(&decision(ReasonCode::DeniedBlacklisted, "entry", None));
    assert_eq!(a.voice, "请联系门卫");
}

#[test]
fn every_reason_has_an_outcome_and_words_for_the_driver() {
    let t = Templates::from_config(&DisplayConfig::default()).unwrap();
    for reason in ReasonCode::ALL {
        let a = t.announce(&decision(reason, "entry", Some("京A12345")));
        assert!(!a.screen.is_empty() && !a.voice.is_empty(), "{reason:?}");
        assert!(
            !a.reason.contains('_'),
            "{reason:?} shows a code: {}",
            a.reason
        );
        assert!(!a.voice.contains('{'), "{reason:?}: {}", a.voice);
    }
}

#[test]
fn names_are_said_as_a_surname_and_honorific_only_when_configured() {
    let t = Templates::from_config(&DisplayConfig::default()).unwrap();
    let a = t.announce(&decision(
        ReasonCode::GrantedVisitor,
        "entry",
        Some("京A12345"),
    ));
    assert_eq!(a.voice, "京A12345，欢迎来访", "no name by default");
    let t = templates("[display]\nname = \"surname\"\n").unwrap();
    let a = t.announce(&decision(
        ReasonCode::GrantedVisitor,
        "entry",
        Some("京A12345"),
    ));
    assert_eq!(a.voice, "京A12345，张先生/女士欢迎来访");
    assert!(!a.voice.contains("三丰"));
    let t = templates("[display]\nname = \"surname\"\nhonorific = \"老师\"\n").unwrap();
    let mut d = decision(ReasonCode::GrantedVisitor, "entry", None);
    d.holder = Some("欧阳修文".into());
    assert_eq!(t.announce(&d).voice, "欧阳老师欢迎来访");
    d.holder = Some("John Smith".into());
    assert_eq!(
        t.announce(&d).voice,
        "欢迎来访",
        "a foreign name is left unsaid"
    );
}

#[test]
fn a_site_may_reword_an_outcome_with_placeholders() {
    let t =
        templates("[display.granted]\nscreen = \"{plate}\\n请通行\"\nvoice = \"{plate}请进\"\n")
            .unwrap();
    let a = t.announce(&decision(ReasonCode::Granted, "entry", Some("沪B8888F")));
    assert_eq!(a.screen, ["沪B8888F", "请通行"]);
    assert_eq!(a.voice, "沪B8888F请进");
    // The others keep their defaults.
    let a = t.announce(&decision(ReasonCode::Granted, "exit", Some("沪B8888F")));
    assert_eq!(a.screen, ["一路顺风"]);
}

#[test]
fn an_unknown_placeholder_or_a_broken_brace_is_a_configuration_error() {
    let e = templates("[display.granted]\nvoice = \"{holder}欢迎\"\n").unwrap_err();
    assert!(e.to_string().contains("display.granted.voice"), "{e}");
    assert!(e.to_string().contains("{holder}"), "{e}");
    assert!(templates("[display.expired]\nscreen = \"{plate\"\n").is_err());
    assert!(templates("[display.expired]\nscreen = \"plate}\"\n").is_err());
    assert!(templates("[display.fault]\nscreen = \"a\\nb\\nc\\nd\"\n").is_err());
    // An unknown outcome or field is refused when the file is read.
    assert!(parse("[display.grantd]\nvoice = \"x\"\n").is_err());
    assert!(parse("[display.granted]\nspeech = \"x\"\n").is_err());
}

#[test]
fn an_empty_plate_leaves_no_stray_comma() {
    let t = Templates::from_config(&DisplayConfig::default()).unwrap();
    let a = t.announce(&decision(ReasonCode::Granted, "entry", None));
    assert_eq!(a.voice, "欢迎光临");
    assert_eq!(a.plate, None);
}

#[test]
fn the_follower_announces_each_new_decision_once_and_a_fault_when_it_begins() {
    let t = Templates::from_config(&DisplayConfig::default()).unwrap();
    let mut status = Status {
        state: "idle".into(),
        decisions: 4,
        last_decision: Some(decision(ReasonCode::Granted, "entry", Some("京A00001"))),
    };
    let mut f = Follower::new(&status);
    assert_eq!(f.next(&status, &t), None, "nothing replayed");
    status.decisions = 5;
    status.last_decision = Some(decision(ReasonCode::DeniedUnknownTag, "entry", None));
    assert_eq!(f.next(&status, &t).unwrap().outcome, Outcome::NotRegistered);
    status.state = "denied".into();
    assert_eq!(f.next(&status, &t), None, "a state change is no decision");
    status.state = "fault".into();
    assert_eq!(f.next(&status, &t).unwrap().outcome, Outcome::Fault);
    assert_eq!(f.next(&status, &t), None, "said once");
}

#[test]
fn the_display_token_compares_whole() {
    let token = parse("[display]\ntoken = \"s3cret-lane\"\n")
        .unwrap()
        .token
        .unwrap();
    assert!(token.matches("s3cret-lane"));
    assert!(!token.matches("s3cret-lan") && !token.matches("s3cret-lanE") && !token.matches(""));
    assert!(!format!("{token:?}").contains("s3cret"));
}

#[test]
fn the_documented_display_section_parses_and_states_the_default_words() {
    let documented = parse(include_str!("../../../examples/gate.toml")).unwrap();
    let t = Templates::from_config(&documented).unwrap();
    let d = Templates::from_config(&DisplayConfig::default()).unwrap();
    for reason in ReasonCode::ALL {
        for direction in ["entry", "exit"] {
            let a = t.announce(&decision(reason, direction, Some("京A12345")));
            let b = d.announce(&decision(reason, direction, Some("京A12345")));
            assert_eq!(
                (a.outcome, a.screen, a.voice, a.reason),
                (b.outcome, b.screen, b.voice, b.reason),
                "{reason:?} {direction}"
            );
        }
    }
    assert_eq!(documented.name, NameStyle::None);
    assert!(documented.token.is_none());
}
