//! What carrying attached artifacts costs `berth mirror`: the profile-shaped set
//! (`images::build_profile`, 18 images) in a `berth serve` source, an SBOM (made from the
//! test's own files) attached with oras to every image, mirrored into a fresh `berth serve`
//! target (TLS + htpasswd) with `--referrers=false` and with them, cold then warm. Requests
//! are counted exactly at both ends from each server's `berth_http_requests_total`; wall
//! time around the process. Ignored by default: `cargo test --release -p berth --test
//! bench_referrers -- --ignored` writes the `<!-- bench-referrers:begin -->` section of
//! `BERTH_BENCH_OUT` (default the workspace's `BENCHMARKS.md`). `BERTH_BENCH_SET=small`
//! uses the small set instead.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_testkit::bench::{loadavg, machine, write_section};
use berth_testkit::berth_serve::{BerthServe, ServeOpts};
use berth_testkit::images;
use berth_testkit::oras::{Oras, Target};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{require_tool, sha256_digest};
use common::{berth, indent};
use serde_json::Value;

const USER: &str = "bench";
const PASS: &str = "Bench-Referrers-Pw1";
const BEGIN: &str = "<!-- bench-referrers:begin -->";
const END: &str = "<!-- bench-referrers:end -->";

/// The sum of `berth_http_requests_total` of a `berth serve`.
fn requests(serve: &BerthServe, tls: bool) -> u64 {
    let curl = require_tool("curl", "curl");
    let mut c = std::process::Command::new(curl);
    c.args(["-sSf"]);
    if tls {
        c.arg("--cacert")
            .arg(serve.ca())
            .arg("-u")
            .arg(format!("{USER}:{PASS}"));
    }
    let o = c.arg(format!("{}/metrics", serve.url())).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("berth_http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn start(dir: &Path, tls: bool) -> BerthServe {
    BerthServe::start(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        dir,
        ServeOpts {
            tls,
            user: tls.then(|| (USER.to_string(), PASS.to_string())),
            extra: vec![],
            explicit_realm: false,
        },
    )
}

#[test]
#[ignore = "benchmark: cargo test --release -p berth --test bench_referrers -- --ignored"]
fn bench_referrers() {
    let out_path = std::env::var_os("BERTH_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md"));
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let small = std::env::var("BERTH_BENCH_SET").is_ok_and(|s| s == "small");
    let f = match small {
        true => images::build_set(&w.join("set")),
        false => images::build_profile(&w.join("set")),
    };
    let src = start(&w.join("src"), false);
    let oras = Oras::new();
    let sbom = oras.dir().join("sbom.json");
    let own = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench_referrers.rs"))
        .unwrap();
    std::fs::write(
        &sbom,
        format!(r#"{{"files":[{{"sha256":"{}"}}]}}"#, sha256_digest(&own)),
    )
    .unwrap();
    for r in &f.refs {
        let to = format!("docker://{}/library/{}:{}", src.host, r.name, r.tag);
        let from = f.skopeo_source(r, &w.join("push").join(&r.ref_name));
        skopeo::copy_all(&from, &to, &SkopeoOpts::insecure());
        let subject = format!("{}/library/{}@{}", src.host, r.name, r.digest);
        oras.ok(
            "attach",
            &Target::plain(),
            &[
                "--artifact-type",
                "application/spdx+json",
                &subject,
                "sbom.json:application/spdx+json",
            ],
        );
    }
    let profile = w.join("profile.yaml");
    let mut text = String::from(
        "name: bench\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n",
    );
    for r in &f.refs {
        let _ = writeln!(
            text,
            "            - image: {}/library/{}:{}",
            src.host, r.name, r.tag
        );
    }
    std::fs::write(&profile, text).unwrap();
    let n = f.refs.len() as f64;
    let mut rows = String::new();
    for referrers in [false, true] {
        let dst = start(&w.join(format!("dst-{referrers}")), true);
        let ud = w.join(format!("ud-{referrers}.yaml"));
        let ca = std::fs::read_to_string(dst.ca()).unwrap();
        std::fs::write(
            &ud,
            format!(
                "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {h}/edge\n        username: {USER}\n        password: {PASS}\n        certificates:\n          - |\n{}    registryMappingRules:\n      \"{}/library\": \"{h}/edge/library\"\n",
                indent(&ca, 12),
                src.host,
                h = dst.host
            ),
        )
        .unwrap();
        for run in ["cold", "warm"] {
            let (s0, d0) = (requests(&src, false), requests(&dst, true));
            let flag = format!("--referrers={referrers}");
            let t = Instant::now();
            let o = berth(&[
                "mirror",
                "--profile",
                profile.to_str().unwrap(),
                "--user-data",
                ud.to_str().unwrap(),
                "--src-tls-verify=false",
                &flag,
                "--output",
                "json",
            ]);
            let secs = t.elapsed().as_secs_f64();
            assert!(o.status.success(), "{o:?}");
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            let attached: u64 = v["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["attached"].as_u64().unwrap())
                .sum();
            assert_eq!(attached, if referrers { f.refs.len() as u64 } else { 0 });
            let (s, d) = (
                requests(&src, false) - s0 - 1,
                requests(&dst, true) - d0 - 1,
            );
            let _ = writeln!(
                rows,
                "| {flag} | {run} | {attached} | {s} ({:.1}) | {d} ({:.1}) | {secs:.2} |",
                s as f64 / n,
                d as f64 / n
            );
        }
    }
    let text = format!(
        "{} images ({}), an SBOM attached to each; source and target `berth serve` (the target TLS + htpasswd), \
         `berth mirror`; requests counted by the servers (the `/metrics` read itself excluded).\n\
         Machine: {}; load at the end: {}.\n\n\
         | flag | run | artifacts | source requests (per image) | target requests (per image) | seconds |\n\
         |---|---|---|---|---|---|\n{rows}",
        f.refs.len(),
        if small {
            "the small set"
        } else {
            "the profile set"
        },
        machine(),
        loadavg()
    );
    println!("{text}");
    write_section(
        &out_path,
        "Attached artifacts: mirror cost",
        BEGIN,
        END,
        &text,
    );
}
