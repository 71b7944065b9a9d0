//! Form posts: who sent it first, then its CSRF token, then its fields; and the field errors a
//! page shows beside each field.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use super::{Browser, ClinicPage, PageError};
use crate::error::{AppError, FieldError};

/// A form's fields as sent (a field sent twice keeps its last value; `all` keeps every one).
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The trimmed value, or "" when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The trimmed value, or None when absent or blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name).to_owned()).filter(|v| !v.is_empty())
    }

    /// A value the page supplies itself (a default the form leaves out).
    /// Every posted text that hides or runs something, by field (secrets and the form's token
    /// aside), for forms that build their input by hand.
    pub fn text_problems(&self) -> Vec<FieldError> {
        self.0
            .iter()
            .filter(|(k, _)| k != "csrf" && !k.contains("password") && !k.contains("token"))
            .filter_map(|(k, v)| {
                crate::input::text_problem(v).map(|why| FieldError::new(k.as_str(), why))
            })
            .collect()
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.0.push((name.to_owned(), value.to_owned()));
    }

    /// Every value as sent, for a page shown again with its errors.
    pub fn values(&self) -> HashMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token a post must carry: the `csrf` field of a form, or htmx's `X-CSRF-Token` header.
fn check_csrf(req: &HttpRequest, fields: &Fields, expected: &str) -> Result<(), PageError> {
    let sent = req
        .headers()
        .get("X-CSRF-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| fields.get("csrf").to_owned());
    if sent.is_empty() || !same(&sent, expected) {
        return Err(PageError::Forgery);
    }
    Ok(())
}

async fn read(req: &HttpRequest, payload: &mut Payload) -> Result<Fields, PageError> {
    let body = web::Bytes::from_request(req, payload)
        .await
        .map_err(|_| AppError::BadRequest("the form could not be read".into()))?;
    Ok(Fields::parse(&body))
}

/// A form posted to a clinic's page: the sender is signed in and admitted (an inspector's write
/// is refused here, before the body is read), and the CSRF token is this session's.
pub struct Posted {
    pub page: ClinicPage,
    pub fields: Fields,
}

impl FromRequest for Posted {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let page = ClinicPage::resolve(&req).await?;
            let fields = read(&req, &mut payload).await?;
            check_csrf(&req, &fields, &page.browser.csrf)?;
            Ok(Self { page, fields })
        })
    }
}

/// A form posted by a signed-in browser outside any clinic (signing out).
pub struct BrowserPost {
    pub browser: Browser,
}

impl FromRequest for BrowserPost {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let browser = Browser::resolve(&req).await?;
            let fields = read(&req, &mut payload).await?;
            check_csrf(&req, &fields, &browser.csrf)?;
            Ok(Self { browser })
        })
    }
}

/// A reason as a person reads it: the field's own words where they name the thing.
pub fn reason_in_words(e: &FieldError) -> String {
    super::capitalise(&e.reason)
}

/// Field errors by the form field they belong to, for showing beside each field; errors the
/// form has no field for are shown at the top.
#[derive(Debug, Clone, Default)]
pub struct Errors {
    by_field: HashMap<String, String>,
    pub general: Vec<String>,
}

impl Errors {
    /// Sorts `errors` onto the form's `fields` (an error of `fields.x.y` goes to the field
    /// named `x`, its first segment, when the form has one).
    pub fn sort(errors: Vec<FieldError>, fields: &[&str]) -> Self {
        let mut out = Self::default();
        for e in errors {
            let head = e.field.split('.').next().unwrap_or_default().to_owned();
            let key = if fields.contains(&e.field.as_str()) {
                Some(e.field.clone())
            } else if fields.contains(&head.as_str()) {
                Some(head)
            } else {
                None
            };
            match key {
                Some(k) => {
                    let text = reason_in_words(&e);
                    out.by_field
                        .entry(k)
                        .and_modify(|t| {
                            t.push_str("; ");
                            t.push_str(&e.reason);
                        })
                        .or_insert(text);
                }
                None => out.general.push(labelled(&e)),
            }
        }
        out
    }

