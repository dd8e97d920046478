//! The demo's data: a campus with departments, about 500 people, 600 vehicles with Chinese
//! plates and tags, permits of every category, a few blacklisted and locked vehicles, pending
//! and approved visitor bookings, two gates with their lanes, and an operator for every role.
//!
//! [`plan`] is deterministic (a fixed-seed generator), so a second run knows which tag belongs
//! to which kind of vehicle without storing it; [`seed`] writes the plan through the central
//! repositories, exactly as the admin API would (audit and change log included).
//!
//! What it never does: write a gate's store (the gates' sync does), or invent data
//! a real site could not have (every plate, EPC and permit passes the same validation).

use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::central::db::{Actor, Db};
use crate::central::repo::{
    blacklist, bookings, credentials, gates, locks, operators, permits, persons, vehicles,
};
use crate::domain::{AlarmLevel, Plate, PlateColour};
use crate::password::hash_password_blocking;

/// The north gate's number (entry and exit lanes).
pub const NORTH: i64 = 1;
/// The south gate's number (one two-way lane).
pub const SOUTH: i64 = 2;

/// How a demo vehicle is expected to fare at the gates; the traffic picks vehicles by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An active permit for every gate and direction.
    Regular,
    /// A registered, tagged vehicle without a permit.
    NoPermit,
    /// Its only permit ended last month.
    Expired,
    /// A permit for the north gate only.
    NorthOnly,
    /// A permit for exits only (the exit-pass rule: it may leave, not enter).
    ExitOnly,
    /// The plate is on the blacklist.
    Blacklisted,
    /// The plate is on the lock-vehicle list: it may enter, not leave.
    Locked,
}

/// One demo vehicle.
#[derive(Debug, Clone)]
pub struct DemoVehicle {
    pub plate: String,
    /// The tag's EPC, upper-case hex (12 bytes).
    pub epc: String,
    pub kind: Kind,
}

/// One visitor booking's plate and whether it is approved.
#[derive(Debug, Clone)]
pub struct DemoVisitor {
    pub plate: String,
    pub approved: bool,
}

/// A demo login.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: &'static str,
    pub password: &'static str,
    pub role: &'static str,
    pub display_name: &'static str,
}

/// The operators, one per role. Demo passwords: printed on purpose, never for a real site.
pub const LOGINS: [Login; 6] = [
    Login {
        username: "admin",
        password: "Demo-admin-2026",
        role: "admin",
        display_name: "系统管理员 Administrator",
    },
    Login {
        username: "security",
        password: "Demo-security-2026",
        role: "security",
        display_name: "保卫处 王科长",
    },
    Login {
        username: "guard",
        password: "Demo-guard-2026",
        role: "guard",
        display_name: "门卫 李师傅",
    },
    Login {
        username: "approver",
        password: "Demo-approver-2026",
        role: "approver",
        display_name: "计算机学院 审批人",
    },
    Login {
        username: "viewer",
        password: "Demo-viewer-2026",
        role: "viewer",
        display_name: "校办 查看",
    },
    Login {
        username: "staff",
        password: "Demo-staff-2026",
        role: "applicant",
        display_name: "计算机学院 教职工（申请人）",
    },
];

/// The whole plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub people: Vec<(String, &'static str, &'static str)>,
    pub vehicles: Vec<DemoVehicle>,
    pub visitors: Vec<DemoVisitor>,
}

const DEPARTMENTS: [&str; 12] = [
    "计算机学院",
    "物理学院",
    "化学学院",
    "数学科学学院",
    "经济管理学院",
    "外国语学院",
    "医学院",
    "图书馆",
    "后勤处",
    "保卫处",
    "校办",
    "附属中学",
];
const SURNAMES: &str =
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕";
const GIVEN: &str = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国志红云飞宇浩然子轩";
const PROVINCES: [&str; 8] = ["京", "津", "冀", "沪", "苏", "浙", "鲁", "粤"];
/// Letters used on plates (I and O are not).
const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

/// SplitMix64: a small deterministic generator, enough for demo data.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn plate(rng: &mut Rng, n: usize) -> String {
    let province = PROVINCES[n % PROVINCES.len()];
    let letter = LETTERS[rng.below(LETTERS.len())] as char;
    // The serial number makes every plate unique; the letter and province vary the look.
    format!("{province}{letter}{:05}", 10_000 + n * 7 % 90_000)
}

