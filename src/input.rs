//! Reading input into typed values, naming the field that is wrong: used by the HTTP surface for
//! request bodies and by the use cases for bodies assembled from parts (an amendment's changes).

use serde::de::DeserializeOwned;

use crate::error::{AppError, FieldError};

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
