//! `Idempotency-Key` on creating requests: a retry with the same key and body gets the first
//! answer again and creates nothing twice; the same key with another request is refused.
//! Keys are scoped to the caller and the clinic in the path.
//!
//! The whole keyed request runs in one database transaction on one connection: the key, the
//! records the handler writes, their audit events and the stored answer commit together or not
//! at all, so after a crash a key is either unused or answered, never "in flight" with its
//! records already written. A replay runs the handler too (and throws its work away), so the
//! caller is authorised exactly as for a new request before the stored answer is given back.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse, ResponseError};
use diesel::connection::{Connection, TransactionManager};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::api::extract::Authorised;
use crate::api::json::JsonLimit;
use crate::api::state::AppState;
use crate::db::schema::idempotency_keys as keys;
use crate::db::{self, DbConn, RequestConn};
use crate::error::AppError;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = keys)]
struct KeyRow {
    request_hash: String,
    status_code: Option<i32>,
    content_type: Option<String>,
    response_body: Option<Vec<u8>>,
}

#[derive(Clone)]
struct KeyId {
    user_id: String,
    scope: String,
    key: String,
}

impl KeyId {
    fn label(&self) -> String {
        format!("{}\n{}\n{}", self.user_id, self.scope, self.key)
    }
}

/// The first answer stored under a key.
struct Stored {
    request_hash: String,
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Opens the request's transaction and reads what the key already holds. `Err(InFlight)` when
/// another transaction holds the key (PostgreSQL: its advisory lock).
fn open(conn: &mut DbConn, id: &KeyId) -> Result<Option<Stored>, AppError> {
    db::begin_write(conn)?;
    if let DbConn::Postgres(pg) = conn {
        let digest = Sha256::digest(id.label().as_bytes());
        let half = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let got: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1, $2) AS locked")
            .bind::<diesel::sql_types::Integer, _>(half(&digest[0..4]))
            .bind::<diesel::sql_types::Integer, _>(half(&digest[4..8]))
            .get_result(pg)?;
        if !got.locked {
            return Err(AppError::IdempotencyInFlight);
        }
    }
    let row: Option<KeyRow> = keys::table
        .find((&id.user_id, &id.scope, &id.key))
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.and_then(|r| {
        // A row with no answer was left by an earlier version between its two transactions:
        // nothing was acknowledged under it, so the key counts as unused.
        Some(Stored {
            request_hash: r.request_hash,
            status: u16::try_from(r.status_code?).ok()?,
            content_type: r.content_type,
            body: r.response_body.unwrap_or_default(),
        })
    }))
}

/// Stores the answer and commits everything the request wrote with it.
fn answer_and_commit(
    conn: &mut DbConn,
    id: &KeyId,
    request_hash: &str,
    status: StatusCode,
    content_type: Option<String>,
    body: &[u8],
) -> Result<(), AppError> {
    let target = keys::table.find((&id.user_id, &id.scope, &id.key));
    diesel::delete(target).execute(conn)?;
    let now = db::now();
    diesel::insert_into(keys::table)
        .values((
            keys::user_id.eq(&id.user_id),
            keys::scope.eq(&id.scope),
            keys::idempotency_key.eq(&id.key),
            keys::request_hash.eq(request_hash),
            keys::status_code.eq(i32::from(status.as_u16())),
            keys::content_type.eq(content_type),
            keys::response_body.eq(body),
            keys::created_at.eq(now),
            keys::completed_at.eq(now),
        ))
        .execute(conn)?;
    RequestConn::commit(conn)?;
    Ok(())
}

