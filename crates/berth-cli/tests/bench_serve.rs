//! The edge registry benchmark: `berth serve` against CNCF Distribution 2.8 on the same
//! data, in the same run. Ignored by default; run it with `bench/serve.sh` (a release
//! build), which writes the results into `BENCHMARKS.md`.
//!
//! - Blob GET: `curl` downloads the big layer (`BERTH_BENCH_BIG_MIB` MiB, default 256) to
//!   `/dev/null`, one at a time and `BERTH_BENCH_CONCURRENCY` (4) at once; MB/s, median.
//! - Manifest GET: `wrk` (`BERTH_BENCH_WRK_THREADS` 2, `BERTH_BENCH_WRK_CONNS` 32,
//!   `BERTH_BENCH_WRK_SECS` 10) on an OCI manifest, by tag and by digest, with an `Accept`
//!   header listing the OCI and Docker manifest types; requests per second, median.
//! - Peak RSS (`VmHWM` of `/proc/PID/status`) of each server process over all of it.
//! - Pull-through: Distribution in proxy mode (`proxy: remoteurl:`) and `berth serve` with
//!   an upstream, both in front of the same upstream Distribution; every image of the set
//!   (tag addressing) pulled into an OCI layout, by `berth copy` and by `skopeo copy --all`
//!   (the same client for both servers), cold (new proxy, empty storage) then warm; for the
//!   small set + big:1 and for the profile set (`images::build_profile`).
//!
//! Both servers are plain HTTP on 127.0.0.1 with their shipped logging (info, one line per
//! request, to a file); both are seeded by `skopeo copy --all --preserve-digests` from the
//! same upstream. The order of the two servers alternates with every repetition
//! (`BERTH_BENCH_REPS`, default 5, at least 3). `BERTH_BENCH_OUT` names the Markdown file
//! whose `<!-- bench-serve:begin -->`…`<!-- bench-serve:end -->` section is replaced
//! (default the workspace's `BENCHMARKS.md`); `BERTH_BENCH_BERTH` runs another berth
//! binary than this build's (e.g. to compare with an older build). `BERTH_BENCH_PULL_ONLY`
//! runs only the pull-through part and writes nothing (`berth`: only the `berth copy`
//! client; with `BERTH_BENCH_PULL_SET=profile`, on the profile set), for iterating on the
//! proxy; `BERTH_BENCH_KEEP_LOGS=DIR` keeps berth serve's logs of the pull-through runs
//! there.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Instant;

use berth_testkit::bench::{
    cmd_line, distribution_version, env_usize, loadavg, machine, median, peak_rss_kib, verdict,
    write_section,
};
use berth_testkit::images::{self, Fixture, FixtureRef};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, require_tool, sha256_digest};

const BEGIN: &str = "<!-- bench-serve:begin -->";
const END: &str = "<!-- bench-serve:end -->";
/// Every manifest type, as a client that takes any image sends it.
const ACCEPT: &str = "Accept: application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// The berth binary: this build's, or `BERTH_BENCH_BERTH` (e.g. an older build to compare).
fn berth_bin() -> PathBuf {
    std::env::var_os("BERTH_BENCH_BERTH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth")))
}

/// `berth serve --config FILE` (the release binary) on 127.0.0.1, a free port; killed and
/// waited for on drop.
struct BerthServe {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    host: String,
}

impl BerthServe {
    /// Starts it with data in `dir/data`, logs in `dir/serve.log`, and, with `upstream`,
    /// that registry (plain HTTP) as its pull-through upstream.
    fn start(dir: &Path, upstream: Option<&Distribution>) -> BerthServe {
        std::fs::create_dir_all(dir).unwrap();
        let mut cfg = format!(
            "listen: 127.0.0.1:0\ndata: {}\nlog_format: text\n",
            dir.join("data").display()
        );
        if let Some(u) = upstream {
            let _ = write!(
                cfg,
                "proxy:\n  upstreams:\n  - registry: {}\n    insecure: true\n",
                u.host()
            );
        }
        let cfg_path = dir.join("serve.yaml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.join("serve.log")).unwrap();
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut child = common::command_of(&berth_bin(), &home)
            .arg("serve")
            .arg("--config")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn berth serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        // "berth: serving http://127.0.0.1:PORT" once it listens.
        stdout
            .read_line(&mut line)
            .expect("read berth serve stdout");
        let host = line
            .trim()
            .strip_prefix("berth: serving http://")
            .unwrap_or_else(|| {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "berth serve did not start ({line:?}):\n{}",
                    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
                )
            })
            .to_string();
        BerthServe {
            child,
            _stdout: stdout,
            host,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BerthServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Distribution,
    Berth,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Distribution => "Distribution",
            Server::Berth => "berth serve",
        }
    }
}

