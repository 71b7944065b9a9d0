//! The JSON body extractor: checks the content type and size, and reports which field is wrong.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{AppError, FieldError};

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
    {
        {
            if !json {
                return Err(AppError::UnsupportedMediaType);
            }
            if declared.is_some_and(|n| n > limit) {
                return Err(AppError::PayloadTooLarge { limit });
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| AppError::BadRequest(format!("cannot read the body: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(AppError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body)
        }
    }
}

/// Deserialises a body, keeping the path of the field that failed.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::BadRequest(
            "the request body is empty; send a JSON object".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let reason = strip_position(&inner.to_string());
        if inner.is_data() {
            let field = if path == "." {
                field_from_message(&reason)
            } else {
                path
            };
            AppError::Validation(vec![FieldError::new(field, reason)])
        } else {
            AppError::BadRequest(format!(
                "the body is not valid JSON (line {}, column {}): {reason}",
                inner.line(),
                inner.column()
            ))
        }
    })?;
    de.end()
        .map_err(|e| AppError::BadRequest(format!("trailing characters after the JSON: {e}")))?;
    Ok(value)
}

/// Deserialises an already parsed value, naming a wrong field as `<prefix>.<path>` (or `<path>`
/// without a prefix), for bodies assembled from parts.
pub fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, AppError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let reason = strip_position(&err.into_inner().to_string());
        let inner = if path == "." {
            field_from_message(&reason)
        } else {
            path
        };
        let field = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner,
            (false, "body") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        AppError::Validation(vec![FieldError::new(field, reason)])
    })
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// serde reports a missing or unknown field at the parent path; the name is in the message.
fn field_from_message(message: &str) -> String {
    let quoted = message.split('`').nth(1);
    match quoted {
        Some(name)
            if message.starts_with("missing field") || message.starts_with("unknown field") =>
        {
            name.to_owned()
        }
        _ => "body".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
        nested: Option<Vec<Inner>>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    fn field_of(body: &str) -> (String, String) {
        match parse::<Login>(body.as_bytes()).unwrap_err() {
            AppError::Validation(errors) => (errors[0].field.clone(), errors[0].reason.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        assert_eq!(field_of(r#"{"email": 5, "password": "x"}"#).0, "email");
        assert_eq!(field_of(r#"{"password": "x"}"#).0, "email");
        assert_eq!(
            field_of(r#"{"email": "a", "password": "x", "admin": true}"#).0,
            "admin"
        );
        assert_eq!(
            field_of(r#"{"email": "a", "password": "x", "nested": [{"n": 1}, {"n": "two"}]}"#).0,
            "nested[1].n"
        );
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse::<Login>(b"{\"email\": "),
            Err(AppError::BadRequest(_))
        ));
        assert!(matches!(parse::<Login>(b""), Err(AppError::BadRequest(_))));
        assert!(matches!(
            parse::<Login>(br#"{"email": "a", "password": "b"} {}"#),
            Err(AppError::BadRequest(_))
        ));
    }
}
