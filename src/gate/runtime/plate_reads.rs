//! The pure rules a lane applies to plate camera reads, apart from the lane task that carries
//! them out: what the lane remembers of the vehicle on its loop (the tag and the plate read for
//! it, for the cross-check), whether a tag's registered plate is the camera's, and the near
//! matches a guard is shown for a read too unsure to act on.
//!
//! Why apart: the lane task is the IO shell (journal, machine, devices); these rules are small,
//! have edge cases (colour, repeats, windows) and are tested here without a lane.
//!
//! What it never does: IO, clock reads (instants are arguments), deciding (that is
//! [`crate::gate::decision::decide`]) or opening on a near match (suggestions only).

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::plate_match::{normalise_query, suggest};
use crate::domain::{Direction, Plate, PlateColour, PlateIdentity};
use crate::gate::camera::PlateSighting;
use crate::gate::index::Index;
use crate::wire::journal::{DecisionRecord, PlateReadRecord};

/// How many near matches a held read shows (as many as the booth's look-up).
pub(super) const SUGGESTIONS: usize = 8;

/// Characters a camera (or a guard) confuses, each group one look-alike class: the same
/// confusions [`crate::domain::plate_match`] matches under.
const LOOK_ALIKES: [&str; 6] = ["0ODQ", "1IL", "8B", "5S", "2Z", "6G"];

/// Whether the plate registered for a tag is the plate the camera read: the same text — or the
/// same but for one character the camera confused with its look-alike (8/B, 0/D, 5/S …: the
/// usual recognition error, which must not turn a staff car's valid tag into a "cloned tag"
/// alarm; a cloned tag on another car differs in more than one look-alike) — and the same
/// colour when the camera reported one (colour is part of the identity; a camera that reports
/// none is not held to it). A read whose text is no plate never matches.
pub(super) fn plates_match(registered: PlateIdentity, camera: &PlateSighting) -> bool {
    camera
        .plate
        .is_some_and(|read| same_but_one_look_alike(registered.plate.as_str(), read.plate.as_str()))
        && camera.colour.is_none_or(|c| c == registered.colour)
}

/// Whether the plate a pass names is the camera's read of the vehicle: as [`plates_match`],
/// the pass carrying no colour.
pub(super) fn pass_plate_matches(pass: Plate, camera: &PlateSighting) -> bool {
    camera
        .plate
        .is_some_and(|read| same_but_one_look_alike(pass.as_str(), read.plate.as_str()))
}

/// `a` and `b` are equal, or equal but for one position whose two characters are look-alikes.
fn same_but_one_look_alike(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() != b.len() {
        return false;
    }
    let mut differing = a.iter().zip(&b).filter(|(x, y)| x != y);
    match (differing.next(), differing.next()) {
        (Some((&x, &y)), None) => LOOK_ALIKES
            .iter()
            .any(|class| class.contains(x) && class.contains(y)),
        _ => false,
    }
}

/// The tag decided for the vehicle on the loop.
#[derive(Debug, Clone)]
pub(super) struct TagSeen {
    /// The plate the tag is registered to (none for an unknown tag).
    pub(super) registered: Option<PlateIdentity>,
    /// Its decision as journalled.
    pub(super) record: DecisionRecord,
    /// The direction it was decided for.
    pub(super) direction: Direction,
    pub(super) at: Instant,
}

/// The plate read acted on for the vehicle on the loop.
#[derive(Debug, Clone)]
pub(super) struct PlateSeen {
    pub(super) sighting: PlateSighting,
    /// Whether the lane let the vehicle through on it.
    pub(super) granted: bool,
    pub(super) at: Instant,
}

/// What identified the vehicle now on the presence loop: forgotten when it leaves the loop and
/// when the next one arrives.
#[derive(Debug, Clone, Default)]
pub(super) struct VehicleReads {
    pub(super) tag: Option<TagSeen>,
    pub(super) plate: Option<PlateSeen>,
    /// The pass scanned for this vehicle (repeats of it are ignored), and whether it waits for
    /// the camera's read (`lane_task::pass_lane`).
    pub(super) pass: Option<PassSeen>,
}

/// A pass scanned for the vehicle on the loop.
#[derive(Debug, Clone)]
pub(super) struct PassSeen {
    /// The scanned text.
    pub(super) text: String,
    /// Decided (a repeat is ignored) or waiting for the camera's read until this instant.
    pub(super) waiting_until: Option<Instant>,
}

