//! `/api/v1/clinics/{clinic}/sterilisers/{id}/imports`, `/sterilisers/{id}/csv-mapping`,
//! `/imported-cycles`, `/device-files/{id}`: cycle records read from the sterilisers' own files.

use actix_web::http::header;
use actix_web::{get, post, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Forbidden, NotFound, TooLarge, Unprocessable};
use crate::api::state::AppState;
use crate::api::{ClinicAccess, PageQuery, ValidJson, ValidQuery};
use crate::db;
use crate::error::{AppError, AppResult};
use crate::sterilisation::device_records::ImportedFilter;
use crate::sterilisation::import::archive::{self, Limits, Refusal};
use crate::sterilisation::import::parsers::CsvMapping;
use crate::sterilisation::import::RawFile;
use crate::sterilisation::store::TimeCursor;
use crate::sterilisation::usecases::{self, ImportReport, ImportedCycleView};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(import_cycles)
        .service(get_csv_mapping)
        .service(save_csv_mapping)
        .service(list_imported_cycles)
        .service(get_imported_cycle)
        .service(get_device_file);
}

fn limits(state: &AppState) -> Limits {
    let s = &state.settings.imports;
    Limits {
        file_bytes: s.file_limit_bytes,
        total_bytes: s.unpacked_limit_bytes,
        files: s.files_limit,
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::TooLarge(m) => AppError::TooLarge(m),
            Refusal::Unacceptable(m) => {
                AppError::Validation(vec![crate::error::FieldError::new("files", m)])
            }
        }
    }
}

/// Where the upload's file name is given for a body that is one file.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, for a body that is one file (not a form and not a zip): the W&H and
    /// SciCan formats carry the cycle number and serial in it.
    pub name: Option<String>,
}

/// A multipart form: every part with content is a file (a zip is unpacked, folders walked).
/// Send the files as `files`; a part under another name is read as a file all the same.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// One or more cycle record files, or a zip of a whole card or stick.
    #[schema(value_type = Vec<String>, format = Binary)]
    files: Vec<Vec<u8>>,
}

async fn read_body(mut payload: web::Payload, limit: usize) -> AppResult<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The files of the request: the parts of a multipart form, or the body as one file.
async fn files_of(
    req: &HttpRequest,
    payload: web::Payload,
    name: Option<String>,
    limit: usize,
) -> AppResult<Vec<RawFile>> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("multipart/form-data") {
        let bytes = read_body(payload, limit).await?;
        if bytes.is_empty() {
            return Err(AppError::invalid(
                "files",
                "the body is empty: send a cycle record file, a zip of the card, or a form with files",
            ));
        }
        let name = name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| {
                if archive::is_zip(&bytes) {
                    "upload.zip".into()
                } else {
                    "upload".into()
                }
            });
        return Ok(vec![RawFile { name, bytes }]);
    }
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut files = Vec::new();
    let mut total = 0usize;
    let mut parts = 0usize;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| {
            // A form closed before its first part (what many clients send for an empty file
            // list) holds no file; a form broken after that is unreadable.
            if parts == 0 {
                AppError::invalid(
                    "files",
                    "the form holds no file: attach cycle record files or a zip of the card",
                )
            } else {
                AppError::BadRequest(format!("the form cannot be read: {e}"))
            }
        })?;
        parts += 1;
        let name = field
            .content_disposition()
            .and_then(|cd| cd.get_filename().map(str::to_owned))
            .or_else(|| Some(field.name()?.to_owned()))
            .unwrap_or_else(|| format!("part-{}", files.len() + 1));
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk =
                chunk.map_err(|e| AppError::BadRequest(format!("the form cannot be read: {e}")))?;
            total += chunk.len();
            if total > limit {
                return Err(AppError::PayloadTooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        if !bytes.is_empty() {
            files.push(RawFile { name, bytes });
        }
    }
    if files.is_empty() {
        return Err(AppError::invalid(
            "files",
            "the form holds no file: attach cycle record files or a zip of the card",
        ));
    }
    Ok(files)
}

/// Import cycle records from the steriliser's own files (owners and technicians): one file as
/// the body (`?name=` gives its name), or a multipart form of several, or a zip of a whole card
/// or stick. Each file is kept byte for byte under its SHA-256; one imported before is recognised
/// and not recorded again (200 when nothing is new). Files of an unknown format are kept and
/// listed with how close each parser came; an upload with nothing readable at all is refused
/// (422). Cycles that could not be read are listed with their line and reason.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Steriliser id"), UploadQuery),
    request_body(content(
        (UploadForm = "multipart/form-data"),
        (Vec<u8> = "application/octet-stream"),
        (Vec<u8> = "application/zip"),
        (String = "text/plain"),
        (String = "text/csv"),
    )),
    responses(
        (status = 201, body = ImportReport, description = "New files kept and their cycles recorded"),
        (status = 200, body = ImportReport, description = "Every file had been imported before: nothing recorded"),
        Forbidden, NotFound, TooLarge, Unprocessable,
    ))]
