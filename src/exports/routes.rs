//! `GET /.well-known/aseptic/export-key`: the public key that signs this installation's exports.

use actix_web::{get, web, HttpResponse};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::state::AppState;

pub fn well_known(cfg: &mut ServiceConfig) {
    cfg.service(export_key);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportKeyView {
    /// Always `Ed25519`.
    pub algorithm: String,
    /// SubjectPublicKeyInfo PEM, for `openssl pkeyutl -verify -pubin`.
    pub public_key_pem: String,
    /// The raw 32-byte public key, base64.
    pub public_key: String,
    /// SHA-256 of the raw public key, hex; printed on every export's report.
    pub fingerprint_sha256: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// `pem` for the bare PEM file.
    pub format: Option<String>,
}

/// The public key that signs this installation's audit exports. Anyone may fetch it: an
/// inspector checks an export's signature against it.
#[utoipa::path(tag = "exports", params(KeyQuery),
    responses((status = 200, body = ExportKeyView),
        (status = 200, content_type = "application/x-pem-file", body = String, description = "With `format=pem`")))]
#[get("/.well-known/aseptic/export-key")]
async fn export_key(state: web::Data<AppState>, query: web::Query<KeyQuery>) -> HttpResponse {
    let key = &state.export_key;
    if query.format.as_deref() == Some("pem") {
        return HttpResponse::Ok()
            .content_type("application/x-pem-file")
            .body(key.public_pem());
    }
    HttpResponse::Ok().json(ExportKeyView {
        algorithm: "Ed25519".into(),
        public_key_pem: key.public_pem(),
        public_key: base64::engine::general_purpose::STANDARD
            .encode(key.verifying_key().as_bytes()),
        fingerprint_sha256: key.fingerprint(),
    })
}