/// The demo data plan (deterministic).
pub fn plan() -> Plan {
    let mut rng = Rng(0x6761_7465_686F_7573);
    let surnames: Vec<char> = SURNAMES.chars().collect();
    let given: Vec<char> = GIVEN.chars().collect();
    let categories = [
        ("staff", 50),
        ("student", 25),
        ("family", 10),
        ("contractor", 8),
        ("official", 7),
    ];
    let mut people = Vec::new();
    for i in 0..500 {
        let mut name = String::new();
        name.push(*rng.pick(&surnames));
        name.push(*rng.pick(&given));
        if rng.below(2) == 0 {
            name.push(*rng.pick(&given));
        }
        let mut roll = rng.below(100);
        let category = categories
            .iter()
            .find(|(_, share)| {
                let hit = roll < *share;
                roll = roll.saturating_sub(*share);
                hit
            })
            .map_or("staff", |(c, _)| *c);
        people.push((name, category, DEPARTMENTS[i % DEPARTMENTS.len()]));
    }
    let mut vehicles = Vec::new();
    for n in 0..600 {
        let kind = match n % 40 {
            1 => Kind::NoPermit,
            2 | 22 => Kind::Expired,
            3 | 23 => Kind::NorthOnly,
            4 => Kind::ExitOnly,
            5 if n < 200 => Kind::Blacklisted,
            6 if n < 200 => Kind::Locked,
            _ => Kind::Regular,
        };
        vehicles.push(DemoVehicle {
            plate: plate(&mut rng, n),
            epc: format!("E2801160600002{:010X}", 0x4000_0000_u64 + n as u64),
            kind,
        });
    }
    let visitors = (0..12)
        .map(|i| DemoVisitor {
            plate: format!(
                "{}{}{:05}",
                PROVINCES[i % PROVINCES.len()],
                "F",
                60_000 + i * 13
            ),
            approved: i % 3 != 2,
        })
        .collect();
    Plan {
        people,
        vehicles,
        visitors,
    }
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::minutes(1)).unwrap_or(t)
}

