//! `GET /.well-known/aseptic/export-key`: the public key that signs this installation's exports.

use actix_web::http::header;
use actix_web::{get, post, web, HttpResponse};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Forbidden, NotFound};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidJson;
use crate::api::ValidQuery;
use crate::db;
use crate::error::{AppError, AppResult, Problem};
use crate::exports::usecases::{self, ExportInput, ExportView};

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
    responses((status = 200, description = "The key as JSON, or with `format=pem` the bare PEM file",
        content((ExportKeyView = "application/json"), (String = "application/x-pem-file")))))]
#[get("/.well-known/aseptic/export-key")]
async fn export_key(
    state: web::Data<AppState>,
    query: ValidQuery<KeyQuery>,
) -> AppResult<HttpResponse> {
    let query = query.into_inner()?;
    let key = &state.export_key;
    if query.format.as_deref() == Some("pem") {
        return Ok(HttpResponse::Ok()
            .content_type("application/x-pem-file")
            .body(key.public_pem()));
    }
    Ok(HttpResponse::Ok().json(ExportKeyView {
        algorithm: "Ed25519".into(),
        public_key_pem: key.public_pem(),
        public_key: base64::engine::general_purpose::STANDARD
            .encode(key.verifying_key().as_bytes()),
        fingerprint_sha256: key.fingerprint(),
    }))
}

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_exports)
        .service(request_export)
        .service(get_export)
        .service(download_export);
}

/// The clinic's exports, newest first (owners and inspectors).
#[utoipa::path(tag = "exports", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses((status = 200, body = Vec<ExportView>), Forbidden, NotFound))]
#[get("/exports")]
async fn list_exports(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<Vec<ExportView>>> {
    access.require_owner_or_inspector()?;
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| usecases::list(conn, &clinic)).await?,
    ))
}

/// Start an export of a period (owners, and inspectors while their grant runs; the request is
/// theirs in the audit chain). Give the period as a clinic-local `month` (YYYY-MM), ISO `week`
/// (YYYY-Www), `first_day` and `last_day`, or `from` and `to`. It is built in the background:
/// poll `GET .../exports/{id}` until `ready`, then download it.
#[utoipa::path(tag = "exports", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    request_body = ExportInput,
    responses((status = 202, body = ExportView),
        Forbidden,
        (status = 422, body = Problem, content_type = "application/problem+json", description = "The period ends before it starts, lies in the future, or is longer than the retention")))]
#[post("/exports")]
async fn request_export(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<ExportInput>,
) -> AppResult<HttpResponse> {
    // An inspector with a running grant may ask for a period too; the request is theirs in the
    // audit chain.
    access.require_owner_or_inspector()?;
    let requested = request_and_build(&state, &access, body.into_inner()?).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("exports/{}", requested.id)))
        .json(requested))
}

/// An export's state: building, ready (with its SHA-256) or failed.
#[utoipa::path(tag = "exports", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Export id")),
    responses((status = 200, body = ExportView), NotFound))]
#[get("/exports/{id}")]
async fn get_export(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<ExportView>> {
    access.require_owner_or_inspector()?;
    let (clinic, id) = (access.clinic_id.clone(), path.into_inner().1);
    Ok(web::Json(
        db::run(&state.pool, move |conn| usecases::get(conn, &clinic, &id)).await?,
    ))
}

/// The export's zip: CSVs, the chain segment, and the signed manifest. Streamed from disk.
#[utoipa::path(tag = "exports", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Export id")),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>),
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Not built (yet)")))]
#[get("/exports/{id}/download")]
async fn download_export(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    access.require_owner_or_inspector()?;
    let (clinic, id) = (access.clinic_id.clone(), path.into_inner().1);
    let view = {
        let (clinic, id) = (clinic.clone(), id.clone());
        db::run(&state.pool, move |conn| usecases::get(conn, &clinic, &id)).await?
    };
    if view.state != usecases::ExportState::Ready {
        return Err(AppError::Conflict(format!(
            "the export is {}: download it once it is ready",
            if view.state == usecases::ExportState::Building {
                "still being built"
            } else {
                "failed"
            }
        )));
    }
    zip_response(&state, &clinic, &id, &view)
}

/// Records an export request and builds it off the request once the request has committed: the
/// answer comes at once, whatever the period's size. The API and the pages ask through here.
pub async fn request_and_build(
    state: &AppState,
    access: &ClinicAccess,
    input: ExportInput,
) -> AppResult<usecases::ExportView> {
    let (ctx, clinic, profiles) = (
        access.audit_context(),
        access.clinic_id.clone(),
        state.profiles.clone(),
    );
    let requested = {
        let clinic = clinic.clone();
        db::run(&state.pool, move |conn| {
            usecases::request(conn, &profiles, &ctx, &clinic, &input)
        })
        .await?
    };
    let (id, pool, key, dir, profiles) = (
        requested.id.clone(),
        state.pool.clone(),
        state.export_key.clone(),
        state.settings.exports.dir.clone(),
        state.profiles.clone(),
    );
    // Built off the request: the answer comes at once, whatever the period's size. The build
    // reads the request's records on its own connection, so it starts once they are committed.
    db::after_commit(move || {
        actix_web::rt::spawn(async move {
            let built = db::run_unbounded(&pool, move |conn| {
                usecases::build(conn, &profiles, &key, &dir, &clinic, &id)
            })
            .await;
            if let Err(e) = built {
                tracing::error!(error = %e, "export build could not be recorded");
            }
        });
    });
    Ok(requested)
}

/// A ready export's zip, streamed from disk in chunks: memory stays flat whatever its size.
pub fn zip_response(
    state: &AppState,
    clinic: &str,
    id: &str,
    view: &usecases::ExportView,
) -> AppResult<HttpResponse> {
    let file = std::fs::File::open(usecases::file_path(&state.settings.exports.dir, clinic, id))
        .map_err(|_| AppError::Conflict("the export's file is gone: request it again".into()))?;
    let size = u64::try_from(view.bytes.unwrap_or(0)).unwrap_or(0);
    // Read in chunks on the blocking pool: memory stays flat whatever the file's size.
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let chunk = web::block(move || {
            use std::io::Read;
            let mut buf = vec![0u8; 64 * 1024];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((buf, file))
        })
        .await;
        match chunk {
            Ok(Ok((buf, _))) if buf.is_empty() => None,
            Ok(Ok((buf, file))) => {
                Some((Ok::<_, std::io::Error>(web::Bytes::from(buf)), Some(file)))
            }
            Ok(Err(e)) => Some((Err(e), None)),
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"aseptic-export-{id}.zip\""),
        ))
        .body(actix_web::body::SizedStream::new(size, stream)))
}