fn roll_back(conn: &mut DbConn) -> Result<(), AppError> {
    <DbConn as Connection>::TransactionManager::rollback_transaction(conn)?;
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

async fn pass(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(raw_key) = req.headers().get(HEADER).cloned() else {
        return pass(req, next).await;
    };
    if req.method() != Method::POST {
        return pass(req, next).await;
    }
    // An import is idempotent by content (a file already kept is recognised by its SHA-256 and
    // not recorded again), and its body is far beyond what a key's request is kept with.
    if req.path().ends_with("/imports") {
        return pass(req, next).await;
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return pass(req, next).await;
    };
    // Without a valid token the handler answers 401 before anything about the key is said:
    // there is no caller to scope a key to.
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim().to_owned()));
    let Some(claims) = bearer.and_then(|t| state.tokens.check(&t).ok()) else {
        return pass(req, next).await;
    };
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

    let Some(_running) = state.idempotency_in_flight.enter(&id.label()) else {
        return Ok(error(req, AppError::IdempotencyInFlight));
    };
    // Bounded like any request's database work: checking out runs the pool's liveness query,
    // which a stalled database would otherwise hold for as long as TCP does.
    let pool = state.pool.clone();
    let limit = pool.request_limit();
    let conn = match db::bounded_by(limit, move || Ok(pool.get()?)).await {
        Ok(conn) => conn,
        Err(e) => return Ok(error(req, e)),
    };
    let request_conn = RequestConn::new(conn, limit);
    let opened = {
        let id = id.clone();
        request_conn.with(move |conn| open(conn, &id)).await
    };
    let stored = match opened {
        Ok(stored) => stored,
        Err(e) => {
            let _ = request_conn.with(roll_back).await;
            return Ok(error(req, e));
        }
    };

    req.set_payload(bytes_to_payload(body));
    let res = request_conn.scope(next.call(req)).await;
    let res = match res {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            let _ = request_conn.with(roll_back).await;
            return Err(e);
        }
    };
    let status = res.status();
    let authorised = res.request().extensions().get::<Authorised>().is_some();

    if let Some(first) = stored {
        // The handler ran only to check the caller as a new request would be checked; what it
        // wrote is thrown away.
        let _ = request_conn.with(roll_back).await;
        if !authorised || status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Ok(res);
        }
        let (http_req, _) = res.into_parts();
        if first.request_hash != request_hash {
            let response = AppError::IdempotencyMismatch.error_response();
            return Ok(ServiceResponse::new(http_req, response));
        }
        let mut replay = HttpResponse::build(
            StatusCode::from_u16(first.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
        if let Some(ct) = first.content_type {
            replay.insert_header((header::CONTENT_TYPE, ct));
        }
        replay.insert_header((REPLAYED_HEADER, "true"));
        return Ok(ServiceResponse::new(http_req, replay.body(first.body)));
    }

    // A server error or a throttled request is not an answer worth replaying: nothing the
    // request wrote stays, and the key stays unused so the client's retry runs for real.
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        let _ = request_conn.with(roll_back).await;
        return Ok(res);
    }
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (http_req, response) = res.into_parts();
    let (head, response_body) = response.into_parts();
    let Ok(bytes) = body::to_bytes(response_body).await else {
        let _ = request_conn.with(roll_back).await;
        let response = AppError::internal("cannot buffer the response").error_response();
        return Ok(ServiceResponse::new(http_req, response));
    };
    let stored = bytes.clone();
    let committed = request_conn
        .with(move |conn| {
            let outcome =
                answer_and_commit(conn, &id, &request_hash, status, content_type, &stored);
            if outcome.is_err() {
                let _ = roll_back(conn);
            }
            outcome
        })
        .await;
    if let Err(e) = committed {
        // Nothing was acknowledged: the client may retry with the same key.
        tracing::error!(error = %e, "could not commit an idempotent request");
        let response = match e {
            AppError::Unavailable(_) => e.error_response(),
            _ => AppError::Unavailable(e.to_string()).error_response(),
        };
        return Ok(ServiceResponse::new(http_req, response));
    }
    for f in request_conn.take_after_commit() {
        f();
    }
    Ok(ServiceResponse::new(
        http_req,
        head.set_body(BoxBody::new(bytes)),
    ))
}