#[post("/sterilisers/{id}/imports")]
async fn import_cycles(
    state: web::Data<AppState>,
    access: ClinicAccess,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: ValidQuery<UploadQuery>,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let name = query.into_inner()?.name;
    let (_, steriliser) = path.into_inner();
    let limit = state.settings.imports.upload_limit_bytes;
    let files = files_of(&req, payload, name, limit).await?;
    let limits = limits(&state);
    let files = web::block(move || archive::expand(files, &limits)).await??;
    let (ctx, clinic) = (access.audit_context(), access.clinic_id.clone());
    let profiles = state.profiles.clone();
    let report = db::run(&state.pool, move |conn| {
        usecases::import_files(conn, &profiles, &ctx, &clinic, &steriliser, files)
    })
    .await?;
    Ok(if report.import_id.is_some() {
        HttpResponse::Created().json(report)
    } else {
        HttpResponse::Ok().json(report)
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CsvMappingView {
    pub steriliser_id: String,
    /// None until an owner saves one.
    pub mapping: Option<CsvMapping>,
}

/// How this steriliser's CSV files are read (data loggers and makers without a parser).
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Steriliser id")),
    responses((status = 200, body = CsvMappingView), NotFound))]
#[get("/sterilisers/{id}/csv-mapping")]
async fn get_csv_mapping(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<CsvMappingView>> {
    let (_, steriliser) = path.into_inner();
    let clinic = access.clinic_id.clone();
    let id = steriliser.clone();
    let mapping = db::run(&state.pool, move |conn| {
        usecases::get_steriliser(conn, &clinic, &id)?;
        usecases::csv_mapping(conn, &clinic, &id)
    })
    .await?;
    Ok(web::Json(CsvMappingView {
        steriliser_id: steriliser,
        mapping,
    }))
}

/// Save how this steriliser's CSV files are read (owners): which column holds the cycle number,
/// the start and end, the temperature, the pressure and its unit, the program and the result.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Steriliser id")),
    request_body = CsvMapping,
    responses((status = 200, body = CsvMappingView), Forbidden, NotFound, Unprocessable))]
#[put("/sterilisers/{id}/csv-mapping")]
async fn save_csv_mapping(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<CsvMapping>,
) -> AppResult<web::Json<CsvMappingView>> {
    access.require_owner()?;
    let mapping = body.into_inner()?;
    let (_, steriliser) = path.into_inner();
    let (ctx, clinic, id) = (
        access.audit_context(),
        access.clinic_id.clone(),
        steriliser.clone(),
    );
    let mapping = db::run(&state.pool, move |conn| {
        usecases::save_csv_mapping(conn, &ctx, &clinic, &id, mapping)
    })
    .await?;
    Ok(web::Json(CsvMappingView {
        steriliser_id: steriliser,
        mapping: Some(mapping),
    }))
}

/// Filters of the imported cycles.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportedQuery {
    pub steriliser_id: Option<String>,
    /// Started from this time (RFC 3339), inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Started before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Only the cycles imported by this moment (RFC 3339, not in the future).
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportedCyclePage {
    pub items: Vec<ImportedCycleView>,
    pub next_cursor: Option<String>,
}

/// Cycles imported from the sterilisers' files, newest first, each with its checks and the
/// hand-typed cycle of the same number.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery, ImportedQuery),
    responses((status = 200, body = ImportedCyclePage), NotFound, Unprocessable))]
#[get("/imported-cycles")]
async fn list_imported_cycles(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
    query: ValidQuery<ImportedQuery>,
) -> AppResult<web::Json<ImportedCyclePage>> {
    let (page, query) = crate::api::query::both(page, query)?;
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if to <= from {
            return Err(AppError::invalid("to", "must be after from"));
        }
    }
    let after =
        match &page.cursor {
            None => None,
            Some(c) => Some(TimeCursor::decode(c).ok_or_else(|| {
                AppError::invalid("cursor", "is not a cursor from a previous page")
            })?),
        };
    let filter = ImportedFilter {
        steriliser_id: query.steriliser_id,
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
        after,
        limit: page.limit()?,
        at: crate::api::query::standing_at(query.at)?,
    };
    let clinic = access.clinic_id.clone();
    let (items, next_cursor) = db::run(&state.pool, move |conn| {
        usecases::list_imported_cycles(conn, &clinic, &filter)
    })
    .await?;
    Ok(web::Json(ImportedCyclePage { items, next_cursor }))
}

/// One imported cycle with its phases, samples (each with the device's own text), checks and
/// the hand-typed cycle of the same number with every value that differs.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Imported cycle id")),
    responses((status = 200, body = ImportedCycleView), NotFound))]
#[get("/imported-cycles/{id}")]
async fn get_imported_cycle(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<ImportedCycleView>> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::get_imported_cycle(conn, &clinic, &id)
        })
        .await?,
    ))
}

/// A device file exactly as it was uploaded (its SHA-256 in the `Digest` header).
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Device file id")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>, description = "The file's bytes, unchanged"), NotFound))]
#[get("/device-files/{id}")]
async fn get_device_file(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    let file = db::run(&state.pool, move |conn| {
        usecases::device_file(conn, &clinic, &id)
    })
    .await?;
    let base = file
        .name
        .rsplit('/')
        .next()
        .unwrap_or("file")
        .replace(['"', '\\', '\r', '\n'], "_");
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{base}\""),
        ))
        .insert_header(("Digest", format!("sha-256={}", file.sha256)))
        .body(file.content))
}
