//! The admin key: `Authorization: Bearer <ADMIN_KEY>`, which the admin routes
//! (`GET /v1/dead-letters`, `/v1/redrive`) and `GET /healthz`'s figures ask
//! for. Without `ADMIN_KEY` the admin routes are off (404).

use edgehose_shared::api::Reply;
use edgehose_shared::sigv4::verify::constant_time_eq;
use serde_json::json;

use crate::config::{AdminKey, EdgeConfig};

/// Whether a request may use the admin routes: `Authorization: Bearer <ADMIN_KEY>`.
pub(super) fn check(config: &EdgeConfig, authorization: Option<&str>) -> Result<(), Reply> {
    let refuse = |status, body: serde_json::Value| Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    };
    let Some(admin) = config.admin_key.as_ref().map(AdminKey::expose) else {
        return Err(refuse(
            404,
            json!({"error": "not_found", "code": "not_found", "message": "redrive is off: set the ADMIN_KEY secret to turn it on"}),
        ));
    };
    let presented = authorization.and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
    if constant_time_eq(presented.as_bytes(), admin.as_bytes()) {
        Ok(())
    } else {
        Err(refuse(
            401,
            json!({"error": "invalid_key", "code": "invalid_key", "message": "redrive needs Authorization: Bearer <ADMIN_KEY>"}),
        ))
    }
}
