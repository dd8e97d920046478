//! Who may open which page: the roles of each area, named once and used by the pages' table
//! ([`super::PAGES`]), the side navigation and the header.
//!
//! What it never does: decide a request (that is [`crate::central::api::policy::admit`]).

use crate::central::api::auth::Role;
use crate::central::api::policy::Access;

use Role::{Admin, Applicant, Approver, Guard, Security, Viewer as ViewerRole};

/// The booth: guards, and the office and administrators who stand in for them.
pub const BOOTH: Access = Access::Roles(&[Admin, Security, Guard]);
/// The security office's pages, and its lists, gate modes, audit log and bulk import.
pub const OFFICE: Access = Access::Roles(&[Admin, Security]);
/// The overview: everyone the administration pages serve.
pub const HOME: Access = Access::Roles(&[Admin, Security, Approver, ViewerRole, Applicant]);
/// People, vehicles and permits: the security office keeps them; the administration reads.
pub const RECORDS: Access = Access::Roles(&[Admin, Security, ViewerRole]);
/// Exit-pass applications: the office, departments' approvers, applicants (their own).
pub const APPLY: Access = Access::Roles(&[Admin, Security, Approver, Applicant]);
/// Visitor bookings: the office and departments' approvers (their department's).
pub const BOOKINGS: Access = Access::Roles(&[Admin, Security, Approver]);
/// Operators and roles: administrators.
pub const ADMIN: Access = Access::Roles(&[Admin]);
/// Traffic statistics: the security office and the administration.
pub const STATS: Access = Access::Roles(&[Admin, Security, ViewerRole]);
