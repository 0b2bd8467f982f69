//! Roles, departments and the principal who performs an action.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, UserId};

/// A staff role (DOMAIN.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// REC: front desk / reception commissioner; records contacts, issues orders, return visits.
    FrontDesk,
    /// CSS: customer-service supervisor; daily checks, weekly summary, voids after dispatch.
    Supervisor,
    /// DSP: dispatcher.
    Dispatcher,
    /// ENG: engineer or technician, the offline device user.
    Engineer,
    /// ES: engineering supervisor; reassigns, decides unfixable or outsourced work.
    EngineeringSupervisor,
    /// DH: department staff (security, cleaning, greening) handling routed matters.
    DepartmentStaff,
    /// CASH: cashier; income and costs.
    Cashier,
    /// MGR: manager; escalations, overrides.
    Manager,
    /// SYS: the relay's own timers and automatic steps.
    System,
}

impl Role {
    /// Every role, in table order.
    pub const ALL: [Role; 9] = [
        Role::FrontDesk,
        Role::Supervisor,
        Role::Dispatcher,
        Role::Engineer,
        Role::EngineeringSupervisor,
        Role::DepartmentStaff,
        Role::Cashier,
        Role::Manager,
        Role::System,
    ];

    /// The wire and storage name (`front_desk`, `engineer`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::FrontDesk => "front_desk",
            Role::Supervisor => "supervisor",
            Role::Dispatcher => "dispatcher",
            Role::Engineer => "engineer",
            Role::EngineeringSupervisor => "engineering_supervisor",
            Role::DepartmentStaff => "department_staff",
            Role::Cashier => "cashier",
            Role::Manager => "manager",
            Role::System => "system",
        }
    }

    /// The short code DOMAIN.md uses (REC, CSS, …).
    pub fn code(self) -> &'static str {
        match self {
            Role::FrontDesk => "REC",
            Role::Supervisor => "CSS",
            Role::Dispatcher => "DSP",
            Role::Engineer => "ENG",
            Role::EngineeringSupervisor => "ES",
            Role::DepartmentStaff => "DH",
            Role::Cashier => "CASH",
            Role::Manager => "MGR",
            Role::System => "SYS",
        }
    }

    /// The department a person of this role belongs to by default.
    pub fn default_department(self) -> Department {
        match self {
            Role::FrontDesk | Role::Supervisor => Department::CustomerService,
            Role::Dispatcher | Role::Engineer | Role::EngineeringSupervisor => {
                Department::Engineering
            }
            Role::DepartmentStaff => Department::Security,
            Role::Cashier => Department::Finance,
            Role::Manager | Role::System => Department::Management,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s || r.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownName::new("role", s))
    }
}

/// A department of the management office.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Department {
    /// The customer service department (the front desk and its supervisor).
    CustomerService,
    /// Engineering: repairs.
    Engineering,
    /// Security patrols.
    Security,
    /// Cleaning.
    Cleaning,
    /// Greening (gardens and green areas).
    Greening,
    /// Finance: the cashier.
    Finance,
    /// The management office itself.
    Management,
}

impl Department {
    /// Every department.
    pub const ALL: [Department; 7] = [
        Department::CustomerService,
        Department::Engineering,
        Department::Security,
        Department::Cleaning,
        Department::Greening,
        Department::Finance,
        Department::Management,
    ];

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Department::CustomerService => "customer_service",
            Department::Engineering => "engineering",
            Department::Security => "security",
            Department::Cleaning => "cleaning",
            Department::Greening => "greening",
            Department::Finance => "finance",
            Department::Management => "management",
        }
    }
}

impl fmt::Display for Department {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Department {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Department::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownName::new("department", s))
    }
}

/// A name that is not one of a closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {name:?}")]
pub struct UnknownName {
    what: &'static str,
    name: String,
}

impl UnknownName {
    pub(crate) fn new(what: &'static str, name: &str) -> Self {
        Self {
            what,
            name: name.chars().take(40).collect(),
        }
    }
}

/// Who performs an action: the authenticated user on an enrolled device.
///
/// On the relay this comes from the device's actor binding, never from what a
/// change claims about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user.
    pub user: UserId,
    /// The user's role.
    pub role: Role,
    /// The user's department.
    pub department: Department,
    /// The device acting for the user.
    pub device: DeviceId,
}

impl Principal {
    /// A principal in the role's default department.
    pub fn new(user: UserId, role: Role, device: DeviceId) -> Self {
        Self {
            user,
            role,
            department: role.default_department(),
            device,
        }
    }

    /// The same principal in another department (department staff).
    #[must_use]
    pub fn in_department(mut self, department: Department) -> Self {
        self.department = department;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_departments_round_trip_their_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(r.code().parse::<Role>(), Ok(r));
        }
        for d in Department::ALL {
            assert_eq!(d.as_str().parse::<Department>(), Ok(d));
        }
        assert!("janitor".parse::<Role>().is_err());
    }
}
