//! The OpenAPI document made exact, after the routes have described themselves: every status a
//! route can answer, and record views as the flat objects they are on the wire.
//!
//! Two things the derived document gets wrong are put right here, in one place:
//! - Statuses every route shares (a body that is not JSON, a token that is missing, a database
//!   that is down) are answered by the extractors and the middleware, not by the handler, so no
//!   handler lists them. They are added to each operation by what it takes: a body, a token, a
//!   clinic, a record id, query parameters.
//! - A view that embeds its input with `#[serde(flatten)]` is derived as
//!   `allOf[<Input>, {id, version, …}]`. Where the input refuses unknown fields
//!   (`additionalProperties: false`), no response can satisfy both parts. Each such schema is
//!   merged into one object: what it sends and what it receives, with `additionalProperties: false`
//!   kept only where the outer type itself refuses unknown fields.

use serde_json::{json, Map, Value};

use crate::error::PROBLEM_CONTENT_TYPE;

/// The document as served: the derived one with both corrections applied, in its JSON form
/// (the corrected schemas use JSON Schema that utoipa's own types do not read back).
pub fn exact_document(openapi: &utoipa::openapi::OpenApi) -> Value {
    match serde_json::to_value(openapi) {
        Ok(doc) => exact(doc),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document could not be written as JSON");
            Value::Null
        }
    }
}

/// Applies the corrections to a document in its JSON form.
pub fn exact(mut doc: Value) -> Value {
    flatten_all_of(&mut doc);
    add_shared_responses(&mut doc);
    constrain_sent_text(&mut doc);
    describe_cursors(&mut doc);
    doc
}

/// Every list's `cursor` is the `next_cursor` of its previous page; each kind of list writes its
/// own, and any other text is refused. Lists of records named by id page by the last id; the
/// audit trail by the last sequence number; the logs by the last time and id.
/// What a query parameter may hold: no control character (they are refused before anything
/// reads the query).
const QUERY_TEXT: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";

fn describe_cursors(doc: &mut Value) {
    const BY_ID: [&str; 3] = ["/clients", "/credentials", "/lots"];
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let pattern = if path.ends_with("/audit/events") {
            "^[0-9]{1,18}$"
        } else if BY_ID.iter().any(|list| path.ends_with(list)) {
            "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        } else {
            "^[0-9]{1,16}_[0-9a-fA-F-]{1,36}$"
        };
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            let Some(params) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for p in params.iter_mut() {
                if p["in"] != "query" {
                    continue;
                }
                if p["name"] == "cursor" {
                    p["schema"]["pattern"] = json!(pattern);
                    continue;
                }
                let schema = &mut p["schema"];
                let text = schema["type"] == "string"
                    && schema.get("format").is_none()
                    && schema.get("enum").is_none()
                    && schema.get("pattern").is_none();
                if text {
                    schema["pattern"] = json!(QUERY_TEXT);
                }
            }
        }
    }
}

// The fragments the text patterns share, as macros so `concat!` can join them at compile time.

/// Not a start a spreadsheet would run: `=`, or `+`, `-`, `@` before a call or a link (full-width
/// too, and behind blanks or invisible characters).
macro_rules! not_a_formula {
    () => {
        concat!(
            r"(?![\s\u200B-\u200D\u2060\uFEFF\u00AD]*(?:[=\uFF1D]|[+\-@\uFF0B\uFF0D\uFF20]",
            r"(?:[\s\S]*[A-Za-z0-9]\(|[\s\S]*[|!=\uFF1D])))"
        )
    };
}

/// Direction marks, which no text may hold (the end of a character class).
macro_rules! direction_marks {
    () => {
        r"\u200E\u200F\u202A-\u202E\u2066-\u2069\u061C"
    };
}

/// A character of an address: not blank, not `@`, not a control character or direction mark.
macro_rules! address_character {
    ($also:literal) => {
        concat!(
            r"[^\s@",
            $also,
            r"\u0000-\u001F\u007F-\u009F",
            direction_marks!(),
            "]"
        )
    };
}

/// What `input::text_problem` accepts, as a pattern: no control character (a tab, a line break
/// and the GS1 group separator aside) and no direction mark anywhere, and not a formula.
const TEXT: &str = concat!(
    "^",
    not_a_formula!(),
    r"[^\u0000-\u0008\u000B\u000C\u000E-\u001C\u001E-\u001F\u007F-\u009F",
    direction_marks!(),
    "]*$"
);

/// The same, for text that is required: at least one character that is not blank.
const REQUIRED_TEXT: &str = concat!(
    r"^(?=[\s\S]*\S)",
    not_a_formula!(),
    r"[^\u0000-\u0008\u000B\u000C\u000E-\u001C\u001E-\u001F\u007F-\u009F",
    direction_marks!(),
    "]*$"
);

