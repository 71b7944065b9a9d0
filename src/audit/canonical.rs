//! RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes the audit chain hashes.

use serde_json::Value;

/// Serialises `value` in JCS form: no white space, object members sorted by the UTF-16 code units
/// of their names, strings with the minimal escapes, numbers as ECMAScript prints them.
pub fn to_canonical_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Appends `value` in JCS form.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    // JSON numbers are IEEE 754 doubles in JCS; integers beyond 2^53 are not representable, so
    // integers are printed exactly only while they fit (our records never hold larger ones).
    if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= (1u64 << 53) {
            out.push_str(&i.to_string());
            return;
        }
    }
    let f = n.as_f64().unwrap_or(0.0);
    let mut buffer = ryu_js::Buffer::new();
    out.push_str(buffer.format(f));
}

/// Appends `s` as a JCS string: quoted, with the minimal escapes.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    // Most text needs no escape at all: copied whole.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_members_and_strips_white_space() {
        let v = json!({"b": [1, 2, {"z": null, "a": true}], "a": "x"});
        assert_eq!(
            to_canonical_string(&v),
            r#"{"a":"x","b":[1,2,{"a":true,"z":null}]}"#
        );
    }

    #[test]
    fn rfc8785_sorting_example_uses_utf16_order() {
        // From RFC 8785 section 3.2.3: property names sorted by UTF-16 code units.
        let v: Value = serde_json::from_str(
            r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        let order = to_canonical_string(&v);
        let positions: Vec<usize> = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small",
            "Euro Sign",
            "Emoji",
            "Hebrew",
        ]
        .iter()
        .map(|name| order.find(name).unwrap())
        .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{order}");
    }

    #[test]
    fn numbers_print_as_ecmascript_does() {
        let v: Value = serde_json::from_str(
            "[0, -0.0, 1.0, 1e21, 1e-7, 0.1, 333333333.33333329, 4.50, 2e-3, 1e30]",
        )
        .unwrap();
        assert_eq!(
            to_canonical_string(&v),
            "[0,0,1,1e+21,1e-7,0.1,333333333.3333333,4.5,0.002,1e+30]"
        );
    }

    #[test]
    fn strings_use_minimal_escapes() {
        let v = json!("a\"b\\c\n\u{1}é€😀/");
        assert_eq!(to_canonical_string(&v), "\"a\\\"b\\\\c\\n\\u0001é€😀/\"");
    }
}
