//! Reading input into typed values, naming the field that is wrong: used by the HTTP surface for
//! request bodies and by the use cases for bodies assembled from parts (an amendment's changes).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{AppError, FieldError};

/// Deserialises a body, naming every field that is wrong at once, in plain words.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::BadRequest(
            "the request body is empty; send a JSON object".into(),
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        AppError::BadRequest(format!(
            "the body is not valid JSON (line {}, column {}): {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        ))
    })?;
    from_sent(value, "")
}

/// Reads what a person or program sent (a request body, a form): [`from_value`], and also
/// refuses text that hides or runs something, every field at once.
pub fn from_sent<T: DeserializeOwned>(mut value: Value, prefix: &str) -> Result<T, AppError> {
    whole_numbers(&mut value);
    let mut unsafe_text = Vec::new();
    text_errors(&value, prefix, &mut unsafe_text);
    match (from_value(value, prefix), unsafe_text.is_empty()) {
        (Ok(v), true) => Ok(v),
        (Ok(_), false) => Err(AppError::Validation(unsafe_text)),
        (Err(AppError::Validation(mut shape)), _) => {
            for e in unsafe_text {
                if !shape.iter().any(|s| s.field == e.field) {
                    shape.push(e);
                }
            }
            Err(AppError::Validation(shape))
        }
        (Err(other), _) => Err(other),
    }
}

/// JSON has one kind of number: `5.0` is the whole number 5, wherever a whole number is asked.
fn whole_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Invisible characters that change how text reads (direction marks and overrides), which a
/// record must not carry: what is stored would not be what is read.
fn is_direction_mark(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that show as nothing; a formula can hide behind them.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    ) || is_direction_mark(c)
}

/// Whether a spreadsheet opening this text as a cell would run it: it starts (after blanks and
/// invisible characters) with `=`, or with `+`, `-` or `@` before a call or a link to another
/// program. Full-width forms count. "+44 7700 900123" and "- see the note" are text.
pub fn looks_like_formula(text: &str) -> bool {
    let visible = text.trim_start_matches(|c: char| c.is_whitespace() || is_invisible(c));
    let mut chars = visible.chars();
    match chars.next() {
        Some('=' | '\u{FF1D}') => true,
        Some('+' | '-' | '@' | '\u{FF0B}' | '\u{FF0D}' | '\u{FF20}') => {
            let rest: String = chars.collect();
            let calls = rest
                .char_indices()
                .any(|(i, c)| c == '(' && rest[..i].ends_with(|p: char| p.is_alphanumeric()));
            calls || rest.contains(['|', '!', '=', '\u{FF1D}'])
        }
        _ => false,
    }
}

/// The reason a text value cannot be recorded as sent, if any.
pub fn text_problem(text: &str) -> Option<String> {
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{1D}'))
    {
        return Some(format!(
            "contains a control character (U+{:04X}) that is not text; remove it",
            c as u32
        ));
    }
    if let Some(c) = text.chars().find(|c| is_direction_mark(*c)) {
        return Some(format!(
            "contains an invisible direction mark (U+{:04X}) that makes the text read differently from what is stored; remove it",
            c as u32
        ));
    }
    looks_like_formula(text).then(|| {
        "starts like a spreadsheet formula (=, or +, - or @ before a calculation), which a spreadsheet opening the clinic's exports would run; write it without the leading sign".to_owned()
    })
}

