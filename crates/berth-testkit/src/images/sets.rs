//! The image sets tests use (small, big, profile-shaped), and pushing them with skopeo.

use std::path::Path;

use flate2::Compression;

use super::layer::{Layer, Source, build_layer};
use super::*;
use crate::Distribution;
use crate::skopeo::{self, SkopeoOpts};

fn python_lib() -> String {
    let mut found: Vec<String> = std::fs::read_dir("/usr/lib")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.starts_with("python3.")
                        && Path::new("/usr/lib").join(n).join("email").is_dir()
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    match found.pop() {
        Some(n) => format!("usr/lib/{n}"),
        None => panic!(
            "berth-testkit: test images use /usr/lib/python3.*/ as real files; \
             install it with `apt-get install -y libpython3-stdlib`"
        ),
    }
}

/// The `os` layer both sets build on: zoneinfo, common-licenses, mime (≈ 1.2 MB gzip).
fn os_layer(layout: &OciLayout, lvl: Compression) -> Layer {
    build_layer(
        layout,
        "os",
        &Source::Paths(&[
            "usr/share/zoneinfo",
            "usr/share/common-licenses",
            "usr/share/mime",
        ]),
        lvl,
    )
}

/// The small standard set, in the layout at `dir` (created if needed):
///
/// | ref | kind | layers |
/// |---|---|---|
/// | `base:1` | OCI manifest | os |
/// | `base:2` | OCI manifest | os, libs (shares `os` with base:1) |
/// | `app:1` | Docker schema2 | os, libs, app (app has an OCI whiteout) |
/// | `multi:1` | OCI index | linux/amd64 [os, shared], linux/arm64/v8 [arm, shared] |
/// | `multi:1-docker` | Docker manifest list | same layers, Docker-typed children |
///
/// Layers (gzip): os ≈ 1.2 MB (zoneinfo, common-licenses, mime), libs ≈ 0.4 MB
/// (python email, json), app ≈ 0.4 MB (perl5), shared ≈ 0.4 MB (python asyncio),
/// arm ≈ 0.4 MB (python unittest, logging).
pub fn build_set(dir: &Path) -> Fixture {
    let layout = OciLayout::create(dir);
    let py = python_lib();
    let lvl = Compression::new(6);
    let p = |s: &str| format!("{py}/{s}");
    let (py_email, py_json, py_asyncio, py_unittest, py_logging) = (
        p("email"),
        p("json"),
        p("asyncio"),
        p("unittest"),
        p("logging"),
    );
    let os = os_layer(&layout, lvl);
    let libs = build_layer(&layout, "libs", &Source::Paths(&[&py_email, &py_json]), lvl);
    let app = build_layer(
        &layout,
        "app",
        &Source::PathsWithWhiteouts(
            &["usr/share/perl5", "usr/share/perl"],
            &["usr/share/common-licenses/.wh.GPL-1"],
        ),
        lvl,
    );
    let shared = build_layer(&layout, "shared", &Source::Paths(&[&py_asyncio]), lvl);
    let arm = build_layer(
        &layout,
        "arm",
        &Source::Paths(&[&py_unittest, &py_logging]),
        lvl,
    );

    let amd = "linux/amd64";
    let arm64 = "linux/arm64/v8";
    let mut refs = vec![
        single(
            "base",
            "1",
            Kind::OciManifest,
            build_image(&layout, "base:1", amd, &[&os], false),
        ),
        single(
            "base",
            "2",
            Kind::OciManifest,
            build_image(&layout, "base:2", amd, &[&os, &libs], false),
        ),
        single(
            "app",
            "1",
            Kind::DockerSchema2,
            build_image(&layout, "app:1", amd, &[&os, &libs, &app], true),
        ),
    ];
    for (tag, kind) in [("1", Kind::OciIndex), ("1-docker", Kind::DockerList)] {
        let docker = kind.is_docker();
        let ms = vec![
            build_image(&layout, "multi:1", amd, &[&os, &shared], docker),
            build_image(&layout, "multi:1", arm64, &[&arm, &shared], docker),
        ];
        refs.push(index(&layout, "multi", tag, kind, ms));
    }
    write_index_json(&layout, &refs);
    Fixture { layout, refs }
}

/// One image `big:1` (OCI manifest, linux/amd64) in the layout at `dir`: a small real
/// layer plus `models/weights.bin`, `mib` MiB from a seeded PRNG (incompressible, same
/// bytes every build), streamed to disk (memory use is constant). The gzip uses level 1.
pub fn build_big(dir: &Path, mib: usize) -> Fixture {
    let layout = OciLayout::create(dir);
    let small = build_layer(
        &layout,
        "os-small",
        &Source::Paths(&["usr/share/common-licenses"]),
        Compression::new(6),
    );
    let big = build_layer(
        &layout,
        &format!("random-{mib}mib"),
        &Source::Random {
            mib,
            seed: 20240101,
        },
        Compression::none(),
    );
    let m = build_image(&layout, "big:1", "linux/amd64", &[&small, &big], false);
    let refs = vec![single("big", "1", Kind::OciManifest, m)];
    write_index_json(&layout, &refs);
    Fixture { layout, refs }
}

