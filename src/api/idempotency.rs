//! `Idempotency-Key` on creating requests: a retry with the same key and body gets the first
//! answer again and creates nothing twice; the same key with another request is refused.
//! Keys are scoped to the caller and the clinic in the path.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse, ResponseError};
use chrono::Duration;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::api::json::JsonLimit;
use crate::db::schema::idempotency_keys as keys;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A request that claimed a key and then vanished (a crash) frees the key after this long.
const ABANDONED_AFTER_SECS: i64 = 60;

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = keys)]
struct KeyRow {
    request_hash: String,
    status_code: Option<i32>,
    content_type: Option<String>,
    response_body: Option<Vec<u8>>,
    created_at: chrono::NaiveDateTime,
}

enum Claim {
    Claimed,
    Replay {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
}

struct KeyId {
    user_id: String,
    scope: String,
    key: String,
}

fn claim(conn: &mut DbConn, id: &KeyId, request_hash: &str) -> Result<Claim, AppError> {
    db::write_transaction(conn, |conn| {
        let existing: Option<KeyRow> = keys::table
            .find((&id.user_id, &id.scope, &id.key))
            .select(KeyRow::as_select())
            .first(conn)
            .optional()?;
        let now = db::now();
        match existing {
            None => {
                diesel::insert_into(keys::table)
                    .values((
                        keys::user_id.eq(&id.user_id),
                        keys::scope.eq(&id.scope),
                        keys::idempotency_key.eq(&id.key),
                        keys::request_hash.eq(request_hash),
                        keys::created_at.eq(now),
                    ))
                    .execute(conn)?;
                Ok(Claim::Claimed)
            }
            Some(row) if row.request_hash != request_hash => Err(AppError::IdempotencyMismatch),
            Some(KeyRow {
                status_code: Some(status),
                content_type,
                response_body,
                ..
            }) => Ok(Claim::Replay {
                status: u16::try_from(status).unwrap_or(500),
                content_type,
                body: response_body.unwrap_or_default(),
            }),
            Some(row) if now - row.created_at > Duration::seconds(ABANDONED_AFTER_SECS) => {
                diesel::update(keys::table.find((&id.user_id, &id.scope, &id.key)))
                    .set(keys::created_at.eq(now))
                    .execute(conn)?;
                Ok(Claim::Claimed)
            }
            Some(_) => Err(AppError::IdempotencyInFlight),
        }
    })
}

fn complete(
    conn: &mut DbConn,
    id: &KeyId,
    status: StatusCode,
    content_type: Option<String>,
    body: &[u8],
) -> Result<(), AppError> {
    let target = keys::table.find((&id.user_id, &id.scope, &id.key));
    // A server error or a throttled request is not an answer worth replaying: free the key so
    // the client's retry runs for real.
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        diesel::delete(target).execute(conn)?;
    } else {
        diesel::update(target)
            .set((
                keys::status_code.eq(i32::from(status.as_u16())),
                keys::content_type.eq(content_type),
                keys::response_body.eq(body),
                keys::completed_at.eq(db::now()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// `/api/v1/clinics/{id}/...` is scoped to that clinic; anything else to the caller alone.
fn scope_of(path: &str) -> String {
    path.strip_prefix("/api/v1/clinics/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
        .to_owned()
}

fn bytes_to_payload(buf: web::Bytes) -> Payload {
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(buf);
    Payload::from(payload)
}

fn error(req: ServiceRequest, err: AppError) -> ServiceResponse<BoxBody> {
    let (http_req, _) = req.into_parts();
    ServiceResponse::new(http_req, err.error_response())
}

pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(raw_key) = req.headers().get(HEADER).cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    if req.method() != Method::POST {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let key = match raw_key.to_str() {
        Ok(k)
            if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..0x7f).contains(&b)) =>
        {
            k.to_owned()
        }
        _ => {
            return Ok(error(
                req,
                AppError::invalid(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                ),
            ))
        }
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    // Without a valid token the handler answers 401; there is no caller to scope a key to.
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim().to_owned()));
    let Some(claims) = bearer.and_then(|t| state.tokens.check(&t).ok()) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };

    let limit = req
        .app_data::<web::Data<JsonLimit>>()
        .map(|l| l.0)
        .unwrap_or(64 * 1024);
    let body = match req.extract::<web::Bytes>().await {
        Ok(b) if b.len() <= limit => b,
        Ok(_) => return Ok(error(req, AppError::PayloadTooLarge { limit })),
        Err(e) => {
            return Ok(error(
                req,
                AppError::BadRequest(format!("cannot read the body: {e}")),
            ))
        }
    };
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(req.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(req.query_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(&body);
    let request_hash = hex::encode(hasher.finalize());
    let id = KeyId {
        user_id: claims.sub,
        scope: scope_of(req.path()),
        key,
    };

    let pool = state.pool.clone();
    let claimed = web::block(move || {
        let mut conn = pool.get()?;
        let outcome = claim(&mut conn, &id, &request_hash);
        Ok::<_, AppError>((outcome, id))
    })
    .await
    .map_err(AppError::from);
    let (outcome, id) = match claimed {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) | Err(e) => return Ok(error(req, e)),
    };
    match outcome {
        Err(e) => Ok(error(req, e)),
        Ok(Claim::Replay {
            status,
            content_type,
            body,
        }) => {
            let mut res = HttpResponse::build(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
            if let Some(ct) = content_type {
                res.insert_header((header::CONTENT_TYPE, ct));
            }
            res.insert_header((REPLAYED_HEADER, "true"));
            let (http_req, _) = req.into_parts();
            Ok(ServiceResponse::new(http_req, res.body(body)))
        }
        Ok(Claim::Claimed) => {
            req.set_payload(bytes_to_payload(body));
            let res = next.call(req).await?.map_into_boxed_body();
            let status = res.status();
            let content_type = res
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let (http_req, response) = res.into_parts();
            let (head, response_body) = response.into_parts();
            let bytes = body::to_bytes(response_body)
                .await
                .map_err(|_| AppError::internal("cannot buffer the response"))?;
            let stored = bytes.clone();
            let pool = state.pool.clone();
            let saved = web::block(move || {
                let mut conn = pool.get()?;
                complete(&mut conn, &id, status, content_type, &stored)
            })
            .await;
            if let Err(e) | Ok(Err(e)) = saved.map_err(AppError::from) {
                tracing::error!(error = %e, "could not store the idempotent response");
            }
            Ok(ServiceResponse::new(
                http_req,
                head.set_body(BoxBody::new(bytes)),
            ))
        }
    }
}
