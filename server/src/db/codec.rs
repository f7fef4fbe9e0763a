//! How values are stored: ids as UUID text (times are in `crate::clock`, roles in `store::users`).

use uuid::Uuid;

use crate::error::ApiError;

/// An id read back from the database; a malformed one is a fault of the stored data, not the caller.
pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("bad id `{raw}` in the database: {e}")))
}