impl VehicleReads {
    /// The plate read a tag read at `now` must be cross-checked with: the vehicle's plate read
    /// within `window`, or any once the pair was checked (a tag re-read after its hold must
    /// not open what the cross-check refused).
    pub(super) fn plate_to_check(&self, now: Instant, window: Duration) -> Option<&PlateSeen> {
        let plate = self.plate.as_ref()?;
        (self.tag.is_some() || now.saturating_duration_since(plate.at) <= window).then_some(plate)
    }

    /// The tag a plate read at `now` must be cross-checked with (as [`Self::plate_to_check`]).
    pub(super) fn tag_to_check(&self, now: Instant, window: Duration) -> Option<&TagSeen> {
        let tag = self.tag.as_ref()?;
        (self.plate.is_some() || now.saturating_duration_since(tag.at) <= window).then_some(tag)
    }

    /// The plate of the vehicle, as best known: the tag's registered plate, else the read one.
    pub(super) fn plate(&self) -> Option<PlateIdentity> {
        self.tag
            .as_ref()
            .and_then(|t| t.registered)
            .or_else(|| self.plate.as_ref().and_then(|p| p.sighting.plate))
    }
}

/// A read that came before its vehicle, kept for the presence window.
#[derive(Debug, Clone)]
pub(super) struct Waiting {
    pub(super) sighting: PlateSighting,
    pub(super) record: PlateReadRecord,
    pub(super) until: Instant,
}

/// The vehicle that last left the presence loop: a read of its plate shortly after is a late
/// read of it, not a read for the next vehicle.
#[derive(Debug, Clone, Copy)]
pub(super) struct Departed {
    pub(super) plate: PlateIdentity,
    pub(super) at: Instant,
}