/// Writes the plan through the central repositories. Takes a few seconds (one transaction per
/// row, each with its audit and change-log entries, as the API writes them).
pub async fn seed(db: &Db, plan: &Plan) -> anyhow::Result<()> {
    let actor = Actor::system();
    let now = minute(Utc::now());
    // Gates and lanes: north (1) with an entry and an exit lane, south (2) with a two-way lane.
    for (name, lanes) in [
        (
            "北门 North gate",
            vec![
                ("entry", "入口 Entry", "entry"),
                ("exit", "出口 Exit", "exit"),
            ],
        ),
        ("南门 South gate", vec![("both", "双向 Two-way", "two_way")]),
    ] {
        let gate = gates::create(
            db,
            &actor,
            gates::NewGate {
                name: name.into(),
                name_en: String::new(),
                anti_passback: "hard".into(),
                offline_policy: gates::OFFLINE_POLICIES[0].into(),
                enabled: true,
            },
        )
        .await?;
        for (key, lane_name, direction) in lanes {
            gates::create_lane(
                db,
                &actor,
                gate.id,
                gates::NewLane {
                    lane_key: key.into(),
                    name: lane_name.into(),
                    name_en: String::new(),
                    direction: direction.into(),
                    mode: "normal".into(),
                    settings: serde_json::Map::new(),
                },
            )
            .await?;
        }
    }
    let mut person_ids = Vec::with_capacity(plan.people.len());
    for (n, (name, category, department)) in plan.people.iter().enumerate() {
        // Staff and student numbers as the university's systems give them: how a visitor
        // names their host on the self-booking page.
        let staff_no = match *category {
            "staff" => format!("T{}", 200_001 + n),
            "student" => format!("{}", 2_024_000_001 + n),
            _ => String::new(),
        };
        let person = persons::create(
            db,
            &actor,
            persons::NewPerson {
                name: name.clone(),
                category: (*category).into(),
                department: (*department).into(),
                phone: String::new(),
                id_card: String::new(),
                staff_no,
                email: String::new(),
            },
        )
        .await?;
        person_ids.push((person.id, *category));
    }
    for (n, v) in plan.vehicles.iter().enumerate() {
        let (owner, category) = person_ids[n % person_ids.len()];
        let vehicle = vehicles::create(
            db,
            &actor,
            vehicles::NewVehicle {
                plate: v.plate.clone(),
                plate_colour: "blue".into(),
                vehicle_type: "car".into(),
                owner_id: owner,
                note: String::new(),
            },
        )
        .await?;
        credentials::create(
            db,
            &actor,
            credentials::NewCredential {
                epc: v.epc.clone(),
                tid: None,
                vehicle_id: vehicle.id,
                status: "active".into(),
            },
        )
        .await?;
        let year = Duration::days(365);
        let (from, until, gates) = match v.kind {
            Kind::NoPermit => continue,
            Kind::Expired => (now - year, now - Duration::days(30), "all"),
            Kind::NorthOnly => (now - Duration::days(30), now + year, "1"),
            Kind::ExitOnly => (now - Duration::days(30), now + year, "all:exit"),
            _ => (now - Duration::days(30), now + year, "all"),
        };
        permits::create(
            db,
            &actor,
            &permits::PermitInput {
                category: category.into(),
                holder_id: owner,
                valid_from: from,
                valid_until: until,
                gates: gates.into(),
                schedule: String::new(),
                single_use: false,
                max_inside: None,
                vehicle_ids: vec![vehicle.id],
            },
        )
        .await?;
        let parsed = Plate::parse(&v.plate).map_err(|e| anyhow::anyhow!("{}: {e}", v.plate))?;
        match v.kind {
            Kind::Blacklisted => {
                blacklist::create(
                    db,
                    &actor,
                    blacklist::NewBlacklistEntry {
                        subject: blacklist::Subject::Plate {
                            plate: parsed,
                            colour: None,
                        },
                        reason: "多次强行闯杆 Repeatedly forced the barrier".into(),
                        alarm_level: AlarmLevel::Guard,
                        valid_from_ms: (now - Duration::days(1)).timestamp_millis(),
                        valid_until_ms: None,
                    },
                )
                .await?;
            }
            Kind::Locked => {
                locks::create(
                    db,
                    &actor,
                    locks::NewVehicleLock {
                        plate: parsed,
                        colour: Some(PlateColour::Blue),
                        reason: "车主申请锁车 Locked at the owner's request".into(),
                        valid_from_ms: (now - Duration::days(1)).timestamp_millis(),
                        valid_until_ms: None,
                    },
                )
                .await?;
            }
            _ => {}
        }
    }
    for (i, visitor) in plan.visitors.iter().enumerate() {
        let (host, _) = person_ids[i * 7 % person_ids.len()];
        let booking = bookings::create(
            db,
            &actor,
            &bookings::NewBooking {
                host_id: host,
                department: DEPARTMENTS[i % DEPARTMENTS.len()].into(),
                purpose: "学术交流 Academic visit".into(),
                plate: visitor.plate.clone(),
                plate_colour: None,
                driver_name: format!("访客{}", i + 1),
                driver_phone: format!("1381234{:04}", i),
                slot_from: now - Duration::hours(2),
                slot_until: now + Duration::days(30),
                walk_in: false,
            },
        )
        .await?;
        if visitor.approved {
            bookings::transition(db, &actor, booking.id, bookings::Transition::Approve)
                .await
                .map_err(|e| anyhow::anyhow!("approving a demo booking: {e}"))?;
        }
    }
    for login in &LOGINS {
        let password = login.password.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await?;
        let op = operators::create(
            db,
            &actor,
            operators::NewOperator {
                username: login.username.into(),
                display_name: login.display_name.into(),
                password_hash: hash,
                roles: vec![login.role.into()],
                gates: if login.role == "guard" {
                    vec![NORTH, SOUTH]
                } else {
                    vec![]
                },
                department: if login.role == "approver" {
                    DEPARTMENTS[0].into()
                } else {
                    String::new()
                },
            },
        )
        .await?;
        if login.role == "applicant" {
            // The applicant is a staff member of the approver's department who owns a car.
            let person: i64 = sqlx::query_scalar(
                "SELECT p.id FROM persons p JOIN vehicles v ON v.owner_id = p.id \
                 WHERE p.department = $1 AND p.category = 'staff' ORDER BY p.id LIMIT 1",
            )
            .bind(DEPARTMENTS[0])
            .fetch_one(db.pool())
            .await?;
            operators::link_person(db, &actor, op.id, person).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_deterministic_valid_and_has_every_kind() {
        let a = plan();
        let b = plan();
        assert_eq!(a.vehicles.len(), 600);
        assert_eq!(a.people.len(), 500);
        for (x, y) in a.vehicles.iter().zip(&b.vehicles) {
            assert_eq!((&x.plate, &x.epc), (&y.plate, &y.epc));
        }
        let plates: std::collections::HashSet<_> = a.vehicles.iter().map(|v| &v.plate).collect();
        assert_eq!(plates.len(), 600, "plates are unique");
        for v in &a.vehicles {
            Plate::parse(&v.plate).unwrap_or_else(|e| panic!("{}: {e}", v.plate));
            crate::domain::Epc::from_hex(&v.epc).unwrap();
        }
        for kind in [
            Kind::Regular,
            Kind::NoPermit,
            Kind::Expired,
            Kind::NorthOnly,
            Kind::ExitOnly,
            Kind::Blacklisted,
            Kind::Locked,
        ] {
            assert!(a.vehicles.iter().any(|v| v.kind == kind), "{kind:?}");
        }
    }
}
