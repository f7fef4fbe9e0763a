//! The Homeward domain: validated types, the session and alert state machines, the escalation-plan model and the
//! API's wire types. Light dependencies so that it compiles for the phone (wasm32) as well as the server.

pub mod alert;
pub mod api;
#[cfg(feature = "client")]
pub mod client;
pub mod email;
pub mod error;
pub mod escalation;
pub mod geometry;
pub mod location;
pub mod phone;
pub mod pupil;
pub mod risk;
pub mod role;
pub mod rota;
pub mod session;
pub mod session_kind;
pub mod timing;

pub use email::Email;
pub use error::{ErrorBody, FieldError};
pub use escalation::{EscalationPlan, EscalationStep, Recipient};
pub use location::{Coordinates, GeofenceRadius};
pub use phone::PhoneNumber;
pub use pupil::PupilReference;
pub use risk::{RiskAssessment, RiskFactor, RiskLevel, RiskRating};
pub use role::Role;
pub use rota::OnCallRota;
pub use session_kind::{HomeVisitKind, SessionKind};
pub use timing::{CheckInInterval, ExtendMinutes, VisitDuration};

/// Every instant in Homeward is UTC; the phone shows local time.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