/// Both servers, first one and then the other, alternating with the repetition.
fn order(rep: usize) -> [Server; 2] {
    if rep % 2 == 1 {
        [Server::Distribution, Server::Berth]
    } else {
        [Server::Berth, Server::Distribution]
    }
}

/// `curl` GET of `url` to /dev/null: (bytes, seconds by curl's own clock).
fn curl_spawn(curl: &Path, url: &str) -> Child {
    Command::new(curl)
        .args([
            "-sS",
            "-f",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total}",
        ])
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn curl")
}

fn curl_wait(c: Child, url: &str, size: u64) -> f64 {
    let out = c.wait_with_output().expect("wait for curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut f = text.split_whitespace();
    let bytes: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let secs: f64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    assert_eq!(bytes, size, "curl {url} received {text}");
    secs
}

/// The sha256 digest of what a GET of `url` returns (curl | sha256sum).
fn curl_digest(url: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg("set -o pipefail; curl -sS -f \"$1\" | sha256sum")
        .arg("bash")
        .arg(url)
        .output()
        .expect("curl | sha256sum");
    assert!(out.status.success(), "{out:?}");
    let s = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", s.split_whitespace().next().unwrap_or_default())
}

/// `wrk` on `url` with the manifest Accept header: requests per second. Panics when any
/// response was not 2xx/3xx.
fn wrk(bin: &Path, url: &str, threads: usize, conns: usize, secs: usize) -> (f64, String) {
    let out = Command::new(bin)
        .arg(format!("-t{threads}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .args(["-H", ACCEPT])
        .arg(url)
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "wrk {url}: {text}");
    assert!(!text.contains("Non-2xx"), "wrk {url}: errors:\n{text}");
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"));
    let latency = text
        .lines()
        .find(|l| l.trim_start().starts_with("Latency"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        .unwrap_or_default();
    (rps, latency)
}

/// The client that pulls through the proxies (the same for both).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Client {
    /// `skopeo copy --all --preserve-digests` into `oci:` (Docker-typed refs: `dir:`).
    Skopeo,
    /// `berth copy` into `oci:` (checks every digest it writes).
    BerthCopy,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Skopeo => "skopeo copy --all",
            Client::BerthCopy => "berth copy",
        }
    }
}

/// Pulls every ref from `prefix` (`docker://HOST/PATH`, then `/NAME:TAG`) into new
/// directories under `out`, one image after the other: wall seconds.
fn pull_all(client: Client, prefix: &str, refs: &[&FixtureRef], out: &Path) -> f64 {
    let o = SkopeoOpts::insecure();
    let start = Instant::now();
    for r in refs {
        let dir = out.join(&r.ref_name);
        std::fs::create_dir_all(&dir).unwrap();
        let src = format!("{prefix}/{}:{}", r.name, r.tag);
        match client {
            Client::Skopeo => {
                let dst = if r.kind.is_docker() {
                    format!("dir:{}", dir.display())
                } else {
                    skopeo::oci_ref(&dir, "x")
                };
                skopeo::copy(&src, &o, &dst, &o, &[]);
            }
            Client::BerthCopy => {
                let home = out.join(".berth-home");
                std::fs::create_dir_all(&home).unwrap();
                let out = common::command_of(&berth_bin(), &home)
                    .arg("copy")
                    .arg("--src-tls-verify=false")
                    .args(["--output", "json"])
                    .arg(&src)
                    .arg(format!("oci:{}:x", dir.display()))
                    .output()
                    .expect("run berth copy");
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success() && text.contains(&r.digest),
                    "berth copy {src}: {text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    start.elapsed().as_secs_f64()
}

/// Every ref is at `prefix/NAME:TAG` with the upstream's digest.
fn check_refs(prefix: &str, refs: &[&FixtureRef]) {
    let o = SkopeoOpts::insecure();
    for r in refs {
        let at = format!("{prefix}/{}:{}", r.name, r.tag);
        assert_eq!(skopeo::digest_of(&at, &o), r.digest, "{at}");
    }
}

/// Samples of one measure for both servers.
#[derive(Default)]
struct Pair {
    dist: Vec<f64>,
    berth: Vec<f64>,
}

impl Pair {
    fn push(&mut self, s: Server, v: f64) {
        match s {
            Server::Distribution => self.dist.push(v),
            Server::Berth => self.berth.push(v),
        }
    }
    fn med(&self) -> (f64, f64) {
        (median(&self.dist), median(&self.berth))
    }
}

fn fmt_list(v: &[f64], prec: usize) -> String {
    v.iter()
        .map(|x| format!("{x:.prec$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Pull-through results: per client, cold and warm wall seconds; the proxies' peak RSS; a
/// table row per run.
struct Pulls {
    cold: Vec<Pair>,
    warm: Vec<Pair>,
    proxy_rss: Pair,
    runs: Vec<String>,
}

/// Pulls `all` through a new proxy of each kind (cold, then warm), `reps` times per client.
fn pull_through(
    reps: usize,
    clients: &[Client],
    upstream: &Distribution,
    all: &[&FixtureRef],
    scratch: &Path,
) -> Pulls {
    let mut cold: Vec<Pair> = clients.iter().map(|_| Pair::default()).collect();
    let mut warm: Vec<Pair> = clients.iter().map(|_| Pair::default()).collect();
    let mut proxy_rss = Pair::default();
    let mut runs: Vec<String> = vec![];
    for rep in 1..=reps {
        for s in order(rep) {
            for (ci, &client) in clients.iter().enumerate() {
                let dir = scratch.join(format!("pull-{rep}-{s:?}-{client:?}"));
                let (prefix, pid, guard): (String, u32, Box<dyn std::any::Any>) = match s {
                    Server::Distribution => {
                        let p = Distribution::proxy(&upstream.url());
                        (
                            format!("docker://{}/library", p.host()),
                            p.pid().unwrap(),
                            Box::new(p),
                        )
                    }
                    Server::Berth => {
                        let b = BerthServe::start(&dir.join("serve"), Some(upstream));
                        (
                            format!(
                                "docker://{}/spectro-images/{}/library",
                                b.host,
                                upstream.host().replace(':', "_")
                            ),
                            b.pid(),
                            Box::new(b),
                        )
                    }
                };
                let c = pull_all(client, &prefix, all, &dir.join("cold"));
                let w = pull_all(client, &prefix, all, &dir.join("warm"));
                check_refs(&prefix, all);
                let rss = peak_rss_kib(pid) as f64 / 1024.0;
                drop(guard);
                cold[ci].push(s, c);
                warm[ci].push(s, w);
                proxy_rss.push(s, rss);
                let line = format!(
                    "| {rep} | {} | {} | {c:.3} | {w:.3} | {rss:.1} |",
                    s.name(),
                    client.name()
                );
                eprintln!("{line}");
                runs.push(line);
                if let Some(keep) = std::env::var_os("BERTH_BENCH_KEEP_LOGS") {
                    let keep = Path::new(&keep);
                    let _ = std::fs::create_dir_all(keep);
                    let _ = std::fs::copy(
                        dir.join("serve/serve.log"),
                        keep.join(format!("pull-{rep}-{client:?}.log")),
                    );
                }
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    Pulls {
        cold,
        warm,
        proxy_rss,
        runs,
    }
}

#[test]
#[ignore = "benchmark: run bench/serve.sh (release build, several minutes)"]
fn bench_serve() {
    let reps = env_usize("BERTH_BENCH_REPS", 5).max(3);
    let big_mib = env_usize("BERTH_BENCH_BIG_MIB", 256);
    let conc = env_usize("BERTH_BENCH_CONCURRENCY", 4).max(2);
    let wrk_t = env_usize("BERTH_BENCH_WRK_THREADS", 2).max(1);
    let wrk_c = env_usize("BERTH_BENCH_WRK_CONNS", 32).max(wrk_t);
    let wrk_d = env_usize("BERTH_BENCH_WRK_SECS", 10).max(1);
    let out_path = std::env::var_os("BERTH_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md"));
    let curl = require_tool("curl", "curl");
    let wrk_bin = require_tool("wrk", "wrk");
    let load_start = loadavg();
    let started = Instant::now();

    let scratch = tempfile::Builder::new()
        .prefix("berth-bench-serve-")
        .tempdir()
        .unwrap();
    let set: Fixture = images::build_set(&scratch.path().join("set"));
    let big: Fixture = images::build_big(&scratch.path().join("big"), big_mib);
    let profile: Fixture = images::build_profile(&scratch.path().join("profile"));
    let all: Vec<&FixtureRef> = set.refs.iter().chain(big.refs.iter()).collect();
    let profile_refs: Vec<&FixtureRef> = profile.refs.iter().collect();
    let upstream = Distribution::plain();
    images::push_with_skopeo(&set, &upstream, "library");
    images::push_with_skopeo(&big, &upstream, "library");
    images::push_with_skopeo(&profile, &upstream, "library");
    let up = format!("docker://{}/library", upstream.host());
    if let Ok(only) = std::env::var("BERTH_BENCH_PULL_ONLY") {
        // Iterating on the proxy: only the pull-through part, nothing written.
        let clients: &[Client] = if only == "berth" {
            &[Client::BerthCopy]
        } else {
            &[Client::BerthCopy, Client::Skopeo]
        };
        let refs = if std::env::var("BERTH_BENCH_PULL_SET").as_deref() == Ok("profile") {
            &profile_refs
        } else {
            &all
        };
        let pulls = pull_through(reps, clients, &upstream, refs, scratch.path());
        for (ci, client) in clients.iter().enumerate() {
            let (dc, bc) = pulls.cold[ci].med();
            let (dw, bw) = pulls.warm[ci].med();
            let per_rep: Vec<f64> = (pulls.cold[ci].dist.iter())
                .zip(&pulls.cold[ci].berth)
                .map(|(d, b)| d / b)
                .collect();
            eprintln!(
                "{}: cold {dc:.3} / {bc:.3} s = {:.2}x (per rep {}), warm {dw:.3} / {bw:.3} s = {:.2}x",
                client.name(),
                dc / bc,
                fmt_list(&per_rep, 2),
                dw / bw
            );
        }
        return;
    }

    // ---- the two GET servers, seeded alike from the upstream ----
    let dist = Distribution::plain();
    let berth = BerthServe::start(&scratch.path().join("berth-get"), None);
    let o = SkopeoOpts::insecure();
    for host in [dist.host(), berth.host.clone()] {
        for r in &all {
            skopeo::copy_all(
                &format!("{up}/{}:{}", r.name, r.tag),
                &format!("docker://{host}/library/{}:{}", r.name, r.tag),
                &o,
            );
        }
        check_refs(&format!("docker://{host}/library"), &all);
    }
    let host_of = |s: Server| match s {
        Server::Distribution => dist.host(),
        Server::Berth => berth.host.clone(),
    };

    let big_ref = big.get("big", "1");
    let layer = big_ref.manifests[0]
        .layers
        .iter()
        .max_by_key(|l| l.size)
        .unwrap()
        .clone();
    let blob_url = |s: Server| {
        format!(
            "http://{}/v2/library/big/blobs/{}",
            host_of(s),
            layer.digest
        )
    };
    for s in [Server::Distribution, Server::Berth] {
        // the whole blob, byte for byte (this also warms the page cache)
        assert_eq!(curl_digest(&blob_url(s)), layer.digest, "{}", s.name());
    }
    let mb = layer.size as f64 / 1e6;

    // blob GET: one stream, then `conc` streams at once
    let mut single = Pair::default();
    let mut multi = Pair::default();
    for rep in 1..=reps {
        for s in order(rep) {
            let url = blob_url(s);
            for _ in 0..3 {
                let secs = curl_wait(curl_spawn(&curl, &url), &url, layer.size);
                single.push(s, mb / secs);
            }
            let t = Instant::now();
            let cs: Vec<Child> = (0..conc).map(|_| curl_spawn(&curl, &url)).collect();
            for c in cs {
                curl_wait(c, &url, layer.size);
            }
            multi.push(s, conc as f64 * mb / t.elapsed().as_secs_f64());
            eprintln!(
                "rep {rep} {}: blob GET {:.0} MB/s, {conc} at once {:.0} MB/s",
                s.name(),
                single_last(&single, s),
                single_last(&multi, s)
            );
        }
    }

    // manifest GET under load: by tag and by digest
    let base = set.get("base", "1");
    let mut by_tag = Pair::default();
    let mut by_digest = Pair::default();
    let mut lat: Vec<String> = vec![];
    for rep in 1..=reps {
        for s in order(rep) {
            for (what, reference, pair) in [
                ("tag", base.tag.as_str(), &mut by_tag),
                ("digest", base.digest.as_str(), &mut by_digest),
            ] {
                let url = format!(
                    "http://{}/v2/library/base/manifests/{reference}",
                    host_of(s)
                );
                let (rps, latency) = wrk(&wrk_bin, &url, wrk_t, wrk_c, wrk_d);
                pair.push(s, rps);
                let line = format!(
                    "| {rep} | {} | by {what} | {rps:.0} | {latency} |",
                    s.name()
                );
                eprintln!("{line}");
                lat.push(line);
            }
        }
    }
    // a manifest served under load is still the right one
    let m = std::process::Command::new(&curl)
        .args(["-sS", "-f", "-H", ACCEPT])
        .arg(format!("http://{}/v2/library/base/manifests/1", berth.host))
        .output()
        .unwrap();
    assert_eq!(sha256_digest(&m.stdout), base.digest);
    let rss_dist = peak_rss_kib(dist.pid().unwrap()) as f64 / 1024.0;
    let rss_berth = peak_rss_kib(berth.pid()) as f64 / 1024.0;
    drop(berth);
    drop(dist);

    // ---- pull-through: cold (new proxy, empty storage), then warm; for each client ----
    let clients = [Client::BerthCopy, Client::Skopeo];
    let Pulls {
        cold,
        warm,
        proxy_rss,
        runs,
    } = pull_through(reps, &clients, &upstream, &all, scratch.path());
    let Pulls {
        cold: pcold,
        warm: pwarm,
        proxy_rss: _,
        runs: pruns,
    } = pull_through(reps, &clients, &upstream, &profile_refs, scratch.path());
    let load_end = loadavg();

    // ---- the report ----
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Generated by `bench/serve.sh` ({reps} repetitions, median; {:.0} s in all). Machine: {}. \
         Load average at start / end: {load_start} / {load_end}. Peers: Distribution {}, {}, {}, {}.\n",
        started.elapsed().as_secs_f64(),
        machine(),
        distribution_version(),
        cmd_line("skopeo", &["--version"]),
        cmd_line("curl", &["--version"])
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        cmd_line("sh", &["-c", "wrk -v 2>&1"])
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let _ = writeln!(
        t,
        "Both servers: plain HTTP on 127.0.0.1, shipped logging (info, a line per request, to a \
         file), the release build of berth; seeded alike with `skopeo copy --all \
         --preserve-digests` from an upstream Distribution holding the image set of the mirror \
         benchmark plus `big:1` ({big_mib} MiB incompressible layer). Client and servers share \
         the same cores. Blob GET: `curl -o /dev/null` of the {:.1} MB layer (MB = 10^6 bytes; \
         curl's own time), alone (3 downloads per repetition) and {conc} at once (aggregate). Manifest GET: `wrk -t{wrk_t} \
         -c{wrk_c} -d{wrk_d}s` with an `Accept` header listing the OCI and Docker manifest \
         types, on the OCI manifest `library/base:1`. Peak RSS: `VmHWM` of the server process \
         over all GET runs. Pull-through: Distribution in proxy mode (`proxy: remoteurl:`) vs \
         `berth serve` with the same upstream (path addressing \
         `/spectro-images/HOST_PORT/...`); each image of the set ({}) pulled one after another \
         into a local OCI layout by the same client for both, `berth copy` (a light client: \
         what the proxy costs shows) and `skopeo copy --all` (a heavier one); cold = a new \
         proxy with empty storage, warm = the same pulls again. The same for the mirror \
         benchmark's profile set ({} images of 1–80 MiB, {:.0} MB).\n",
        layer.size as f64 / 1e6,
        all.len(),
        profile_refs.len(),
        profile.total_blob_bytes() as f64 / 1e6,
    );
    let _ = writeln!(
        t,
        "| measure | Distribution 2.8 | berth serve | berth vs Distribution | target | result |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|");
    let (d1, b1) = single.med();
    let (dn, bn) = multi.med();
    let (dt, bt) = by_tag.med();
    let (dd, bd) = by_digest.med();
    let (dr, br) = proxy_rss.med();
    let row = |t: &mut String,
               m: &str,
               d: f64,
               b: f64,
               prec: usize,
               ratio: f64,
               target: &str,
               ok: Option<bool>| {
        let _ = writeln!(
            t,
            "| {m} | {d:.prec$} | {b:.prec$} | **{ratio:.2}×** | {target} | {} |",
            ok.map(verdict).unwrap_or("–")
        );
    };
    row(
        &mut t,
        "blob GET, one stream, MB/s",
        d1,
        b1,
        0,
        b1 / d1,
        "≥ 1.2×",
        Some(b1 / d1 >= 1.2),
    );
    row(
        &mut t,
        &format!("blob GET, {conc} streams, aggregate MB/s"),
        dn,
        bn,
        0,
        bn / dn,
        "≥ 1.2×",
        Some(bn / dn >= 1.2),
    );
    row(
        &mut t,
        "manifest GET by tag, requests/s",
        dt,
        bt,
        0,
        bt / dt,
        "≥ 2×",
        Some(bt / dt >= 2.0),
    );
    row(
        &mut t,
        "manifest GET by digest, requests/s",
        dd,
        bd,
        0,
        bd / dd,
        "≥ 2×",
        Some(bd / dd >= 2.0),
    );
    row(
        &mut t,
        "peak RSS of the server over all GET runs, MB",
        rss_dist,
        rss_berth,
        1,
        rss_berth / rss_dist,
        "≤ 1× (no more than Distribution's)",
        Some(rss_berth <= rss_dist),
    );
    for (set, cold, warm) in [
        ("profile set", &pcold, &pwarm),
        ("small set + big:1", &cold, &warm),
    ] {
        for (ci, client) in clients.iter().enumerate() {
            let (dc, bc) = cold[ci].med();
            let (dw, bw) = warm[ci].med();
            row(
                &mut t,
                &format!(
                    "pull-through cold, {set}, `{}`, wall s (speed-up = Distribution / berth)",
                    client.name()
                ),
                dc,
                bc,
                3,
                dc / bc,
                "≥ 1.5× faster",
                Some(dc / bc >= 1.5),
            );
            row(
                &mut t,
                &format!(
                    "pull-through warm, {set}, `{}`, wall s (speed-up)",
                    client.name()
                ),
                dw,
                bw,
                3,
                dw / bw,
                "–",
                None,
            );
        }
    }
    row(
        &mut t,
        "peak RSS of the proxy over cold + warm, MB (median)",
        dr,
        br,
        1,
        br / dr,
        "–",
        None,
    );
    let _ = writeln!(
        t,
        "\n<details><summary>Every run</summary>\n\n\
         Blob GET MB/s, one stream — Distribution: {}; berth: {}.  \n\
         Blob GET MB/s, {conc} streams — Distribution: {}; berth: {}.\n\n\
         | rep | server | manifest | requests/s | mean latency |\n|---|---|---|---|---|",
        fmt_list(&single.dist, 0),
        fmt_list(&single.berth, 0),
        fmt_list(&multi.dist, 0),
        fmt_list(&multi.berth, 0),
    );
    for l in &lat {
        let _ = writeln!(t, "{l}");
    }
    let _ = writeln!(
        t,
        "\n| rep | proxy | client | cold s | warm s | peak RSS MB |\n|---|---|---|---|---|---|"
    );
    for l in &runs {
        let _ = writeln!(t, "{l}");
    }
    let _ = writeln!(
        t,
        "\nProfile set:\n\n| rep | proxy | client | cold s | warm s | peak RSS MB |\n|---|---|---|---|---|---|"
    );
    for l in &pruns {
        let _ = writeln!(t, "{l}");
    }
    let _ = writeln!(t, "\n</details>");
    eprintln!("\n{t}");
    write_section(
        &out_path,
        "Edge registry (berth serve vs Distribution 2.8)",
        BEGIN,
        END,
        &t,
    );
    eprintln!("results written to {}", out_path.display());
}

fn single_last(p: &Pair, s: Server) -> f64 {
    match s {
        Server::Distribution => *p.dist.last().unwrap_or(&0.0),
        Server::Berth => *p.berth.last().unwrap_or(&0.0),
    }
}
