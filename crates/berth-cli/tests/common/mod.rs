//! Shared by the integration tests of the `berth` binary.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs the `berth` binary with no credentials or CA settings of the caller's environment
/// (no REGISTRY_AUTH_FILE, SSL_CERT_FILE/DIR; HOME does not exist).
pub fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", "/nonexistent")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("run berth")
}

/// Every line of `s` indented by `n` spaces (a PEM block inside YAML).
pub fn indent(s: &str, n: usize) -> String {
    s.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}
