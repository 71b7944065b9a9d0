//! The JSON body extractor: checks the content type and size, and reports which field is wrong.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::input::parse;

/// Largest accepted body, set from `server.json_limit_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

/// A JSON body deserialised into `T`. A wrong type or a missing or unknown field is a 422 naming
/// the field; unreadable JSON is a 400; another content type is a 415; too large a body is a 413.
///
/// The extractor itself never fails: the body's verdict waits in here until the handler asks
/// for it with [`ValidJson::into_inner`], after it has authorised the caller. Extractors resolve
/// concurrently, so a failing body extractor would otherwise answer 422 to a caller who should
/// have heard 401 or 403 and learnt nothing about the route.
pub struct ValidJson<T>(Result<T, AppError>);

impl<T> ValidJson<T> {
    /// The parsed body, or why it was refused. Call it after authorisation.
    pub fn into_inner(self) -> Result<T, AppError> {
        self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<JsonLimit>>()
            .map(|l| l.0)
            .unwrap_or(64 * 1024);
        let json = is_json(req);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move { Ok(ValidJson(read(json, declared, limit, &mut payload).await)) })
    }
}

async fn read<T: DeserializeOwned>(
    json: bool,
    declared: Option<usize>,
    limit: usize,
    payload: &mut Payload,
) -> Result<T, AppError> {
    if !json {
        return Err(AppError::UnsupportedMediaType);
    }
    if declared.is_some_and(|n| n > limit) {
        return Err(AppError::PayloadTooLarge { limit });
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    parse(&body)
}
