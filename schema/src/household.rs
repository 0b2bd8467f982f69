//! Household files ("one household, one file", 一户一档).
//!
//! Each household has a public document (synced to the engineers who work
//! there) and a private one (phones, fee arrears) synced only to the front
//! desk, supervisors, cashiers and managers, because Automerge syncs whole
//! documents.

use serde::{Deserialize, Serialize};

use crate::ids::DocUrl;
use crate::money::Fen;

/// A person living in the household.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resident {
    /// Name.
    pub name: String,
    /// Owner, tenant, family member.
    pub relation: String,
}

/// A piece of equipment in the unit (water heater, AC, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equipment {
    /// What it is.
    pub name: String,
    /// Model, age, warranty.
    pub notes: String,
}

/// The public household file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Household {
    /// Building, e.g. `B1`.
    pub building: String,
    /// Unit, e.g. `B1-1203`.
    pub unit: String,
    /// Who lives there.
    pub residents: Vec<Resident>,
    /// How to get in, pets, times to avoid.
    pub access_notes: String,
    /// Equipment.
    pub equipment: Vec<Equipment>,
    /// The private file, for those allowed to see it.
    pub private: Option<DocUrl>,
}

/// A phone contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Whose number.
    pub name: String,
    /// The number.
    pub phone: String,
}

/// An unpaid fee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrear {
    /// Fee item (property fee, parking).
    pub item: String,
    /// Period, e.g. `2026-10`.
    pub period: String,
    /// Amount owed.
    pub amount: Fen,
}

/// The private household file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdPrivate {
    /// The public file it belongs to.
    pub household: DocUrl,
    /// Phone numbers.
    pub contacts: Vec<Contact>,
    /// Fee arrears.
    pub arrears: Vec<Arrear>,
}
