//! Quoting for hand-written YAML and TOML. A JSON string is a valid YAML double-quoted scalar
//! and a valid TOML basic string (serde_json escapes `"`, `\` and control characters only, with
//! escapes both formats accept), so every string value is written that way.

/// `s` as a double-quoted YAML / TOML string.
pub fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_valid_toml_and_yaml() {
        let s = "a\"b\\c\u{1}d:é";
        let toml_doc = format!("k = {}\n", q(s));
        let v: toml::Table = toml::from_str(&toml_doc).unwrap();
        assert_eq!(v["k"].as_str(), Some(s));
        let y: std::collections::BTreeMap<String, String> =
            serde_saphyr::from_str(&format!("k: {}\n", q(s))).unwrap();
        assert_eq!(y["k"], s);
    }
}