/// Registered and booked plates the camera may have meant by `text`: the text itself and every
/// variant with one or two characters swapped for a look-alike (what cameras get wrong; more
/// would suggest noise), looked up exactly in
/// the index (vehicles in any colour, bookings), ordered as the booth orders its suggestions
/// ([`suggest`]: exact before near). A bounded number of hash look-ups, whatever the index's
/// size: no scan of a million plates on the lane's thread.
pub(super) fn near_plates(index: &Index, text: &str, limit: usize) -> Vec<String> {
    let query: Vec<char> = normalise_query(text).chars().collect();
    if query.len() < 2 || query.len() > 10 {
        return Vec::new();
    }
    let mut found = BTreeSet::new();
    let mut look_up = |chars: &[char]| {
        let candidate: String = chars.iter().collect();
        let Ok(plate) = Plate::parse(&candidate) else {
            return;
        };
        let known = PlateColour::ALL.into_iter().any(|colour| {
            let id = plate.with_colour(colour);
            index.vehicle_by_plate(id).is_some() || index.bookings_for(id).next().is_some()
        });
        if known {
            found.insert(plate.as_str().to_string());
        }
    };
    look_up(&query);
    let swaps = |c: char| -> Vec<char> {
        LOOK_ALIKES
            .iter()
            .find(|class| class.contains(c))
            .map(|class| class.chars().filter(|&o| o != c).collect())
            .unwrap_or_default()
    };
    let positions: Vec<usize> = (0..query.len())
        .filter(|&i| !swaps(query[i]).is_empty())
        .collect();
    let mut variant = query.clone();
    for (n, &i) in positions.iter().enumerate() {
        for a in swaps(query[i]) {
            variant[i] = a;
            look_up(&variant);
            for &j in &positions[n + 1..] {
                for b in swaps(query[j]) {
                    variant[j] = b;
                    look_up(&variant);
                }
                variant[j] = query[j];
            }
        }
        variant[i] = query[i];
    }
    suggest(
        &query.iter().collect::<String>(),
        found.iter().map(String::as_str),
        limit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        BookingId, BookingStatus, PersonId, UtcMinute, Vehicle, VehicleId, VisitorBooking,
    };
    use crate::gate::index::IndexBuilder;

    fn plate(s: &str, colour: PlateColour) -> PlateIdentity {
        Plate::parse(s).unwrap().with_colour(colour)
    }

    fn sighting(text: &str, colour: Option<PlateColour>) -> PlateSighting {
        PlateSighting {
            camera: "cam".into(),
            event_id: "1".into(),
            plate_text: text.into(),
            plate: Plate::parse(text)
                .ok()
                .map(|p| p.with_colour(colour.unwrap_or(PlateColour::Blue))),
            colour,
            confidence: 95,
            min_confidence: 80,
            direction: None,
            photos: Vec::new(),
        }
    }

    #[test]
    fn a_tags_plate_matches_the_cameras_by_text_and_by_colour_when_the_camera_reports_one() {
        let registered = plate("京A12345", PlateColour::Blue);
        assert!(plates_match(registered, &sighting("京A12345", None)));
        assert!(plates_match(
            registered,
            &sighting("京A12345", Some(PlateColour::Blue))
        ));
        assert!(!plates_match(
            registered,
            &sighting("京A12345", Some(PlateColour::Yellow))
        ));
        assert!(!plates_match(registered, &sighting("京B54321", None)));
        // One character read as its look-alike is the camera's usual error, not another car;
        // one other character, or two look-alikes, is another car.
        assert!(plates_match(registered, &sighting("京A1234S", None)));
        assert!(!plates_match(registered, &sighting("京A12346", None)));
        assert!(!plates_match(registered, &sighting("京A1Z34S", None)));
        assert!(!plates_match(registered, &sighting("无牌", None)));
    }

    fn decision() -> DecisionRecord {
        DecisionRecord {
            direction: "entry".into(),
            credential: "tag".into(),
            epc: None,
            tid: None,
            antenna: None,
            rssi_dbm: None,
            plate: None,
            granted: true,
            reason: crate::domain::ReasonCode::Granted,
            flags: Vec::new(),
            permit_id: None,
            vehicle_id: None,
            holder: None,
            category: None,
            data_version: 1,
            decide_ns: 0,
            camera: None,
            pass: None,
        }
    }

    #[test]
    fn a_read_is_cross_checked_within_the_window_and_once_paired_whatever_the_window() {
        let t0 = Instant::now();
        let window = Duration::from_millis(5000);
        let mut reads = VehicleReads {
            tag: Some(TagSeen {
                registered: Some(plate("京A12345", PlateColour::Blue)),
                record: decision(),
                direction: Direction::Entry,
                at: t0,
            }),
            ..VehicleReads::default()
        };
        assert!(reads.tag_to_check(t0 + window, window).is_some());
        assert!(
            reads
                .tag_to_check(t0 + window + Duration::from_millis(1), window)
                .is_none(),
            "a plate read long after the tag is a read of its own"
        );
        assert!(reads.plate_to_check(t0, window).is_none(), "no plate yet");
        reads.plate = Some(PlateSeen {
            sighting: sighting("京B54321", None),
            granted: false,
            at: t0 + Duration::from_millis(100),
        });
        let late = t0 + Duration::from_secs(60);
        assert!(reads.plate_to_check(late, window).is_some(), "paired");
        assert!(reads.tag_to_check(late, window).is_some(), "paired");
        assert_eq!(reads.plate(), Some(plate("京A12345", PlateColour::Blue)));
    }

    #[test]
    fn near_plates_finds_registered_and_booked_plates_a_look_alike_or_two_away_and_nothing_else() {
        let mut b = IndexBuilder::new(1);
        b.vehicles = vec![
            Vehicle {
                id: VehicleId(1),
                plate: plate("京A8S0Z6", PlateColour::Blue),
                permit_ids: Vec::new().into(),
            },
            Vehicle {
                id: VehicleId(2),
                plate: plate("京A12345", PlateColour::Yellow),
                permit_ids: Vec::new().into(),
            },
        ];
        b.bookings = vec![VisitorBooking {
            id: BookingId(1),
            plate: Plate::parse("沪B00001").unwrap(),
            colour: None,
            visitor_name: "王先生".into(),
            slot_from: UtcMinute::MIN,
            slot_until: UtcMinute::MAX,
            status: BookingStatus::Approved,
            host: PersonId(1),
            purpose: "讲座".into(),
            pass_used_entry: false,
            pass_used_exit: false,
        }];
        let index = b.build().unwrap();
        // Two look-alikes misread (8→B, 6→G): found.
        assert_eq!(near_plates(&index, "京AB S0Z G", 8), vec!["京A8S0Z6"]);
        // Exact, any colour.
        assert_eq!(near_plates(&index, "京A12345", 8), vec!["京A12345"]);
        // A booking, O read for 0.
        assert_eq!(near_plates(&index, "沪B0OOO1", 8), Vec::<String>::new());
        assert_eq!(near_plates(&index, "沪B0O001", 8), vec!["沪B00001"]);
        // Three swaps away, or another plate altogether: nothing.
        assert!(near_plates(&index, "京AB5DZG", 8).is_empty());
        assert!(near_plates(&index, "粤C99999", 8).is_empty());
        assert!(near_plates(&index, "", 8).is_empty());
    }
}
