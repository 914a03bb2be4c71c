//! The agent benchmark: `berth agent apply` against `ctr images pull` of the same images
//! from a CNCF Distribution with TLS (CA + leaf) and htpasswd, each run into a new private
//! containerd 1.6 (native snapshotter, namespace k8s.io); and the preload import
//! (`berth agent apply --preload-dir` of oci-archives) against `ctr images import` of the
//! same files. Ignored by default; `bench/agent.sh` runs it (release build) and writes the
//! results into `BENCHMARKS.md` between `<!-- bench-agent:begin -->` and `…:end -->`.
//!
//! Knobs: `BERTH_BENCH_REPS` (default 3), `BERTH_BENCH_BIG_MIB` (the big image's random
//! layer, default 100), `BERTH_BENCH_OUT` (default the workspace's `BENCHMARKS.md`).
//!
//! ctr pulls the images one after the other (one `ctr images pull` per image, as a script
//! would), and, as a second baseline, all at once (one process per image, concurrently).
//! Every run is checked: each image is listed by `ctr images ls` with the source's digest.

mod common;
#[path = "../../berth-containerd/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use berth_testkit::images::{self, Fixture, FixtureRef};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, require_tool};
use common::indent;
use support::TestContainerd;

const NS: &str = "k8s.io";
const USER: &str = "bench";
const PASS: &str = "bench-pass-agent";
const BEGIN: &str = "<!-- bench-agent:begin -->";
const END: &str = "<!-- bench-agent:end -->";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `cmd`, which must succeed; its wall time in seconds.
fn timed(mut cmd: Command, what: &str) -> f64 {
    let t = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().expect(what);
    let s = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

struct Set {
    refs: Vec<FixtureRef>,
    /// Registry reference (`HOST/edge/library/NAME:TAG`) → the profile's name.
    names: Vec<(String, String)>,
}

fn all_refs(fs: &[&Fixture]) -> Vec<FixtureRef> {
    fs.iter().flat_map(|f| f.refs.iter().cloned()).collect()
}

fn write_profile(path: &Path, refs: &[FixtureRef]) {
    let mut text = String::from(
        "name: bench-agent\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n",
    );
    for r in refs {
        let _ = writeln!(
            text,
            "            - image: registry.example.com/library/{}:{}",
            r.name, r.tag
        );
    }
    std::fs::write(path, text).unwrap();
}

fn write_user_data(path: &Path, reg: &Distribution) {
    let text = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {host}/edge\n        username: {USER}\n        password: {PASS}\n        certificates:\n          - |\n{ca}    registryMappingRules:\n      \"registry.example.com/library\": \"{host}/edge/library\"\n",
        host = reg.host(),
        ca = indent(&reg.certs().unwrap().ca_pem, 12),
    );
    std::fs::write(path, text).unwrap();
}