/// The images of a profile-shaped set: name, the size in MiB of its own application layer
/// (incompressible), and whether it is a two-platform OCI index.
pub const PROFILE_IMAGES: &[(&str, usize, bool)] = &[
    ("cni-agent", 80, false),
    ("csi-node", 60, false),
    ("ingress", 45, true),
    ("monitoring", 40, false),
    ("logging", 30, false),
    ("cni-operator", 25, false),
    ("registry-ui", 20, false),
    ("kube-vip", 18, false),
    ("coredns", 15, true),
    ("metrics-server", 12, false),
    ("local-path", 10, false),
    ("webhook", 8, false),
    ("snapshot-ctl", 6, false),
    ("node-exporter", 5, true),
    ("cert-manager", 4, false),
    ("klipper-lb", 3, false),
    ("sidecar", 2, false),
    ("pause", 1, false),
];

/// A set shaped like an edge cluster profile ([`PROFILE_IMAGES`]): 18 images of 1–80 MiB
/// (three of them two-platform OCI indexes), every one on a shared base layer of real files
/// (zoneinfo, licenses, mime) plus a small layer of real files and its own incompressible
/// application layer (seeded, the same bytes every build; the arm64 children get their own).
/// About 430 MB of distinct blobs; most bytes in a few large layers, most images small.
pub fn build_profile(dir: &Path) -> Fixture {
    let layout = OciLayout::create(dir);
    let py = python_lib();
    let lvl = Compression::new(6);
    let base = os_layer(&layout, lvl);
    let extras = ["json", "email", "asyncio", "unittest", "logging", "http"];
    let extra_layers: Vec<Layer> = extras
        .iter()
        .map(|e| {
            build_layer(
                &layout,
                &format!("py-{e}"),
                &Source::Paths(&[&format!("{py}/{e}")]),
                lvl,
            )
        })
        .collect();
    let mut refs = Vec::new();
    for (i, &(name, mib, multi)) in PROFILE_IMAGES.iter().enumerate() {
        let extra = &extra_layers[i % extra_layers.len()];
        let own = |seed: u64| {
            build_layer(
                &layout,
                &format!("{name}-{mib}mib-{seed}"),
                &Source::Random { mib, seed },
                Compression::none(),
            )
        };
        let amd = own(1000 + i as u64);
        let title = format!("{name}:1");
        if multi {
            let arm = own(2000 + i as u64);
            let ms = vec![
                build_image(&layout, &title, "linux/amd64", &[&base, extra, &amd], false),
                build_image(
                    &layout,
                    &title,
                    "linux/arm64/v8",
                    &[&base, extra, &arm],
                    false,
                ),
            ];
            refs.push(index(&layout, name, "1", Kind::OciIndex, ms));
        } else {
            let m = build_image(&layout, &title, "linux/amd64", &[&base, extra, &amd], false);
            refs.push(single(name, "1", Kind::OciManifest, m));
        }
    }
    write_index_json(&layout, &refs);
    Fixture { layout, refs }
}

/// Push every ref of `f` to `reg` as `HOST/PREFIX/NAME:TAG` (no prefix when empty) with
/// `skopeo copy --all --preserve-digests`, byte for byte (Docker-typed refs stay Docker;
/// they are copied from a temporary `dir:` export, see [`Fixture::skopeo_source`]).
/// Panics if a digest at the registry differs from the layout's.
pub fn push_with_skopeo(f: &Fixture, reg: &Distribution, repo_prefix: &str) {
    let opts = SkopeoOpts::for_registry(reg);
    let tmp = tempfile::Builder::new()
        .prefix("berth-push-")
        .tempdir()
        .expect("create temp dir");
    for r in &f.refs {
        let dst = docker_reference(reg, repo_prefix, r);
        let src = f.skopeo_source(r, &tmp.path().join(&r.ref_name));
        skopeo::copy_all(&src, &dst, &opts);
        let got = skopeo::digest_of(&dst, &opts);
        assert_eq!(
            got, r.digest,
            "berth-testkit: skopeo changed the manifest of {dst} while pushing"
        );
    }
}

/// `"docker://HOST/PREFIX/NAME:TAG"` for a ref pushed by [`push_with_skopeo`].
pub fn docker_reference(reg: &Distribution, repo_prefix: &str, r: &FixtureRef) -> String {
    format!(
        "docker://{}",
        repository(reg, repo_prefix, r) + ":" + &r.tag
    )
}

/// `"HOST/PREFIX/NAME"` (or `"HOST/NAME"` with an empty prefix).
pub fn repository(reg: &Distribution, repo_prefix: &str, r: &FixtureRef) -> String {
    let prefix = repo_prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{}/{}", reg.host(), r.name)
    } else {
        format!("{}/{prefix}/{}", reg.host(), r.name)
    }
}
