//! The service layer: one module per resource, each owning that resource's rules.
//!
//! A handler (`crate::api`) extracts what the request carries (the caller with its
//! permission, parsed path and body), makes one call here, and maps the result to a DTO. A
//! service decides everything else: which records a caller may touch beyond the store's
//! account scoping, what a change implies (the delete cascade, cache evictions, sealing),
//! the audit entries that commit with it, and the refusals it audits. Services speak
//! [`authd_core::Error`]; the API maps it to the Lytics envelope.
//!
//! Tokens and settings have their services beside this module (`crate::tokens`,
//! `crate::settings`): they also serve the operator CLI and the authentication extractor.

pub mod accounts;
pub mod audit;
pub mod auths;
pub mod entities;
pub mod providers;
pub mod users;
pub mod works;
