//! The mirror benchmark: `berth mirror` against `skopeo sync --all` and `crane copy
//! --all-tags` (the Go peer, one per repository) on the same image set, cold and warm, into a CNCF Distribution with TLS (CA + leaf) and htpasswd; plus the peak
//! RSS of `berth mirror` copying only a 500 MiB image; plus a profile-shaped set (18 images
//! of 1–80 MiB, `images::build_profile`), cold and warm. Ignored by default; run it with
//! `bench/mirror.sh` (a release build), which writes the results into `BENCHMARKS.md`.
//!
//! Knobs (environment): `BERTH_BENCH_REPS` (repetitions, default 5, at least 3),
//! `BERTH_BENCH_BIG_MIB` (size of the big layer, default 500), `BERTH_BENCH_ALT_JOBS`
//! (the second `--jobs` value, default 1), `BERTH_BENCH_OUT` (the Markdown file whose
//! `<!-- bench-mirror:begin -->`…`<!-- bench-mirror:end -->` section is replaced; default
//! the workspace's `BENCHMARKS.md`), `BERTH_BENCH_SETS` (which sets to run, default
//! `main,big,profile`; the report needs all three, a subset only prints its runs).
//!
//! Every tool runs under `/usr/bin/time -f "%e %M %U %S"` (peak RSS in KB, user and system
//! CPU); the wall time is measured around that process with a monotonic clock (ms).
//! Each cold run gets a new, empty destination registry (and, for skopeo, an empty
//! blob-info cache); the warm run is the immediate rerun into the same registry. The order
//! of the tools rotates with every repetition. Every cold run is checked: the manifest
//! digest of every image at its target (read by skopeo) equals the source's.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use berth_testkit::bench::{
    cmd_line, distribution_version, env_usize, loadavg, machine, median, verdict, write_section,
};
use berth_testkit::crane::Crane;
use berth_testkit::images::{self, Fixture, FixtureRef};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, require_tool};
use serde_json::Value;

const USER: &str = "bench";
const PASS: &str = "bench-pass-7f3a";
/// Where both tools put the images in the destination: `DST/edge/library/NAME:TAG`.
const DEST_PREFIX: &str = "edge/library";
/// skopeo's blob-info cache for root (known blob locations: it skips or mounts blobs).
const SKOPEO_BLOB_CACHE: &str = "/var/lib/containers/cache/blob-info-cache-v1.boltdb";
const BEGIN: &str = "<!-- bench-mirror:begin -->";
const END: &str = "<!-- bench-mirror:end -->";

/// One measured process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    wall: f64,
    rss_kb: u64,
    cpu: f64,
}

/// Runs `cmd` (program, arguments, environment) under `/usr/bin/time`; panics (with its
/// output) unless it exits 0.
fn timed(time: &Path, scratch: &Path, cmd: Command, what: &str) -> (Sample, Vec<u8>) {
    let tf = scratch.join("time.out");
    let _ = std::fs::remove_file(&tf);
    let mut t = Command::new(time);
    t.arg("-f").arg("%e %M %U %S").arg("-o").arg(&tf);
    t.arg(cmd.get_program()).args(cmd.get_args());
    t.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    let start = Instant::now();
    let out = t
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let wall = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&tf).expect("read /usr/bin/time output");
    let f: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(f.len(), 4, "unexpected /usr/bin/time output: {text}");
    (
        Sample {
            wall,
            rss_kb: f[1] as u64,
            cpu: f[2] + f[3],
        },
        out.stdout,
    )
}

/// `skopeo sync --all --src yaml --dest docker … SYNC_YAML DST/edge/library`, isolated.
fn skopeo_sync(iso: &skopeo::Isolated, yaml: &Path, dst: &Distribution) -> Command {
    let mut c = iso.command("sync");
    c.args(["--all", "--src", "yaml", "--dest", "docker"])
        .arg("--dest-cert-dir")
        .arg(&dst.certs().unwrap().cert_dir)
        .arg("--dest-creds")
        .arg(format!("{USER}:{PASS}"))
        .arg("--dest-authfile")
        .arg(iso.authfile())
        .arg("--src-authfile")
        .arg(iso.authfile())
        .arg(yaml)
        .arg(format!("{}/{DEST_PREFIX}", dst.host()));
    c
}

