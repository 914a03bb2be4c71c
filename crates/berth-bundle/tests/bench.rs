//! The bundle benchmark (run by `bench/bundle.sh`, ignored otherwise): `berth_bundle::build`
//! (fetch from a local Distribution + deterministic tar + multi-threaded zstd) and
//! `berth_bundle::extract` (verified) against `tar -c | zstd -T0` and `zstd -d | tar -x` on
//! the same data (the staged OCI layout the bundle holds). Prints a Markdown section.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use berth_bundle::{BuildOptions, ProfileFile};
use berth_client::{RegistryConfig, RegistryConfigs};
use berth_reference::Reference;
use berth_testkit::Distribution;
use berth_testkit::images;
use berth_transfer::CopyOptions;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn sh(script: &str) -> f64 {
    let t = Instant::now();
    let o = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn du(p: &Path) -> u64 {
    let o = Command::new("du").args(["-sb"]).arg(p).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
#[ignore = "benchmark: run bench/bundle.sh"]
fn bench_bundle() {
    let mib: usize = std::env::var("BERTH_BENCH_BIG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let reps: usize = std::env::var("BERTH_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as u32;
    let work = tempfile::tempdir_in(
        std::env::var("BERTH_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()),
    )
    .unwrap();
    let w = work.path();
    let reg = Distribution::plain();
    let big = images::build_big(&w.join("big-src"), mib);
    images::push_with_skopeo(&big, &reg, "library");
    let set = images::build_set(&w.join("set-src"));
    images::push_with_skopeo(&set, &reg, "library");
    let mut refs: Vec<String> = big
        .refs
        .iter()
        .map(|r| format!("{}/library/{}:{}", reg.host(), r.name, r.tag))
        .collect();
    refs.extend(
        set.refs
            .iter()
            .map(|r| format!("{}/library/{}:{}", reg.host(), r.name, r.tag)),
    );
    let mut sources = RegistryConfigs::new();
    sources.insert(
        &reg.host(),
        RegistryConfig {
            insecure: true,
            ..Default::default()
        },
    );
    let opts = BuildOptions {
        images: refs.iter().map(|r| Reference::parse(r).unwrap()).collect(),
        profiles: vec![ProfileFile {
            file: "p.yaml".into(),
            name: "bench".into(),
            bytes: b"name: bench\n".to_vec(),
        }],
        copy: CopyOptions {
            source_registries: sources,
            ..CopyOptions::default()
        },
        threads,
        ..BuildOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // berth build (fetch + write), reps times.
    let mut build_s = Vec::new();
    let mut write_s = Vec::new();
    let out = w.join("b.tar.zst");
    let mut report = None;
    for _ in 0..reps {
        let _ = std::fs::remove_file(&out);
        let t = Instant::now();
        let r = rt
            .block_on(berth_bundle::build(&out, opts.clone(), None))
            .unwrap();
        build_s.push(t.elapsed().as_secs_f64());
        write_s.push(r.write_seconds);
        report = Some(r);
    }
    let report = report.unwrap();
    let content = report.manifest.total_size;
    // The same data as a directory: the layout the bundle holds.
    let layout = w.join("layout");
    berth_bundle::extract(&out, &layout, None).unwrap();
    let tar_bytes = du(&layout);
    let mut pipe_c = Vec::new();
    for _ in 0..reps {
        pipe_c.push(sh(&format!(
            "tar -C {} -cf - . | zstd -T0 -3 -q -f -o {}",
            layout.display(),
            w.join("p.tar.zst").display()
        )));
    }
    // Extract: berth (verified) vs zstd -d | tar -x.
    let mut ext = Vec::new();
    let mut pipe_x = Vec::new();
    for i in 0..reps {
        let to = w.join(format!("x{i}"));
        let t = Instant::now();
        berth_bundle::extract(&out, &to, None).unwrap();
        ext.push(t.elapsed().as_secs_f64());
        std::fs::remove_dir_all(&to).unwrap();
        let to = w.join(format!("y{i}"));
        std::fs::create_dir(&to).unwrap();
        pipe_x.push(sh(&format!(
            "zstd -d -T0 -q -c {} | tar -C {} -xf -",
            w.join("p.tar.zst").display(),
            to.display()
        )));
        std::fs::remove_dir_all(&to).unwrap();
    }
    let mbs = |s: f64| content as f64 / 1e6 / s;
    let (b, wr, pc, e, px) = (
        median(build_s),
        median(write_s),
        median(pipe_c),
        median(ext),
        median(pipe_x),
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("\nBENCH-SECTION-BEGIN");
    println!("## Bundles\n");
    println!(
        "`bench/bundle.sh`: {} images ({} MiB incompressible layer + the test set), {:.1} MB of blobs, {} zstd threads, level 3, median of {reps}; {} cores ({cpu}).\n",
        report.manifest.images.len(),
        mib,
        content as f64 / 1e6,
        threads,
        threads
    );
    println!("| operation | seconds | MB/s (content) | vs pipeline |");
    println!("|---|---|---|---|");
    println!(
        "| `berth bundle build` (fetch from local Distribution + tar + zstd) | {b:.2} | {:.0} | {:.2}× |",
        mbs(b),
        pc / b
    );
    println!(
        "| of which writing the tar.zst (staged layout → bundle) | {wr:.2} | {:.0} | {:.2}× |",
        mbs(wr),
        pc / wr
    );
    println!(
        "| `tar -c layout \\| zstd -T0 -3` (layout already on disk) | {pc:.2} | {:.0} | 1.00× |",
        mbs(pc)
    );
    println!(
        "| `berth bundle extract` (every blob hashed, references checked) | {e:.2} | {:.0} | {:.2}× |",
        mbs(e),
        px / e
    );
    println!(
        "| `zstd -d -T0 \\| tar -x` | {px:.2} | {:.0} | 1.00× |",
        mbs(px)
    );
    println!(
        "\nBundle {:.1} MB; the pipeline's tar.zst {:.1} MB; layout on disk {:.1} MB. The build time includes fetching every blob from the registry into the staging layout, which the pipeline does not do.",
        report.compressed_size as f64 / 1e6,
        std::fs::metadata(w.join("p.tar.zst")).unwrap().len() as f64 / 1e6,
        tar_bytes as f64 / 1e6
    );
    println!("BENCH-SECTION-END");
}