    pub fn of(&self, field: &str) -> Option<&str> {
        self.by_field.get(field).map(String::as_str)
    }
}

/// An error whose field the form does not show: "Lot number: is required".
fn labelled(e: &FieldError) -> String {
    if e.field.is_empty() {
        return reason_in_words(e);
    }
    let name = e.field.replace('_', " ");
    format!("{}: {}", super::capitalise(&name), e.reason)
}

/// Splits a use case's refusal into what a form shows: field errors beside fields, anything
/// else as the page's error.
pub fn refusal(e: AppError, fields: &[&str]) -> Result<Errors, PageError> {
    match e {
        AppError::Validation(errors) | AppError::Refused(errors) => {
            Ok(Errors::sort(errors, fields))
        }
        AppError::NotFoundField(error) => Ok(Errors::sort(vec![error], fields)),
        AppError::Conflict(message) => Ok(Errors {
            general: vec![super::capitalise(&message)],
            ..Default::default()
        }),
        other => Err(PageError::App(other)),
    }
}

/// How a form field becomes a value of a use case's input.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Text; blank is left out (an optional field) or sent as "" (a required one, so the use
    /// case names it).
    Text,
    /// A number (a comma is read as the decimal point); what does not read as one is sent as
    /// typed, so the input names the field in its own words.
    Number,
    /// A checkbox: present is true.
    Tick,
    /// A clinic-local date and time (`datetime-local`), sent as UTC.
    LocalTime,
}

/// Builds a use case's JSON input from a form whose fields are named by their JSON path
/// (`program.temperature_c`); times are read in the clinic's zone. Errors found on the way (a
/// time that does not exist locally) are returned with the value.
pub fn to_json(
    fields: &Fields,
    spec: &[(&str, Kind)],
    tz: chrono_tz::Tz,
) -> (serde_json::Value, Vec<FieldError>) {
    use serde_json::{Map, Value};
    let mut root = Value::Object(Map::new());
    let mut errors = Vec::new();
    for (name, kind) in spec {
        let raw = fields.get(name);
        let value = match kind {
            Kind::Text if raw.is_empty() => continue,
            Kind::Text => {
                // Text that hides or runs something is refused here as the API refuses it.
                if let Some(why) = crate::input::text_problem(raw) {
                    errors.push(FieldError::new(*name, why));
                    continue;
                }
                Value::String(raw.to_owned())
            }
            Kind::Number if raw.is_empty() => continue,
            Kind::Number => match raw.replace(',', ".").parse::<f64>() {
                Ok(n) if n.fract() == 0.0 && n.abs() < 1e15 => Value::from(n as i64),
                Ok(n) => serde_json::Number::from_f64(n)
                    .map_or(Value::String(raw.to_owned()), Value::Number),
                Err(_) => Value::String(raw.to_owned()),
            },
            Kind::Tick => Value::Bool(!raw.is_empty()),
            Kind::LocalTime if raw.is_empty() => continue,
            Kind::LocalTime => {
                let parsed = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
                    .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"));
                match parsed {
                    Ok(local) => match crate::clinics::context::local_to_utc(local, tz) {
                        Ok(t) => Value::String(t.to_rfc3339()),
                        Err(why) => {
                            errors.push(FieldError::new(*name, why));
                            continue;
                        }
                    },
                    Err(_) => {
                        errors.push(FieldError::new(*name, "give a date and a time"));
                        continue;
                    }
                }
            }
        };
        let mut at = &mut root;
        let parts: Vec<&str> = name.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let Value::Object(map) = at else { break };
            if i + 1 == parts.len() {
                map.insert((*part).to_owned(), value.clone());
                break;
            }
            at = map
                .entry((*part).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    (root, errors)
}

/// Now in the clinic's zone, as a `datetime-local` field shows it.
pub fn local_now(tz: chrono_tz::Tz) -> String {
    crate::clock::now()
        .with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}