/// `berth agent apply` into `cd` (native snapshotter, JSON output) with `extra` arguments,
/// in the isolated environment (`HOME` an empty directory beside containerd's).
fn berth_apply(cd: &TestContainerd, ud: &Path, profile: &Path, extra: &[&str]) -> Command {
    let home = cd.dir.path().join("berth-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = common::command(&home);
    c.args(["agent", "apply", "--user-data"]);
    c.arg(ud).arg("--profile").arg(profile);
    c.arg("--containerd-socket").arg(&cd.socket);
    c.args(["--snapshotter", "native", "--output", "json"])
        .args(extra);
    c
}

/// `ctr images pull` of `target` (the registry's CA through the hosts.toml files in
/// `hosts`, see [`hosts_dir`]; basic auth).
fn ctr_pull(cd: &TestContainerd, hosts: &str, target: &str) -> Command {
    let user = format!("{USER}:{PASS}");
    let args = ["images", "pull", "--hosts-dir", hosts, "--user", &user];
    let mut c = ctr_cmd(cd, &args);
    c.args(["--snapshotter", "native", target]);
    c
}

fn ctr_cmd(cd: &TestContainerd, args: &[&str]) -> Command {
    let mut c = Command::new("ctr");
    c.arg("-a").arg(&cd.socket).args(["-n", NS]).args(args);
    c
}

/// Every `(name, digest)` is listed by `ctr images ls`.
fn check(cd: &TestContainerd, want: &[(String, String)]) {
    let listed: BTreeMap<String, String> = cd.images(NS).into_iter().collect();
    for (name, digest) in want {
        assert_eq!(listed.get(name), Some(digest), "{name} in {listed:?}");
    }
}

fn hosts_dir(cd: &TestContainerd, reg: &Distribution) -> String {
    let dir = cd.dir.path().join("certs.d");
    let host = dir.join(reg.host());
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(
        host.join("hosts.toml"),
        format!(
            "server = \"https://{h}\"\n[host.\"https://{h}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{}\"\n",
            reg.certs().unwrap().ca_path.display(),
            h = reg.host(),
        ),
    )
    .unwrap();
    dir.display().to_string()
}

fn ratio_line(out: &mut String, what: &str, berth: f64, peer: f64, peer_name: &str) {
    let r = berth / peer;
    let _ = writeln!(
        out,
        "| {what} | {berth:.2} s | {peer:.2} s ({peer_name}) | {r:.2}× | {} |",
        if r <= 1.1 { "met" } else { "missed" }
    );
}

#[test]
#[ignore = "benchmark: run bench/agent.sh (release build, a few minutes)"]
fn bench_agent() {
    require_tool("ctr", "containerd");
    let reps = env_usize("BERTH_BENCH_REPS", 3).max(1);
    let big_mib = env_usize("BERTH_BENCH_BIG_MIB", 100);
    let work = tempfile::tempdir().unwrap();
    let small = images::build_set(&work.path().join("set"));
    let big = images::build_big(&work.path().join("big"), big_mib);
    let reg = Distribution::tls_htpasswd(USER, PASS);
    images::push_with_skopeo(&small, &reg, "edge/library");
    images::push_with_skopeo(&big, &reg, "edge/library");
    let refs = all_refs(&[&small, &big]);
    let set = Set {
        names: refs
            .iter()
            .map(|r| {
                (
                    format!("{}/edge/library/{}:{}", reg.host(), r.name, r.tag),
                    format!("registry.example.com/library/{}:{}", r.name, r.tag),
                )
            })
            .collect(),
        refs,
    };
    let profile = work.path().join("profile.yaml");
    write_profile(&profile, &set.refs);
    let ud = work.path().join("user-data.yaml");
    write_user_data(&ud, &reg);
    let want_berth: Vec<(String, String)> = set
        .names
        .iter()
        .zip(&set.refs)
        .map(|((_, n), r)| (n.clone(), r.digest.clone()))
        .collect();
    let want_ctr: Vec<(String, String)> = set
        .names
        .iter()
        .zip(&set.refs)
        .map(|((t, _), r)| (t.clone(), r.digest.clone()))
        .collect();
    let bytes: u64 = small.total_blob_bytes() + big.total_blob_bytes();

    // Preload archives: one oci-archive per image (all its platforms), named as the cluster
    // asks for it; both tools import the same files.
    let pre = work.path().join("preload");
    std::fs::create_dir_all(&pre).unwrap();
    let none = SkopeoOpts::insecure();
    let mut archives = Vec::new();
    for (f, r) in [&small, &big]
        .iter()
        .flat_map(|f| f.refs.iter().map(move |r| (*f, r)))
        .filter(|(_, r)| !r.kind.is_docker())
    {
        let file = pre.join(format!("{}.tar", r.ref_name));
        let scratch = work.path().join("scratch").join(&r.ref_name);
        skopeo::copy(
            &f.skopeo_source(r, &scratch),
            &none,
            &format!(
                "oci-archive:{}:registry.example.com/library/{}:{}",
                file.display(),
                r.name,
                r.tag
            ),
            &none,
            &[],
        );
        archives.push((file, r.clone()));
    }
    let empty_profile = work.path().join("empty-profile.yaml");
    std::fs::write(&empty_profile, "name: preload-only\nlayers: []\n").unwrap();

    let mut berth_pull = Vec::new();
    let mut ctr_seq = Vec::new();
    let mut ctr_par = Vec::new();
    let mut berth_pre = Vec::new();
    let mut ctr_imp = Vec::new();
    for rep in 0..reps {
        let order: Vec<usize> = if rep % 2 == 0 {
            vec![0, 1, 2]
        } else {
            vec![2, 1, 0]
        };
        for tool in order {
            let cd = TestContainerd::start();
            match tool {
                0 => {
                    let s = timed(berth_apply(&cd, &ud, &profile, &[]), "berth agent apply");
                    check(&cd, &want_berth);
                    berth_pull.push(s);
                }
                1 => {
                    let hosts = hosts_dir(&cd, &reg);
                    let t = Instant::now();
                    for (target, _) in &set.names {
                        timed(ctr_pull(&cd, &hosts, target), "ctr images pull");
                    }
                    ctr_seq.push(t.elapsed().as_secs_f64());
                    check(&cd, &want_ctr);
                }
                _ => {
                    let hosts = hosts_dir(&cd, &reg);
                    let t = Instant::now();
                    let children: Vec<_> = set
                        .names
                        .iter()
                        .map(|(target, _)| {
                            ctr_pull(&cd, &hosts, target)
                                .stdout(Stdio::null())
                                .stderr(Stdio::piped())
                                .spawn()
                                .expect("ctr images pull")
                        })
                        .collect();
                    for c in children {
                        let o = c.wait_with_output().unwrap();
                        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                    }
                    ctr_par.push(t.elapsed().as_secs_f64());
                    check(&cd, &want_ctr);
                }
            }
        }
        // Preload: berth imports the directory; ctr imports each file.
        for tool in if rep % 2 == 0 { [0, 1] } else { [1, 0] } {
            let cd = TestContainerd::start();
            let want: Vec<(String, String)> = archives
                .iter()
                .map(|(_, r)| {
                    (
                        format!("registry.example.com/library/{}:{}", r.name, r.tag),
                        r.digest.clone(),
                    )
                })
                .collect();
            if tool == 0 {
                let pre = ["--preload-dir", pre.to_str().unwrap()];
                berth_pre.push(timed(
                    berth_apply(&cd, &ud, &empty_profile, &pre),
                    "berth agent apply --preload-dir",
                ));
            } else {
                let t = Instant::now();
                for (file, _) in &archives {
                    timed(
                        ctr_cmd(
                            &cd,
                            &[
                                "images",
                                "import",
                                "--snapshotter",
                                "native",
                                file.to_str().unwrap(),
                            ],
                        ),
                        "ctr images import",
                    );
                }
                ctr_imp.push(t.elapsed().as_secs_f64());
            }
            check(&cd, &want);
        }
        eprintln!(
            "rep {rep}: berth {:.2} s, ctr seq {:.2} s, ctr par {:.2} s; preload berth {:.2} s, ctr import {:.2} s",
            berth_pull[rep], ctr_seq[rep], ctr_par[rep], berth_pre[rep], ctr_imp[rep]
        );
    }

    let (b, s, p) = (median(&berth_pull), median(&ctr_seq), median(&ctr_par));
    let (bp, ci) = (median(&berth_pre), median(&ctr_imp));
    let ctr_version = Command::new("ctr")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(
        out,
        "Run of `bench/agent.sh`: {} images ({} of them an OCI index with linux/amd64 and linux/arm64; {:.1} MB of distinct blobs, one image with a {big_mib} MiB layer) from Distribution 2.8 with TLS + htpasswd into a new containerd ({ctr_version}, native snapshotter) per run; median of {reps} runs; load average at the end {}.\n",
        set.refs.len(),
        set.refs.iter().filter(|r| r.kind.is_index()).count(),
        bytes as f64 / 1e6,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let _ = writeln!(
        out,
        "| what | berth | peer | berth / peer | target ≤ 1.1× |\n|---|---|---|---|---|"
    );
    ratio_line(
        &mut out,
        "`agent apply` vs `ctr images pull`, one image after the other",
        b,
        s,
        "ctr, sequential",
    );
    ratio_line(
        &mut out,
        "`agent apply` vs `ctr images pull`, all images at once",
        b,
        p,
        "ctr, parallel",
    );
    ratio_line(
        &mut out,
        &format!(
            "preload: `agent apply --preload-dir` vs `ctr images import` ({} oci-archives)",
            archives.len()
        ),
        bp,
        ci,
        "ctr import",
    );
    let _ = writeln!(
        out,
        "\nEvery run: `ctr images ls` lists each image with the source's digest. Runs (s): berth {berth_pull:.2?}; ctr sequential {ctr_seq:.2?}; ctr parallel {ctr_par:.2?}; preload berth {berth_pre:.2?}; ctr import {ctr_imp:.2?}."
    );
    let _ = writeln!(out, "{END}");
    eprintln!("{out}");
    let target = std::env::var("BERTH_BENCH_OUT").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../BENCHMARKS.md")
            .display()
            .to_string()
    });
    let old = std::fs::read_to_string(&target).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(a), Some(z)) => format!("{}{}{}", &old[..a], out.trim_end(), &old[z + END.len()..]),
        _ => format!(
            "{}\n## Agent: `berth agent apply` vs `ctr`\n\n{out}",
            old.trim_end()
        ),
    };
    std::fs::write(&target, new).unwrap();
}