/// Every text value of `value` that cannot be recorded, named by its path under `at`. Secrets
/// (passwords, tokens) are the caller's own and never shown or exported, so they are left as sent.
fn text_errors(value: &Value, at: &str, out: &mut Vec<FieldError>) {
    match value {
        Value::String(text) => {
            if let Some(reason) = text_problem(text) {
                let field = if at.is_empty() { "body" } else { at };
                out.push(FieldError::new(field, reason));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                text_errors(item, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains("password") || key.contains("token") {
                    continue;
                }
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                text_errors(item, &path, out);
            }
        }
        _ => {}
    }
}

/// Deserialises an already parsed value, naming each wrong field as `<prefix>.<path>` (or
/// `<path>` without a prefix), for bodies assembled from parts.
pub fn from_value<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, AppError> {
    let errors = match attempt::<T>(&value) {
        Ok(v) => return Ok(v),
        Err(first) => every_error::<T>(value, first),
    };
    Err(AppError::Validation(
        errors
            .into_iter()
            .map(|(path, reason)| {
                let field = match (prefix.is_empty(), path.as_str()) {
                    (true, "") => "body".to_owned(),
                    (true, _) => path,
                    (false, "") => prefix.to_owned(),
                    (false, _) => format!("{prefix}.{path}"),
                };
                FieldError::new(field, reason)
            })
            .collect(),
    ))
}

/// Where a deserialisation stopped: the path as segments, and serde's message.
struct Stop {
    path: Vec<Segment>,
    message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn attempt<T: DeserializeOwned>(value: &Value) -> Result<T, Stop> {
    serde_path_to_error::deserialize::<_, T>(value.clone()).map_err(|err| {
        let mut path: Vec<Segment> = err
            .path()
            .iter()
            .filter_map(|s| match s {
                serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let message = strip_position(&err.into_inner().to_string());
        // serde reports a missing or unknown field at its parent; the name is in the message.
        if message.starts_with("missing field") {
            if let Some(name) = message.split('`').nth(1) {
                path.push(Segment::Key(name.to_owned()));
            }
        }
        Stop { path, message }
    })
}

fn path_text(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) if out.is_empty() => out.push_str(k),
            Segment::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Values tried in place of a wrong or missing field to read on past it. Which one is accepted
/// tells what the field expects, so the reason can say it in plain words.
const PROBES: &[(&str, &str)] = &[
    ("0.5", "a number"),
    ("0", "a whole number"),
    ("\"\"", "text"),
    ("true", "true or false"),
    (
        "\"2000-01-01T00:00:00Z\"",
        "a date and time with its offset, as YYYY-MM-DDTHH:MM:SSZ (RFC 3339)",
    ),
    ("\"2000-01-01\"", "a date as YYYY-MM-DD"),
    ("{}", "an object"),
    ("[]", "a list"),
    ("null", ""),
];

/// Reads on past each wrong field, up to a bound, collecting what is wrong with every one.
fn every_error<T: DeserializeOwned>(mut value: Value, first: Stop) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut stop = first;
    for _ in 0..32 {
        let path = stop.path.clone();
        let mut expected: Option<String> = None;
        let mut next: Option<Result<(), Stop>> = None;
        let mut candidates: Vec<(Value, String)> = variants(&stop.message)
            .into_iter()
            .take(1)
            .map(|v| {
                let all = variants(&stop.message).join(", ");
                (Value::String(v), format!("one of: {all}"))
            })
            .collect();
        candidates.extend(PROBES.iter().filter_map(|(json, words)| {
            serde_json::from_str(json)
                .ok()
                .map(|v| (v, (*words).to_owned()))
        }));
        let unknown = stop.message.starts_with("unknown field");
        if unknown {
            // An unknown field is dropped; the rest is read on.
            remove(&mut value, &path);
            next = Some(attempt::<T>(&value).map(|_| ()));
        } else {
            let mut queue: std::collections::VecDeque<(Value, String)> = candidates.into();
            let mut named_variants = false;
            while let Some((candidate, words)) = queue.pop_front() {
                let mut tried = value.clone();
                if !set(&mut tried, &path, candidate) {
                    break;
                }
                match attempt::<T>(&tried) {
                    Ok(_) => {
                        value = tried;
                        expected = Some(words);
                        next = Some(Ok(()));
                        break;
                    }
                    // Read on only where the next stop is elsewhere: a stop at this field or
                    // around it means the value did not fit.
                    Err(s) if !path.starts_with(&s.path) => {
                        value = tried;
                        expected = Some(words);
                        next = Some(Err(s));
                        break;
                    }
                    Err(s) => {
                        let vs = variants(&s.message);
                        if !named_variants && !vs.is_empty() {
                            // A tag (an internally tagged enum's `kind`): its variants fit.
                            named_variants = true;
                            let all = vs.join(", ");
                            queue.push_front((
                                Value::String(vs[0].clone()),
                                format!("one of: {all}"),
                            ));
                        }
                    }
                }
            }
        }
        errors.push((path_text(&path), plain(&stop.message, expected.as_deref())));
        match next {
            Some(Err(s)) => stop = s,
            _ => break,
        }
    }
    errors
}

/// The variants an enum accepts, from serde's "unknown variant" message.
fn variants(message: &str) -> Vec<String> {
    let Some(rest) = message
        .strip_prefix("unknown variant")
        .and_then(|m| m.split_once("expected"))
        .map(|(_, r)| r)
    else {
        return Vec::new();
    };
    rest.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// serde's reason in words a clinic worker reads.
fn plain(message: &str, expected: Option<&str>) -> String {
    let vs = variants(message);
    if !vs.is_empty() {
        return format!("must be one of: {}", vs.join(", "));
    }
    if message.starts_with("unknown field") {
        return "is not a field of this request".into();
    }
    let unsigned = [
        "expected u8",
        "expected u16",
        "expected u32",
        "expected u64",
        "expected usize",
    ]
    .iter()
    .any(|t| message.contains(t));
    let what = match expected {
        Some("a whole number") if unsigned => "a whole number, 0 or more".to_owned(),
        Some("") | None => String::new(),
        Some(w) => w.to_owned(),
    };
    if message.starts_with("missing field") {
        return if what.is_empty() || what == "an object" {
            "is required".into()
        } else {
            format!("is required: {what}")
        };
    }
    if message.contains("invalid length") {
        return "has the wrong number of entries".into();
    }
    if what.is_empty() {
        // No probe fitted (a custom check of the type): its own message is already in words.
        return message.to_owned();
    }
    format!("must be {what}")
}

/// Reads a URL query into `T`, naming every wrong parameter at once in plain words.
pub fn from_query<T: DeserializeOwned>(query: &str) -> Result<T, AppError> {
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
        AppError::BadRequest("the query string cannot be read as name=value pairs".into())
    })?;
    let read = |pairs: &[(String, String)]| -> Result<T, (String, String)> {
        let encoded = serde_urlencoded::to_string(pairs).unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(&encoded));
        serde_path_to_error::deserialize(de).map_err(|err| {
            let mut field = err.path().to_string();
            let message = err.into_inner().to_string();
            if message.starts_with("missing field") || message.starts_with("unknown field") {
                if let Some(name) = message.split('`').nth(1) {
                    field = name.to_owned();
                }
            }
            (field, message)
        })
    };
    let mut errors: Vec<FieldError> = Vec::new();
    let mut stop = match read(&pairs) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    for _ in 0..16 {
        let (field, message) = stop.clone();
        let mut probes: Vec<(String, String)> = variants(&message)
            .first()
            .map(|v| {
                (
                    v.clone(),
                    format!("one of: {}", variants(&message).join(", ")),
                )
            })
            .into_iter()
            .collect();
        probes.extend(
            [
                ("0.5", "a number"),
                ("0", "a whole number"),
                ("true", "true or false"),
                (
                    "2000-01-01T00:00:00Z",
                    "a date and time with its offset, as YYYY-MM-DDTHH:MM:SSZ (RFC 3339)",
                ),
                ("2000-01-01", "a date as YYYY-MM-DD"),
                ("x", "text"),
            ]
            .iter()
            .map(|(v, w)| ((*v).to_owned(), (*w).to_owned())),
        );
        let mut expected = None;
        let mut next = None;
        if message.starts_with("unknown field") {
            pairs.retain(|(k, _)| *k != field);
            next = Some(read(&pairs).err());
        } else {
            for (probe, words) in probes {
                let mut tried = pairs.clone();
                tried.retain(|(k, _)| *k != field);
                tried.push((field.clone(), probe));
                match read(&tried) {
                    Ok(_) => {
                        pairs = tried;
                        expected = Some(words);
                        next = Some(None);
                        break;
                    }
                    Err(e) if e.0 != field => {
                        pairs = tried;
                        expected = Some(words);
                        next = Some(Some(e));
                        break;
                    }
                    Err(_) => {}
                }
            }
        }
        errors.push(FieldError::new(
            if field.is_empty() {
                "query".to_owned()
            } else {
                field
            },
            plain(&message, expected.as_deref()),
        ));
        match next {
            Some(Some(e)) => stop = e,
            _ => break,
        }
    }
    Err(AppError::Validation(errors))
}

fn form_urlencoded_parse(encoded: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(encoded.as_bytes())
}

fn slot<'v>(value: &'v mut Value, path: &[Segment]) -> Option<&'v mut Value> {
    let mut at = value;
    for s in path {
        at = match (s, at) {
            (Segment::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Segment::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(at)
}

/// Puts `v` at `path`, adding the last key if missing. False if the path runs through something
/// that is not an object or list.
fn set(value: &mut Value, path: &[Segment], v: Value) -> bool {
    let Some((last, parent)) = path.split_last() else {
        *value = v;
        return true;
    };
    match (last, slot(value, parent)) {
        (Segment::Key(k), Some(Value::Object(m))) => {
            m.insert(k.clone(), v);
            true
        }
        (Segment::Index(i), Some(Value::Array(a))) if *i < a.len() => {
            a[*i] = v;
            true
        }
        _ => false,
    }
}

fn remove(value: &mut Value, path: &[Segment]) {
    if let Some((Segment::Key(k), parent)) = path.split_last() {
        if let Some(Value::Object(m)) = slot(value, parent) {
            m.remove(k);
        }
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn formulas_are_told_from_text_that_only_starts_with_a_sign() {
        for formula in [
            "=1+1",
            "  =1+1",
            "\u{200B}=1+1",
            "\u{FF1D}1",
            "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)",
            "\u{FF20}SUM(1)",
        ] {
            assert!(looks_like_formula(formula), "{formula}");
        }
        for text in [
            "+44 7700 900123",
            "- see the notes",
            "-",
            "@ann",
            "Ann (left)",
            "- replaced (worn)",
        ] {
            assert!(!looks_like_formula(text), "{text}");
        }
        assert!(text_problem("a\u{0}b").is_some_and(|w| w.contains("U+0000")));
        assert!(text_problem("a\u{202E}b").is_some_and(|w| w.contains("U+202E")));
        assert!(text_problem("line one\nline two\t(tab)").is_none());
        assert!(
            text_problem("01095060001343521\u{1D}10ABC").is_none(),
            "GS1 group separator"
        );
    }

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

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Placement {
        count: u32,
        weight: f64,
        name: String,
        on: chrono::NaiveDate,
        at: chrono::DateTime<chrono::Utc>,
        incubation: Incubation,
        kind: Kind,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Incubation {
        InHouse { hours: f64 },
        MailIn { lab: String },
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Gravity,
        PreVacuum,
    }

    fn all_errors(body: &str) -> Vec<(String, String)> {
        match parse::<Placement>(body.as_bytes()).unwrap_err() {
            AppError::Validation(errors) => {
                errors.into_iter().map(|e| (e.field, e.reason)).collect()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_wrong_field_is_named_at_once_in_plain_words() {
        let errors = all_errors(
            r#"{"count": "two", "weight": "heavy", "on": "31/05/2027", "at": "2027-05-31",
                "incubation": "oven", "kind": "steam", "extra": 1}"#,
        );
        let reason = |f: &str| {
            errors
                .iter()
                .find(|(field, _)| field == f)
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| panic!("{f} in {errors:?}"))
        };
        assert_eq!(reason("count"), "must be a whole number, 0 or more");
        assert_eq!(reason("weight"), "must be a number");
        assert_eq!(reason("name"), "is required: text");
        assert_eq!(reason("on"), "must be a date as YYYY-MM-DD");
        assert!(
            reason("at").starts_with("must be a date and time"),
            "{errors:?}"
        );
        assert_eq!(reason("kind"), "must be one of: gravity, pre_vacuum");
        assert_eq!(reason("extra"), "is not a field of this request");
        assert!(
            !reason("incubation").contains("internally tagged"),
            "{errors:?}"
        );
        for (_, r) in &errors {
            assert!(!r.contains("expected"), "parser words in {r}");
        }
    }

    #[test]
    fn an_enums_tag_is_named_with_its_choices() {
        let errors = all_errors(
            r#"{"count": 1, "weight": 1, "name": "n", "on": "2027-05-31",
                "at": "2027-05-31T10:00:00Z", "incubation": {"kind": "fridge"}, "kind": "gravity"}"#,
        );
        assert_eq!(
            errors[0],
            (
                "incubation.kind".to_owned(),
                "must be one of: in_house, mail_in".to_owned()
            )
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
