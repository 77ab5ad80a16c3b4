//! The domain error every layer speaks. Variants say what went wrong for the client; only
//! [`Error::Internal`] and [`Error::Unavailable`] carry causes, and those are logged by the
//! server, never serialized into a response.

/// Result alias used throughout authd.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in a domain operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource does not exist for this account. Deliberately the same for "absent" and
    /// "belongs to another tenant".
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the message is safe to show.
    #[error("{0}")]
    Conflict(String),
    /// The client sent something invalid; the message is safe to show.
    #[error("{0}")]
    Invalid(String),
    /// No credential, or one that matches nothing (including revoked tokens).
    #[error("Not authorized")]
    Unauthenticated,
    /// A credential that was valid but has expired.
    #[error("Expired Token")]
    Expired,
    /// Authenticated, but not allowed; the message is safe to show.
    #[error("{0}")]
    Forbidden(String),
    /// A dependency (the database) is unreachable or timed out. The cause is logged only.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or unexpected failure. The cause is logged only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// Shorthand for an [`Error::Invalid`] with a message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }

    /// Shorthand for an [`Error::Internal`] from any error.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }
}
