//! Typed constructors for each role's actions: `(Action, EventData)` pairs to
//! hand to [`Device::act`](crate::Device::act), so callers name what a step
//! needs instead of filling an open struct. The rules themselves (who may do
//! what, which data is required) live in `schema::lifecycle`, not here.

use schema::ticket::{ContactResult, Material, Satisfaction};
use schema::{Action, Department, EventData, UserId};

/// An action and its data.
pub type Step = (Action, EventData);

fn bare(action: Action) -> Step {
    (action, EventData::default())
}

/// Engineer: accept an assigned order (接单); department staff: take a routed matter in hand.
pub fn accept() -> Step {
    bare(Action::Accept)
}

/// Engineer: arrive and start (到场/开工).
pub fn start() -> Step {
    bare(Action::Start)
}

/// Engineer or department: pause, with the reason.
pub fn hold(reason: &str) -> Step {
    (
        Action::Hold,
        EventData {
            reason: Some(reason.to_owned()),
            ..EventData::default()
        },
    )
}

/// Resume after a hold.
pub fn resume() -> Step {
    bare(Action::Resume)
}

/// What a completion records.
#[derive(Clone, Debug, Default)]
pub struct Completion {
    /// What was done.
    pub result: String,
    /// Labour in minutes.
    pub labour_min: i64,
    /// Materials used (may be empty, but is always stated).
    pub materials: Vec<Material>,
    /// SHA-256 of photos already in the store.
    pub photos: Vec<String>,
    /// For paid work, the quoted amount.
    pub quote_fen: Option<schema::Fen>,
    /// The resident's signature reference.
    pub signature: Option<String>,
    /// Resident absent (a witness signs instead).
    pub resident_absent: Option<bool>,
    /// The witness.
    pub witness: Option<String>,
}

/// Engineer: work done (完工).
pub fn complete(c: Completion) -> Step {
    (
        Action::Complete,
        EventData {
            result: Some(c.result),
            labour_min: Some(c.labour_min),
            materials: Some(c.materials),
            photos: c.photos,
            quote_fen: c.quote_fen,
            signature: c.signature,
            resident_absent: c.resident_absent,
            witness: c.witness,
            ..EventData::default()
        },
    )
}

/// Engineer: hand the order back (退单), with the reason.
pub fn hand_back(reason: &str) -> Step {
    (
        Action::HandBack,
        EventData {
            reason: Some(reason.to_owned()),
            ..EventData::default()
        },
    )
}

/// Engineer: cannot fix (无法修复), with the reason.
pub fn cannot_fix(reason: &str) -> Step {
    (
        Action::CannotFix,
        EventData {
            reason: Some(reason.to_owned()),
            ..EventData::default()
        },
    )
}

/// Engineer: grab an order for oneself (抢单).
pub fn grab(me: &UserId) -> Step {
    (
        Action::Grab,
        EventData {
            assignee: Some(me.clone()),
            ..EventData::default()
        },
    )
}

/// Department staff: reply to a routed matter (反馈).
pub fn reply(result: &str, photos: Vec<String>) -> Step {
    (
        Action::Reply,
        EventData {
            result: Some(result.to_owned()),
            photos,
            ..EventData::default()
        },
    )
}

/// Supervisor or dispatcher: assign an order.
pub fn assign(engineer: &UserId) -> Step {
    (
        Action::Assign,
        EventData {
            assignee: Some(engineer.clone()),
            ..EventData::default()
        },
    )
}

/// Engineering supervisor: transfer to another engineer, with the reason.
pub fn transfer(engineer: &UserId, reason: &str) -> Step {
    (
        Action::Transfer,
        EventData {
            assignee: Some(engineer.clone()),
            reason: Some(reason.to_owned()),
            ..EventData::default()
        },
    )
}

/// Front desk: route a matter to a department.
pub fn route(department: Department) -> Step {
    (
        Action::Route,
        EventData {
            department: Some(department),
            ..EventData::default()
        },
    )
}

/// Front desk: the return visit.
pub fn return_visit(contact: ContactResult, satisfaction: Option<Satisfaction>) -> Step {
    (
        Action::ReturnVisit,
        EventData {
            contact_result: Some(contact),
            satisfaction,
            ..EventData::default()
        },
    )
}
