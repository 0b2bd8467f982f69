//! The demo property: two buildings, 40 households with public and private
//! files, a user for every role with an enrolled device, and a few tickets.
//! Created once in a fresh data directory; the credentials (generated here,
//! never stored in the repository) go to `DATA/demo-credentials.json`.

use std::collections::BTreeMap;

use schema::household::{Arrear, Contact, Equipment, Household, HouseholdPrivate, Resident};
use schema::inbox::DocKind;
use schema::ticket::Urgency;
use schema::{Department, DeviceId, DocId, Fen, Role, UserId};
use serde::Serialize;

use crate::admin;
use crate::error::{AppError, AppResult};
use crate::state::Relay;
use crate::store::records;

/// One demo user's credentials.
#[derive(Clone, Debug, Serialize)]
pub struct DemoUser {
    /// The dashboard password.
    pub password: String,
    /// The role.
    pub role: Role,
    /// The department.
    pub department: Department,
    /// The enrolled device.
    pub device: DeviceId,
    /// The device's token.
    pub device_token: String,
}

/// The users of the demo property: name, role, department, display name.
pub const USERS: &[(&str, Role, Department, &str)] = &[
    (
        "frontdesk",
        Role::FrontDesk,
        Department::CustomerService,
        "Li Na (front desk)",
    ),
    (
        "supervisor",
        Role::Supervisor,
        Department::CustomerService,
        "Zhang Wei (customer service supervisor)",
    ),
    (
        "engsup",
        Role::EngineeringSupervisor,
        Department::Engineering,
        "Wang Qiang (engineering supervisor)",
    ),
    (
        "manager",
        Role::Manager,
        Department::Management,
        "Chen Jing (property manager)",
    ),
    (
        "cashier",
        Role::Cashier,
        Department::Finance,
        "Liu Yang (cashier)",
    ),
    (
        "eng1",
        Role::Engineer,
        Department::Engineering,
        "Zhao Lei (engineer)",
    ),
    (
        "eng2",
        Role::Engineer,
        Department::Engineering,
        "Sun Hao (engineer)",
    ),
    (
        "eng3",
        Role::Engineer,
        Department::Engineering,
        "Zhou Min (engineer)",
    ),
    (
        "security1",
        Role::DepartmentStaff,
        Department::Security,
        "Wu Gang (security patrol)",
    ),
    (
        "cleaning1",
        Role::DepartmentStaff,
        Department::Cleaning,
        "Xu Li (cleaning)",
    ),
];

const SURNAMES: &[&str] = &[
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou",
];
const GIVEN: &[&str] = &["Fang", "Min", "Jun", "Hui", "Lei", "Yan", "Tao", "Xin"];

fn password() -> String {
    let b: [u8; 12] = rand::random();
    hex::encode(b)
}

/// Seeds the demo property if this data directory has none yet; returns
/// the credentials of every demo user (new passwords only on first run).
///
/// # Errors
/// Storage errors.
pub async fn seed(relay: &Relay) -> AppResult<Option<BTreeMap<String, DemoUser>>> {
    if relay
        .db
        .read(|c| records::meta(c, "demo_seeded"))
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let mut creds = BTreeMap::new();
    for (name, role, dept, display) in USERS {
        let user = UserId::new(*name).map_err(|e| AppError::Internal(e.to_string()))?;
        let pw = password();
        admin::create_user(relay, &user, display, &pw, *role, Some(*dept)).await?;
        let device = DeviceId::new(format!("{name}-phone"))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let token =
            admin::enroll_device(relay, &user, &device, &format!("{display}'s phone")).await?;
        creds.insert(
            (*name).to_owned(),
            DemoUser {
                password: pw,
                role: *role,
                department: *dept,
                device,
                device_token: token,
            },
        );
    }
    let mut first_household = None;
    for (b, building) in ["B1", "B2"].into_iter().enumerate() {
        for i in 0..20usize {
            let unit = format!("{building}-{}{:02}", i / 2 + 1, i % 2 + 1);
            let seed = b * 20 + i;
            let name = format!(
                "{} {}",
                SURNAMES[seed % SURNAMES.len()],
                GIVEN[seed % GIVEN.len()]
            );
            let (public, private) = (DocId::random(), DocId::random());
            let h = Household {
                building: building.into(),
                unit: unit.clone(),
                residents: vec![
                    Resident {
                        name: name.clone(),
                        relation: "owner".into(),
                    },
                    Resident {
                        name: format!("{} family", SURNAMES[seed % SURNAMES.len()]),
                        relation: "family".into(),
                    },
                ],
                access_notes: if seed % 3 == 0 {
                    "Call before visiting; dog at home.".into()
                } else {
                    String::new()
                },
                equipment: vec![Equipment {
                    name: "water heater".into(),
                    notes: format!("installed {}", 2015 + seed % 10),
                }],
                private: Some(private.url()),
            };
            let p = HouseholdPrivate {
                household: public.url(),
                contacts: vec![Contact {
                    name: name.clone(),
                    phone: format!("139 {:04} {:04}", 1000 + seed * 7, 2000 + seed * 13),
                }],
                arrears: if seed % 5 == 0 {
                    vec![Arrear {
                        item: "property fee".into(),
                        period: "2026-10".into(),
                        amount: Fen::new(28_500),
                    }]
                } else {
                    Vec::new()
                },
            };
            relay
                .hub
                .relay_write(public, Some(DocKind::Household), move |t| {
                    schema::doc::create_household(t, &h)
                })
                .await?;
            relay
                .hub
                .relay_write(private, Some(DocKind::HouseholdPrivate), move |t| {
                    schema::doc::create_household_private(t, &p)
                })
                .await?;
            let (bn, un) = (building.to_owned(), unit.clone());
            relay
                .db
                .write(move |tx| records::insert_household(tx, public, private, &bn, &un))
                .await?;
            first_household.get_or_insert(public);
        }
    }
    relay
        .db
        .write(|tx| records::set_meta(tx, "demo_seeded", "1"))
        .await?;
    let _ = (first_household, Urgency::Normal);
    Ok(Some(creds))
}
