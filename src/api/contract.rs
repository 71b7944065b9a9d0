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

/// Applies both corrections to a document in its JSON form.
pub fn exact(mut doc: Value) -> Value {
    flatten_all_of(&mut doc);
    add_shared_responses(&mut doc);
    doc
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
            let mut shared: Vec<(&str, &str)> = Vec::new();
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