/// What `auth::check_email` accepts (surrounding blanks are trimmed first), and not a formula:
/// one `@`, something before it, a domain with a dot that neither starts nor ends it, no blank
/// or control character.
const EMAIL: &str = concat!(
    "^",
    not_a_formula!(),
    r"[ \t\n\r]*",
    address_character!(""),
    "+@",
    r"(?=[^@]*\.)",
    address_character!("."),
    "(?:",
    address_character!(""),
    "*",
    address_character!("."),
    r")?[ \t\n\r]*$"
);

/// Properties that hold an email address.
const EMAIL_FIELDS: [&str; 4] = ["email", "to", "authority_email", "recipients"];

/// The text a caller sends is held to the service's rules: each free-text property of a request
/// body (no format, enum or pattern of its own) gets [`TEXT`], or [`REQUIRED_TEXT`] with a
/// minimum length of one where the property is required. Secrets are the caller's own and left
/// as they are.
fn constrain_sent_text(doc: &mut Value) {
    let mut names: Vec<String> = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for item in paths.values() {
            for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
                if let Some(content) = operation
                    .pointer("/requestBody/content")
                    .and_then(Value::as_object)
                {
                    for media in content.values() {
                        collect_refs(&media["schema"], &mut names);
                    }
                }
            }
        }
    }
    // The components those bodies reach, through properties and items.
    let mut i = 0;
    while i < names.len() {
        if let Some(schema) = doc
            .pointer(&format!("/components/schemas/{}", names[i]))
            .cloned()
        {
            collect_refs(&schema, &mut names);
        }
        i += 1;
    }
    for name in names {
        if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
            constrain_object(schema);
        }
    }
}

fn collect_refs(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                let name = r.rsplit('/').next().unwrap_or_default().to_owned();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            for v in map.values() {
                collect_refs(v, names);
            }
        }
        Value::Array(items) => {
            for v in items {
                collect_refs(v, names);
            }
        }
        _ => {}
    }
}

fn constrain_object(schema: &mut Value) {
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if name.contains("password") || name.contains("token") {
            continue;
        }
        // An amendment corrects at least one field.
        if name == "changes" && property["type"] == "object" {
            property["minProperties"] = json!(1);
        }
        if EMAIL_FIELDS.contains(&name.as_str()) {
            constrain_email(property);
            if let Some(items) = property.get_mut("items") {
                constrain_email(items);
            }
            continue;
        }
        constrain_text(property, required.contains(name));
        // Inline objects and lists of text (an answer's items, a list of addresses).
        if property.get("properties").is_some() {
            constrain_object(property);
        }
        if let Some(items) = property.get_mut("items") {
            constrain_text(items, true);
        }
    }
}

fn constrain_email(schema: &mut Value) {
    let ty = &schema["type"];
    let string = ty == "string"
        || ty
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "string"));
    if let (true, Some(map)) = (
        string && schema.get("format").is_none(),
        schema.as_object_mut(),
    ) {
        map.insert("pattern".into(), json!(EMAIL));
        map.insert("maxLength".into(), json!(254));
    }
}

/// Adds the text pattern to a string schema (or the string branch of a nullable one) that has
/// no format, enum or pattern of its own.
fn constrain_text(schema: &mut Value, required: bool) {
    let is_text = |s: &Value| {
        let ty = &s["type"];
        let string = ty == "string"
            || ty
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "string"));
        string && s.get("format").is_none() && s.get("enum").is_none() && s.get("pattern").is_none()
    };
    if is_text(schema) {
        let Some(map) = schema.as_object_mut() else {
            return;
        };
        // Text that must not be empty when it is sent counts as required text.
        let non_empty = map.get("minLength").and_then(Value::as_u64).unwrap_or(0) >= 1;
        if required || non_empty {
            map.insert("pattern".into(), json!(REQUIRED_TEXT));
            map.entry("minLength").or_insert(json!(1));
        } else {
            map.insert("pattern".into(), json!(TEXT));
        }
    }
}

fn flatten_all_of(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let mut flat = Map::new();
    for (name, schema) in &schemas {
        if schema.get("allOf").is_some() {
            flat.insert(name.clone(), merged(schema, &schemas, 0));
        }
    }
    if let Some(target) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in flat {
            target.insert(name, schema);
        }
    }
}