/// The skopeo `--src yaml` file: every repository of `refs` at `src`, all tags.
fn write_sync_yaml(path: &Path, src: &Distribution, refs: &[&FixtureRef]) {
    let mut names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    names.dedup();
    let mut y = format!("{}:\n  tls-verify: false\n  images:\n", src.host());
    for n in names {
        y.push_str(&format!("    library/{n}: []\n"));
    }
    std::fs::write(path, y).unwrap();
}

/// A profile listing `refs` at `src/library/NAME:TAG`.
fn write_profile(path: &Path, src: &Distribution, refs: &[&FixtureRef]) {
    let mut text = String::from(
        "name: bench-mirror\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n",
    );
    for r in refs {
        text.push_str(&format!(
            "            - image: {}/library/{}:{}\n",
            src.host(),
            r.name,
            r.tag
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// User data: `externalRegistries` with the destination's CA and credentials, and the rule
/// `SRC/library` → `DST/edge/library` (where skopeo sync puts them).
fn write_user_data(path: &Path, src: &Distribution, dst: &Distribution) {
    let ca: String = dst
        .certs()
        .unwrap()
        .ca_pem
        .lines()
        .map(|l| format!("            {l}\n"))
        .collect();
    let text = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {dst}/edge\n        username: {USER}\n        password: {PASS}\n        certificates:\n          - |\n{ca}    registryMappingRules:\n      \"{src}/library\": \"{dst}/{DEST_PREFIX}\"\n",
        dst = dst.host(),
        src = src.host(),
    );
    std::fs::write(path, text).unwrap();
}

/// `berth mirror` in the isolated environment, with `HOME` an empty `home` directory.
fn berth_mirror(home: &Path, profile: &Path, user_data: &Path, jobs: Option<usize>) -> Command {
    std::fs::create_dir_all(home).unwrap();
    let mut c = common::command(home);
    c.arg("mirror")
        .arg("--profile")
        .arg(profile)
        .arg("--user-data")
        .arg(user_data)
        .arg("--src-tls-verify=false")
        .args(["--output", "json"]);
    if let Some(j) = jobs {
        c.arg("--jobs").arg(j.to_string());
    }
    c
}

/// Every image of `refs` is at `DST/edge/library/NAME:TAG` with the source's digest.
fn check_targets(dst: &Distribution, refs: &[&FixtureRef]) {
    let opts = SkopeoOpts::for_registry(dst);
    for r in refs {
        let target = format!("docker://{}/{DEST_PREFIX}/{}:{}", dst.host(), r.name, r.tag);
        assert_eq!(skopeo::digest_of(&target, &opts), r.digest, "{target}");
    }
}

/// Sum of sizes of the distinct blobs (manifests, configs, layers) of `refs`.
fn distinct_bytes(refs: &[&FixtureRef]) -> u64 {
    let mut seen = BTreeMap::new();
    for r in refs {
        seen.insert(r.digest.clone(), r.size);
        for m in &r.manifests {
            seen.insert(m.manifest.digest.clone(), m.manifest.size);
            seen.insert(m.config.digest.clone(), m.config.size);
            for l in &m.layers {
                seen.insert(l.digest.clone(), l.size);
            }
        }
    }
    seen.values().sum()
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Tool {
    Skopeo,
    Crane,
    Berth,
    BerthAltJobs,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Run {
    Cold,
    Warm,
    BigCold,
    ProfileCold,
    ProfileWarm,
}

impl Run {
    const ALL: [Run; 5] = [
        Run::Cold,
        Run::Warm,
        Run::BigCold,
        Run::ProfileCold,
        Run::ProfileWarm,
    ];

    fn warm(self) -> bool {
        matches!(self, Run::Warm | Run::ProfileWarm)
    }
}

struct Bench {
    time: PathBuf,
    scratch: tempfile::TempDir,
    src: Distribution,
    skopeo: skopeo::Isolated,
    alt_jobs: usize,
    samples: BTreeMap<(Tool, Run), Vec<Sample>>,
    log: Vec<String>,
}

impl Bench {
    fn record(&mut self, tool: Tool, run: Run, rep: usize, s: Sample, note: &str) {
        let line = format!(
            "| {rep} | {} | {} | {:.3} | {:.1} | {:.2} | {note} |",
            self.tool_name(tool),
            run_name(run),
            s.wall,
            s.rss_kb as f64 / 1024.0,
            s.cpu
        );
        eprintln!("{line}");
        self.log.push(line);
        self.samples.entry((tool, run)).or_default().push(s);
    }

    fn tool_name(&self, t: Tool) -> String {
        match t {
            Tool::Skopeo => "skopeo sync --all".into(),
            Tool::Crane => "crane copy --all-tags (one per repository)".into(),
            Tool::Berth => "berth mirror (--jobs 8, default)".into(),
            Tool::BerthAltJobs => format!("berth mirror --jobs {}", self.alt_jobs),
        }
    }

    /// A cold run into a new registry, then (unless `runs` is only a cold one) the warm rerun.
    fn cold_warm(&mut self, tool: Tool, refs: &[&FixtureRef], rep: usize, runs: &[Run]) {
        let dst = Distribution::tls_htpasswd(USER, PASS);
        let dir = self
            .scratch
            .path()
            .join(format!("{tool:?}-{rep}-{:?}", runs[0]));
        std::fs::create_dir_all(&dir).unwrap();
        match tool {
            Tool::Skopeo => {
                let yaml = dir.join("sync.yaml");
                write_sync_yaml(&yaml, &self.src, refs);
                for &run in runs {
                    if !run.warm() {
                        match std::fs::remove_file(SKOPEO_BLOB_CACHE) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => panic!("cannot remove {SKOPEO_BLOB_CACHE}: {e}"),
                        }
                    }
                    let (s, _) = timed(
                        &self.time,
                        &dir,
                        skopeo_sync(&self.skopeo, &yaml, &dst),
                        "skopeo sync",
                    );
                    if !run.warm() {
                        check_targets(&dst, refs);
                    }
                    self.record(tool, run, rep, s, "");
                }
            }
            Tool::Crane => {
                // crane has no sync: one `crane copy --all-tags` per repository, in sequence,
                // timed as one command; its own HOME and Docker config, trusting the
                // destination's CA (the plain-HTTP source is reached over http).
                let crane = Crane::new().with_ca(&dst.certs().unwrap().ca_path);
                crane.login(&dst.host(), USER, PASS);
                let mut names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
                names.sort();
                names.dedup();
                let script = names
                    .iter()
                    .map(|n| {
                        format!(
                            "\"$CRANE\" copy --all-tags {}/library/{n} {}/{DEST_PREFIX}/{n}",
                            self.src.host(),
                            dst.host()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" && ");
                for &run in runs {
                    let (s, _) = timed(&self.time, &dir, crane.shell(&script), "crane copy");
                    if !run.warm() {
                        check_targets(&dst, refs);
                    }
                    self.record(tool, run, rep, s, "");
                }
            }
            Tool::Berth | Tool::BerthAltJobs => {
                let profile = dir.join("profile.yaml");
                let ud = dir.join("user-data.yaml");
                write_profile(&profile, &self.src, refs);
                write_user_data(&ud, &self.src, &dst);
                let jobs = (tool == Tool::BerthAltJobs).then_some(self.alt_jobs);
                for &run in runs {
                    let (s, out) = timed(
                        &self.time,
                        &dir,
                        berth_mirror(&dir.join("home"), &profile, &ud, jobs),
                        "berth mirror",
                    );
                    let v: Value = serde_json::from_slice(&out).expect("berth mirror JSON");
                    let want = if run.warm() { "present" } else { "copied" };
                    let imgs = v["images"].as_array().expect("images");
                    assert_eq!(imgs.len(), refs.len(), "{v}");
                    for i in imgs {
                        assert_eq!(i["status"], want, "{run:?}: {i}");
                    }
                    if !run.warm() {
                        check_targets(&dst, refs);
                    }
                    let note = format!(
                        "{} MB moved, blobs {}",
                        v["bytes"].as_u64().unwrap_or(0) / 1_000_000,
                        v["blobs"]
                    );
                    self.record(tool, run, rep, s, &note);
                }
            }
        }
    }

    fn med(&self, tool: Tool, run: Run, f: impl Fn(&Sample) -> f64) -> Option<f64> {
        self.samples
            .get(&(tool, run))
            .map(|v| median(&v.iter().map(f).collect::<Vec<_>>()))
    }

    fn max_rss_mb(&self, tool: Tool, run: Run) -> Option<f64> {
        self.samples
            .get(&(tool, run))
            .and_then(|v| v.iter().map(|s| s.rss_kb).max())
            .map(|k| k as f64 / 1024.0)
    }
}

fn run_name(r: Run) -> &'static str {
    match r {
        Run::Cold => "cold",
        Run::Warm => "warm",
        Run::BigCold => "cold, big:1 only",
        Run::ProfileCold => "cold, profile set",
        Run::ProfileWarm => "warm, profile set",
    }
}

/// `curl` monolithic upload (POST, then PUT `?digest=` with the whole body) of the big
/// layer into a fresh destination: Distribution's own ingest ceiling on one stream.
fn ingest_ceiling(time: &Path, scratch: &Path, blob: &Path, digest: &str) -> Sample {
    let curl = require_tool("curl", "curl");
    let dst = Distribution::tls_htpasswd(USER, PASS);
    let ca = &dst.certs().unwrap().ca_path;
    let post = Command::new(&curl)
        .args(["-sS", "-f", "-o", "/dev/null", "-D", "-", "-X", "POST"])
        .arg("--cacert")
        .arg(ca)
        .arg("-u")
        .arg(format!("{USER}:{PASS}"))
        .arg(format!("{}/v2/ceiling/blobs/uploads/", dst.url()))
        .output()
        .expect("curl POST");
    assert!(post.status.success(), "{post:?}");
    let headers = String::from_utf8_lossy(&post.stdout).to_string();
    let loc = headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Location in {headers}"));
    let loc = if loc.starts_with('/') {
        format!("{}{loc}", dst.url())
    } else {
        loc
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let mut put = Command::new(&curl);
    put.args(["-sS", "-f", "-o", "/dev/null", "-X", "PUT"])
        .arg("--cacert")
        .arg(ca)
        .arg("-u")
        .arg(format!("{USER}:{PASS}"))
        .args(["-H", "Content-Type: application/octet-stream"])
        .arg("--data-binary")
        .arg(format!("@{}", blob.display()))
        .arg(format!("{loc}{sep}digest={digest}"));
    timed(time, scratch, put, "curl PUT").0
}

#[test]
#[ignore = "benchmark: run bench/mirror.sh (release build, several minutes)"]
fn bench_mirror() {
    let reps = env_usize("BERTH_BENCH_REPS", 5).max(3);
    let big_mib = env_usize("BERTH_BENCH_BIG_MIB", 500);
    let alt_jobs = env_usize("BERTH_BENCH_ALT_JOBS", 1).clamp(1, 256);
    let out_path = std::env::var_os("BERTH_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md"));
    let time = require_tool("/usr/bin/time", "time");
    let load_start = loadavg();
    let started = Instant::now();

    let scratch = tempfile::Builder::new()
        .prefix("berth-bench-")
        .tempdir()
        .unwrap();
    let set: Fixture = images::build_set(&scratch.path().join("set"));
    let big: Fixture = images::build_big(&scratch.path().join("big"), big_mib);
    let profile: Fixture = images::build_profile(&scratch.path().join("profile"));
    let src = Distribution::plain();
    images::push_with_skopeo(&set, &src, "library");
    images::push_with_skopeo(&big, &src, "library");
    images::push_with_skopeo(&profile, &src, "library");
    let sets = std::env::var("BERTH_BENCH_SETS").unwrap_or_else(|_| "main,big,profile".into());
    let run_set = |name: &str| sets.split(',').any(|s| s.trim() == name);
    let profile_refs: Vec<&FixtureRef> = profile.refs.iter().collect();
    let profile_bytes = distinct_bytes(&profile_refs);
    let all: Vec<&FixtureRef> = set.refs.iter().chain(big.refs.iter()).collect();
    let big_ref = big.get("big", "1");
    let big_only = vec![big_ref];
    let all_bytes = distinct_bytes(&all);
    let big_bytes = distinct_bytes(&big_only);
    let big_layer = big_ref.manifests[0]
        .layers
        .iter()
        .max_by_key(|l| l.size)
        .unwrap()
        .clone();

    let mut b = Bench {
        time: time.clone(),
        scratch,
        src,
        skopeo: skopeo::Isolated::new(),
        alt_jobs,
        samples: BTreeMap::new(),
        log: Vec::new(),
    };
    let tools = [Tool::Skopeo, Tool::Crane, Tool::Berth, Tool::BerthAltJobs];
    for rep in 1..=reps {
        // rotate the order: each tool goes first, second and third in turn
        if run_set("main") {
            for k in 0..tools.len() {
                let tool = tools[(k + rep - 1) % tools.len()];
                b.cold_warm(tool, &all, rep, &[Run::Cold, Run::Warm]);
            }
        }
        if run_set("big") {
            for k in 0..2 {
                let tool = [Tool::Skopeo, Tool::Berth][(k + rep - 1) % 2];
                b.cold_warm(tool, &big_only, rep, &[Run::BigCold]);
            }
        }
        if run_set("profile") {
            for k in 0..tools.len() {
                let tool = tools[(k + rep - 1) % tools.len()];
                b.cold_warm(
                    tool,
                    &profile_refs,
                    rep,
                    &[Run::ProfileCold, Run::ProfileWarm],
                );
            }
        }
    }
    if ["main", "big", "profile"].iter().any(|s| !run_set(s)) {
        for run in Run::ALL {
            let sk = b.med(Tool::Skopeo, run, |s| s.wall);
            for tool in tools {
                if let (Some(w), Some(sk)) = (b.med(tool, run, |s| s.wall), sk) {
                    eprintln!(
                        "{} {}: {w:.3} s, skopeo {sk:.3} s = {:.2}x",
                        b.tool_name(tool),
                        run_name(run),
                        sk / w
                    );
                }
            }
        }
        eprintln!("BERTH_BENCH_SETS={sets}: a subset, nothing written");
        return;
    }
    let mut ceiling = Vec::new();
    for _ in 0..reps {
        let s = ingest_ceiling(
            &time,
            b.scratch.path(),
            &big.layout.blob_path(&big_layer.digest),
            &big_layer.digest,
        );
        ceiling.push(s.wall);
    }
    let ceiling_mbps = big_layer.size as f64 / 1e6 / median(&ceiling);
    let load_end = loadavg();

    // ---- the report ----
    let mbps = |bytes: u64, wall: f64| bytes as f64 / 1e6 / wall;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Generated by `bench/mirror.sh` ({} repetitions, median; {:.0} s in all). Machine: {}. \
         Load average at start / end: {load_start} / {load_end}. Peers: {}, crane {}, Distribution {}.\n",
        reps,
        started.elapsed().as_secs_f64(),
        machine(),
        cmd_line("skopeo", &["--version"]),
        cmd_line(
            berth_testkit::require_go_peer("crane").to_str().unwrap(),
            &["version"]
        ),
        distribution_version(),
    );
    let _ = writeln!(
        t,
        "Image set: `base:1`, `base:2` (OCI), `app:1` (Docker schema2), `multi:1` (OCI index, 2 \
         platforms), `multi:1-docker` (manifest list), `big:1` ({big_mib} MiB incompressible \
         layer): {} images, **{:.1} MB of distinct blobs**. Source: Distribution, plain HTTP. \
         Destination: Distribution with TLS (CA + leaf) and htpasswd, `DST/{DEST_PREFIX}/NAME:TAG`. \
         MB/s = distinct blob bytes / wall time (10^6 bytes).\n",
        all.len(),
        all_bytes as f64 / 1e6
    );
    let _ = writeln!(
        t,
        "Profile set (`images::build_profile`, shaped like an edge cluster profile: many small \
         images, most bytes in a few large layers): {} images ({} of them two-platform OCI \
         indexes), application layers of {} MiB, each over a shared base layer of real files \
         and a small layer of real files: **{:.1} MB of distinct blobs**, the largest blob {:.0}% \
         of them.\n",
        profile_refs.len(),
        images::PROFILE_IMAGES.iter().filter(|p| p.2).count(),
        images::PROFILE_IMAGES
            .iter()
            .map(|p| p.1.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        profile_bytes as f64 / 1e6,
        100.0
            * images::PROFILE_IMAGES
                .iter()
                .map(|p| p.1)
                .max()
                .unwrap_or(0) as f64
            * 1048576.0
            / profile_bytes as f64,
    );
    let _ = writeln!(
        t,
        "| tool | run | median wall s | MB/s | peak RSS MB (max of runs) | CPU s (user+sys) | skopeo / tool |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|");
    for run in Run::ALL {
        let bytes = match run {
            Run::BigCold => big_bytes,
            Run::ProfileCold | Run::ProfileWarm => profile_bytes,
            _ => all_bytes,
        };
        let sk = b.med(Tool::Skopeo, run, |s| s.wall);
        for tool in tools {
            let Some(w) = b.med(tool, run, |s| s.wall) else {
                continue;
            };
            let ratio = match (tool, sk) {
                (Tool::Skopeo, _) => "1.00×".to_string(),
                (_, Some(s)) => format!("**{:.2}×**", s / w),
                _ => "–".into(),
            };
            let rate = if run.warm() {
                "– (nothing moves)".to_string()
            } else {
                format!("{:.0}", mbps(bytes, w))
            };
            let _ = writeln!(
                t,
                "| {} | {} | {:.3} | {rate} | {:.1} | {:.2} | {ratio} |",
                b.tool_name(tool),
                run_name(run),
                w,
                b.max_rss_mb(tool, run).unwrap_or(0.0),
                b.med(tool, run, |s| s.cpu).unwrap_or(0.0),
            );
        }
    }
    let _ = writeln!(
        t,
        "| `curl` monolithic PUT of the {big_mib} MiB layer (Distribution's ingest ceiling) | one blob | {:.3} | {:.0} | – | – | – |\n",
        median(&ceiling),
        ceiling_mbps
    );

    let w = |tool, run| b.med(tool, run, |s| s.wall).unwrap();
    // The goals are against the fastest peer of each run (skopeo sync or crane copy).
    let peer = |run| w(Tool::Skopeo, run).min(w(Tool::Crane, run));
    let cold_ratio = peer(Run::Cold) / w(Tool::Berth, Run::Cold);
    let warm_ratio = peer(Run::Warm) / w(Tool::Berth, Run::Warm);
    let pcold_ratio = peer(Run::ProfileCold) / w(Tool::Berth, Run::ProfileCold);
    let pwarm_ratio = peer(Run::ProfileWarm) / w(Tool::Berth, Run::ProfileWarm);
    let big_rss = b.max_rss_mb(Tool::Berth, Run::BigCold).unwrap();
    let _ = writeln!(t, "| target | measured | result |\n|---|---|---|");
    let _ = writeln!(
        t,
        "| cold: ≥ 1.5× faster than the fastest peer (skopeo, crane), profile set ({} images) | {pcold_ratio:.2}× (berth {:.0} MB/s, peer {:.0} MB/s) | {} |",
        profile_refs.len(),
        mbps(profile_bytes, w(Tool::Berth, Run::ProfileCold)),
        mbps(profile_bytes, peer(Run::ProfileCold)),
        verdict(pcold_ratio >= 1.5)
    );
    let _ = writeln!(
        t,
        "| cold: ≥ 1.5× faster than the fastest peer, small set + {big_mib} MiB image (one blob is {:.0}% of the bytes: one upload stream) | {cold_ratio:.2}× (berth {:.0} MB/s, peer {:.0} MB/s, ingest ceiling {ceiling_mbps:.0} MB/s) | {} |",
        100.0 * big_layer.size as f64 / all_bytes as f64,
        mbps(all_bytes, w(Tool::Berth, Run::Cold)),
        mbps(all_bytes, peer(Run::Cold)),
        verdict(cold_ratio >= 1.5)
    );
    let _ = writeln!(
        t,
        "| warm: ≥ 5× faster than the fastest peer, profile set | {pwarm_ratio:.2}× ({:.3} s vs {:.3} s) | {} |",
        w(Tool::Berth, Run::ProfileWarm),
        peer(Run::ProfileWarm),
        verdict(pwarm_ratio >= 5.0)
    );
    let _ = writeln!(
        t,
        "| warm: ≥ 5× faster than the fastest peer, small set + {big_mib} MiB image | {warm_ratio:.2}× ({:.3} s vs {:.3} s) | {} |",
        w(Tool::Berth, Run::Warm),
        peer(Run::Warm),
        verdict(warm_ratio >= 5.0)
    );
    let _ = writeln!(
        t,
        "| peak RSS ≤ 64 MB copying the {big_mib} MiB image | {big_rss:.1} MB (max of {reps} runs) | {} |\n",
        verdict(big_rss <= 64.0)
    );
    let _ = writeln!(
        t,
        "<details><summary>Every run (rep, tool, run, wall s, peak RSS MB, CPU s, berth's own counters)</summary>\n\n\
         | rep | tool | run | wall s | RSS MB | CPU s | notes |\n|---|---|---|---|---|---|---|"
    );
    for l in &b.log {
        let _ = writeln!(t, "{l}");
    }
    let _ = writeln!(
        t,
        "\n`curl` ceiling runs (s): {}\n\n</details>",
        ceiling
            .iter()
            .map(|c| format!("{c:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    eprintln!("\n{t}");
    write_section(&out_path, "Mirror", BEGIN, END, &t);
    eprintln!("results written to {}", out_path.display());
}