/// One object schema from an `allOf`: the parts' properties and required names together.
fn merged(schema: &Value, schemas: &Map<String, Value>, depth: usize) -> Value {
    let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
        return schema.clone();
    };
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut closed = false;
    for part in parts {
        let (resolved, inline) = match part.get("$ref").and_then(Value::as_str) {
            Some(r) if depth < 8 => {
                let name = r.rsplit('/').next().unwrap_or_default();
                match schemas.get(name) {
                    Some(s) => (merged(s, schemas, depth + 1), false),
                    None => continue,
                }
            }
            Some(_) => continue,
            None => (merged(part, schemas, depth + 1), true),
        };
        if inline && resolved.get("additionalProperties") == Some(&Value::Bool(false)) {
            closed = true;
        }
        if let Some(p) = resolved.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                properties.insert(k.clone(), v.clone());
            }
        }
        if let Some(r) = resolved.get("required").and_then(Value::as_array) {
            for name in r {
                if !required.contains(name) {
                    required.push(name.clone());
                }
            }
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    if let Some(d) = schema.get("description") {
        out.insert("description".into(), d.clone());
    }
    out.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    if closed {
        out.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(out)
}

/// The shared problem responses, each with the condition that makes a route answer it.
fn add_shared_responses(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let has_body = operation.get("requestBody").is_some();
            let secured = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            let params: Vec<Value> = operation
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let has_query = params.iter().any(|p| p["in"] == "query");
            let in_clinic = path.contains("{clinic}");
            let names_record = params
                .iter()
                .any(|p| p["in"] == "path" && p["name"] != "clinic");
            let uses_database = !matches!(
                path.as_str(),
                "/healthz" | "/metrics" | "/.well-known/aseptic/export-key"
            );
            let keyed = params
                .iter()
                .any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key");
            let mut shared: Vec<(&str, &str)> = Vec::new();
            if keyed {
                shared.push((
                    "409",
                    "The first request with this Idempotency-Key has not finished: retry later",
                ));
            }
            if has_body {
                shared.push(("400", "The body is empty or not JSON"));
                shared.push(("413", "The body is larger than the service accepts"));
                shared.push(("415", "The body is not sent as application/json"));
            }
            if has_body || has_query {
                shared.push((
                    "422",
                    "A field is missing or invalid: every field and reason is listed",
                ));
            }
            if secured {
                shared.push(("401", "No valid access token: log in again"));
            }
            if in_clinic {
                shared.push((
                    "403",
                    "Your role does not allow this, or your inspection access is not active",
                ));
                shared.push(("404", "No such clinic, or you are not a member of it"));
            } else if names_record {
                shared.push(("404", "No such record"));
            }
            if uses_database {
                shared.push((
                    "503",
                    "The database is unavailable for the moment: retry after Retry-After seconds",
                ));
            }
            if let Some(list) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            {
                for p in list.iter_mut() {
                    if p["in"] == "header" && p["name"] == "Idempotency-Key" {
                        p["schema"] = json!({"type": "string", "pattern": "^[!-~]{1,255}$"});
                    }
                }
            }
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (status, description) in shared {
                responses.entry(status.to_owned()).or_insert_with(|| {
                    json!({
                        "description": description,
                        "content": {
                            PROBLEM_CONTENT_TYPE: {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            }
                        }
                    })
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_over_a_closed_input_becomes_one_open_object() {
        let doc = json!({
            "components": {"schemas": {
                "ClientInput": {"type": "object", "additionalProperties": false,
                    "required": ["name"], "properties": {"name": {"type": "string"}}},
                "ClientView": {"allOf": [{"$ref": "#/components/schemas/ClientInput"},
                    {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}]},
                "CycleInput": {"allOf": [{"$ref": "#/components/schemas/ClientInput"},
                    {"type": "object", "additionalProperties": false, "required": ["packs"],
                     "properties": {"packs": {"type": "array"}}}]}
            }},
            "paths": {}
        });
        let out = exact(doc);
        let view = &out["components"]["schemas"]["ClientView"];
        assert_eq!(view["required"], json!(["name", "id"]));
        assert!(view.get("additionalProperties").is_none());
        let input = &out["components"]["schemas"]["CycleInput"];
        assert_eq!(input["additionalProperties"], json!(false));
        assert_eq!(input["required"], json!(["name", "packs"]));
    }

    #[test]
    fn each_operation_lists_the_statuses_its_inputs_can_bring() {
        let doc = json!({"paths": {
            "/api/v1/clinics/{clinic}/clients/{id}/amendments": {"post": {
                "security": [{"bearer": []}],
                "parameters": [{"name": "clinic", "in": "path"}, {"name": "id", "in": "path"}],
                "requestBody": {},
                "responses": {"200": {"description": "ok"}}
            }},
            "/healthz": {"get": {"responses": {"200": {"description": "ok"}}}}
        }});
        let out = exact(doc);
        let mut amend = out["paths"]["/api/v1/clinics/{clinic}/clients/{id}/amendments"]["post"]
            ["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        amend.sort();
        assert_eq!(
            amend,
            ["200", "400", "401", "403", "404", "413", "415", "422", "503"]
        );
        let health = out["paths"]["/healthz"]["get"]["responses"]
            .as_object()
            .expect("responses")
            .len();
        assert_eq!(health, 1);
    }
}
