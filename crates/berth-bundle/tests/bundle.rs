//! Bundles end to end against real peers: a plain Distribution holding images built from
//! real files (pushed with skopeo), a TLS + htpasswd Distribution as the external registry,
//! skopeo as the independent judge of the layout inside and of every digest.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use berth_bundle::{BuildOptions, BundleError, Extracted, ProfileFile, ServeOptions};
use berth_client::{Credentials, RegistryConfig, RegistryConfigs};
use berth_reference::Reference;
use berth_testkit::images::{self, Fixture, FixtureRef};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, sha256_digest};
use berth_transfer::{CopyOptions, ImageStatus};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct Src {
    work: tempfile::TempDir,
    reg: Distribution,
    f: Fixture,
}

fn source() -> Src {
    let work = tempfile::tempdir().unwrap();
    let reg = Distribution::plain();
    let f = images::build_set(&work.path().join("images"));
    images::push_with_skopeo(&f, &reg, "library");
    Src { work, reg, f }
}

fn reference(reg: &Distribution, r: &FixtureRef) -> String {
    format!("{}/library/{}:{}", reg.host(), r.name, r.tag)
}

fn plain_configs(reg: &Distribution) -> RegistryConfigs {
    let mut c = RegistryConfigs::new();
    c.insert(
        &reg.host(),
        RegistryConfig {
            insecure: true,
            ..Default::default()
        },
    );
    c
}

fn options(s: &Src, refs: &[String]) -> BuildOptions {
    BuildOptions {
        images: refs.iter().map(|r| Reference::parse(r).unwrap()).collect(),
        profiles: vec![ProfileFile {
            file: "profile.yaml".into(),
            name: "bundle-test".into(),
            bytes: b"name: bundle-test\nlayers: []\n".to_vec(),
        }],
        copy: CopyOptions {
            source_registries: plain_configs(&s.reg),
            ..CopyOptions::default()
        },
        threads: 2,
        ..BuildOptions::default()
    }
}

fn all_refs(s: &Src) -> Vec<String> {
    s.f.refs.iter().map(|r| reference(&s.reg, r)).collect()
}

fn build(out: &Path, opts: BuildOptions) -> berth_bundle::BuildReport {
    rt().block_on(berth_bundle::build(out, opts, None))
        .unwrap_or_else(|e| panic!("build {}: {e}", out.display()))
}

fn tool(name: &str) -> PathBuf {
    berth_testkit::require_tool(name, name)
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The decompressed tar of a (single-file) bundle, with the zstd tool.
fn unzstd(path: &Path) -> Vec<u8> {
    run(Command::new(tool("zstd"))
        .args(["-d", "-c", "-q"])
        .arg(path))
}

fn rezstd(tar: &[u8], out: &Path) {
    let mut enc =
        zstd::stream::write::Encoder::new(std::fs::File::create(out).unwrap(), 3).unwrap();
    enc.write_all(tar).unwrap();
    enc.finish().unwrap();
}

/// Entries `(name, bytes)` of a tar, in order.
fn tar_entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let n = e.path().unwrap().display().to_string();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (n, v)
        })
        .collect()
}

fn make_tar(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (n, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, n, bytes.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn build_is_deterministic_readable_by_skopeo_and_zstd_and_verifies() {
    let s = source();
    let dir = s.work.path();
    let refs = all_refs(&s);
    let a = dir.join("a.tar.zst");
    let b = dir.join("b.tar.zst");
    let ra = build(&a, options(&s, &refs));
    let mut ob = options(&s, &refs);
    ob.threads = 1;
    build(&b, ob);
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "two builds (2 and 1 zstd threads) differ"
    );
    assert_eq!(ra.manifest.images.len(), s.f.refs.len());
    assert_eq!(ra.files, vec![a.clone()]);
    // No staging directory left beside the bundle.
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("berth"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Entry order and headers.
    let tar = unzstd(&a);
    let entries = tar_entries(&tar);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..4],
        [
            "bundle.json",
            "oci-layout",
            "index.json",
            "profiles/profile.yaml"
        ]
    );
    let blobs = &names[4..];
    assert!(blobs.windows(2).all(|w| w[0] < w[1]), "blobs sorted");
    assert_eq!(blobs.len(), ra.manifest.blobs.len());
    for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
        let h = e.unwrap().header().clone();
        assert_eq!(
            (
                h.mtime().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mode().unwrap()
            ),
            (0, 0, 0, 0o644)
        );
    }

    // The layout, unpacked with tar, is read by skopeo; every digest is the source's.
    let unpacked = dir.join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tarfile = dir.join("a.tar");
    std::fs::write(&tarfile, &tar).unwrap();
    run(Command::new(tool("tar"))
        .arg("-xf")
        .arg(&tarfile)
        .arg("-C")
        .arg(&unpacked));
    // (skopeo's oci: transport only sees OCI-typed entries; Docker-typed images are in the
    // layout with their own media types, read by berth and served as they are.)
    let opts = SkopeoOpts::insecure();
    let oci: Vec<(&String, &FixtureRef)> = refs
        .iter()
        .zip(&s.f.refs)
        .filter(|(_, fr)| !fr.kind.is_docker())
        .collect();
    assert_eq!(oci.len(), 3);
    for (r, fr) in &oci {
        let raw = skopeo::inspect_raw(&skopeo::oci_ref(&unpacked, r), &opts);
        assert_eq!(sha256_digest(&raw), fr.digest, "{r}");
    }
    // skopeo copies an image out of the bundle's layout, digests kept.
    let base = &refs[0];
    let out = dir.join("copied");
    skopeo::copy_all(
        &skopeo::oci_ref(&unpacked, base),
        &skopeo::oci_ref(&out, "x"),
        &opts,
    );
    assert_eq!(
        skopeo::digest_of(&skopeo::oci_ref(&out, "x"), &opts),
        s.f.refs[0].digest
    );

    // berth's own extract gives the same layout; verify passes; inspect reads the head.
    let ex = dir.join("extracted");
    let c = berth_bundle::extract(&a, &ex, None).unwrap();
    assert_eq!(c.head.manifest, ra.manifest);
    for (r, fr) in &oci {
        assert_eq!(
            skopeo::digest_of(&skopeo::oci_ref(&ex, r), &opts),
            fr.digest
        );
    }
    // Every image, Docker-typed too, is in the extracted index with its source digest.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ex.join("index.json")).unwrap()).unwrap();
    for (r, fr) in refs.iter().zip(&s.f.refs) {
        let e = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == r.as_str())
            .unwrap();
        assert_eq!(e["digest"], fr.digest.as_str());
        assert_eq!(e["mediaType"], fr.media_type());
    }
    let h = berth_bundle::head(&a).unwrap();
    assert_eq!(h.manifest, ra.manifest);
    assert!(h.signature.is_none());
    berth_bundle::scan(&a, None, &mut |_, _, _| Ok(())).unwrap();
    // Extracting again into a non-empty directory is refused.
    assert!(berth_bundle::extract(&a, &ex, None).is_err());
}

#[test]
fn push_round_trip_to_tls_htpasswd_registry_keeps_every_digest() {
    let s = source();
    let dst = Distribution::tls_htpasswd("edge", "edge-pass");
    let refs = all_refs(&s);
    let a = s.work.path().join("a.tar.zst");
    build(&a, options(&s, &refs));
    // The source is gone: the bundle is all there is.
    drop(s.reg);
    let ex = Extracted::open(&a, None, None).unwrap();
    let mut d = RegistryConfigs::new();
    d.insert(
        &dst.host(),
        RegistryConfig {
            credentials: Some(Credentials::new("edge", "edge-pass")),
            insecure: false,
            ca_pems: vec![dst.certs().unwrap().ca_pem.clone()],
        },
    );
    let host = dst.host();
    let target = move |r: &Reference| -> Result<Reference, String> {
        Reference::parse(&format!(
            "{host}/edge/{}:{}",
            r.path(),
            r.tag().unwrap_or("latest")
        ))
        .map_err(|e| e.to_string())
    };
    let opts = CopyOptions {
        destination_registries: d,
        ..CopyOptions::default()
    };
    let (report, unmoved) = rt()
        .block_on(berth_bundle::push(&ex, &target, opts.clone(), None))
        .unwrap();
    assert!(unmoved.is_empty());
    assert_eq!(report.failed(), 0, "{report:?}");
    let sk = SkopeoOpts::for_registry(&dst);
    for fr in &s.f.refs {
        let t = format!(
            "docker://{}/edge/library/{}:{}",
            dst.host(),
            fr.name,
            fr.tag
        );
        assert_eq!(
            sha256_digest(&skopeo::inspect_raw(&t, &sk)),
            fr.digest,
            "{t}"
        );
        if fr.kind.is_index() {
            for m in &fr.manifests {
                let c = format!(
                    "docker://{}/edge/library/{}@{}",
                    dst.host(),
                    fr.name,
                    m.manifest.digest
                );
                assert_eq!(
                    sha256_digest(&skopeo::inspect_raw(&c, &sk)),
                    m.manifest.digest
                );
            }
        }
    }
    // A second push finds everything present.
    let (again, _) = rt()
        .block_on(berth_bundle::push(&ex, &target, opts, None))
        .unwrap();
    assert!(
        again
            .images
            .iter()
            .all(|i| i.status == ImageStatus::Present),
        "{again:?}"
    );
}

#[test]
fn split_parts_are_read_transparently_and_equal_the_whole() {
    let s = source();
    let refs = all_refs(&s);
    let whole = s.work.path().join("whole.tar.zst");
    build(&whole, options(&s, &refs));
    let split = s.work.path().join("split.tar.zst");
    let mut o = options(&s, &refs);
    o.split_size = Some(512 << 10);
    let r = build(&split, o);
    assert!(r.files.len() >= 3, "{:?}", r.files);
    assert!(!split.exists());
    let mut joined = Vec::new();
    for (i, p) in r.files.iter().enumerate() {
        assert_eq!(*p, PathBuf::from(format!("{}.part{i:02}", split.display())));
        let bytes = std::fs::read(p).unwrap();
        if i + 1 < r.files.len() {
            assert_eq!(bytes.len(), 512 << 10);
        }
        joined.extend(bytes);
    }
    assert_eq!(
        joined,
        std::fs::read(&whole).unwrap(),
        "parts joined = the unsplit bundle"
    );
    for given in [split.clone(), r.files[0].clone()] {
        berth_bundle::head(&given).unwrap();
        berth_bundle::scan(&given, None, &mut |_, _, _| Ok(())).unwrap();
    }
    let ex = s.work.path().join("ex");
    berth_bundle::extract(&r.files[0], &ex, None).unwrap();
    let opts = SkopeoOpts::insecure();
    let multi =
        s.f.refs
            .iter()
            .position(|fr| fr.kind == images::Kind::OciIndex)
            .unwrap();
    assert_eq!(
        skopeo::digest_of(&skopeo::oci_ref(&ex, &refs[multi]), &opts),
        s.f.refs[multi].digest
    );
    // A missing part is damage, named.
    std::fs::remove_file(r.files.last().unwrap()).unwrap();
    let e = berth_bundle::scan(&split, None, &mut |_, _, _| Ok(())).unwrap_err();
    assert!(e.is_damage(), "{e}");
}

/// Deletes the config and layer blobs of the fixture from a Distribution's storage,
/// keeping manifests: fetching any of them from now on fails.
fn delete_layer_blobs(reg: &Distribution, f: &Fixture) -> usize {
    let mut n = 0;
    for r in &f.refs {
        for b in r.blobs() {
            let hex = b.strip_prefix("sha256:").unwrap();
            let p = reg
                .data_dir()
                .join("docker/registry/v2/blobs/sha256")
                .join(&hex[..2])
                .join(hex);
            if p.exists() {
                std::fs::remove_dir_all(&p).unwrap();
                n += 1;
            }
        }
    }
    n
}

#[test]
fn existing_bundle_blobs_are_reused_not_fetched() {
    let mut s = source();
    let refs = all_refs(&s);
    let old = s.work.path().join("old.tar.zst");
    build(&old, options(&s, &refs[..3]));
    // Every config and layer is gone from the source; only manifests remain.
    assert!(delete_layer_blobs(&s.reg, &s.f) > 0);
    // Without --existing the build must fetch blobs, and fails.
    let e = rt()
        .block_on(berth_bundle::build(
            &s.work.path().join("x.tar.zst"),
            options(&s, &refs[..3]),
            None,
        ))
        .unwrap_err();
    assert!(matches!(e, BundleError::Image { .. }), "{e}");
    // With it, tags are resolved at the source and no blob is fetched.
    let new = s.work.path().join("new.tar.zst");
    let mut o = options(&s, &refs[..3]);
    o.existing = Some(old.clone());
    let r = build(&new, o);
    assert_eq!(r.fetch.blobs.copied, 0, "{:?}", r.fetch);
    assert!(r.reused_blobs > 0);
    assert_eq!(std::fs::read(&old).unwrap(), std::fs::read(&new).unwrap());

    // Pinned by digest, the old bundle is enough: the source may be down altogether.
    let pinned: Vec<String> = s.f.refs[..3]
        .iter()
        .map(|fr| format!("{}/library/{}@{}", s.reg.host(), fr.name, fr.digest))
        .collect();
    let old_pinned = s.work.path().join("old-pinned.tar.zst");
    let mut o = options(&s, &pinned);
    o.existing = Some(old.clone());
    build(&old_pinned, o);
    s.reg.stop();
    let again = s.work.path().join("again.tar.zst");
    let mut o = options(&s, &pinned);
    o.existing = Some(old_pinned.clone());
    let r = build(&again, o);
    assert_eq!(r.reused_images.len(), 3);
    assert_eq!(
        std::fs::read(&old_pinned).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn platform_filter_rewrites_the_index_and_warns() {
    let s = source();
    let multi = s.f.get("multi", "1");
    let r = reference(&s.reg, multi);
    let out = s.work.path().join("amd.tar.zst");
    let mut o = options(&s, std::slice::from_ref(&r));
    o.platforms = vec!["linux/amd64".into()];
    let rep = build(&out, o);
    assert_eq!(rep.warnings.len(), 1, "{:?}", rep.warnings);
    assert!(
        rep.warnings[0].contains(&multi.digest),
        "{}",
        rep.warnings[0]
    );
    let img = &rep.manifest.images[0];
    assert_ne!(img.digest, multi.digest);
    assert_eq!(img.source_digest.as_deref(), Some(multi.digest.as_str()));
    let ex = s.work.path().join("ex");
    berth_bundle::extract(&out, &ex, None).unwrap();
    let raw = skopeo::inspect_raw(&skopeo::oci_ref(&ex, &r), &SkopeoOpts::insecure());
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["platform"]["architecture"], "amd64");
    // The arm64 layer is not in the bundle.
    let arm = &multi.manifests[1];
    let arm_layers: Vec<&str> = arm.layers.iter().map(|l| l.digest.as_str()).collect();
    assert!(rep.manifest.blobs.iter().all(|b| {
        !arm_layers.contains(&b.digest.as_str())
            || multi.manifests[0]
                .layers
                .iter()
                .any(|l| l.digest == b.digest)
    }));
    let mut o = options(&s, &[r]);
    o.platforms = vec!["windows/amd64".into()];
    let e = rt()
        .block_on(berth_bundle::build(
            &s.work.path().join("w.tar.zst"),
            o,
            None,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("linux/arm64"), "{e}");
}

/// A small real bundle and its decompressed entries, for tampering.
fn small_bundle(s: &Src) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let a = s.work.path().join("small.tar.zst");
    build(&a, options(s, &[reference(&s.reg, s.f.get("base", "1"))]));
    let entries = tar_entries(&unzstd(&a));
    (a, entries)
}

fn assert_refused(bundle: &Path, expect: &str) {
    let parent = bundle.parent().unwrap();
    let to = parent.join("target");
    let before: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let e = berth_bundle::extract(bundle, &to, None).unwrap_err();
    assert!(e.is_damage(), "{e}");
    assert!(
        e.to_string().contains(expect),
        "`{e}` should say `{expect}`"
    );
    let after: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "extract left files behind");
    assert!(!parent.parent().unwrap().join("evil").exists());
    let e = berth_bundle::scan(bundle, None, &mut |_, _, _| Ok(())).unwrap_err();
    assert!(e.to_string().contains(expect), "{e}");
}

#[test]
fn hostile_and_damaged_bundles_are_refused_and_nothing_is_written() {
    let s = source();
    let (good, entries) = small_bundle(&s);
    let case = |label: &str, tar: Vec<u8>| -> PathBuf {
        let d = s.work.path().join(label).join("in");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("b.tar.zst");
        rezstd(&tar, &p);
        p
    };
    let with = |extra: (String, Vec<u8>)| {
        let mut e = entries.clone();
        e.insert(4, extra);
        make_tar(&e)
    };
    // `..` and absolute names, written raw (the tar crate refuses to build them).
    let raw_name = |name: &str| {
        let mut tar = make_tar(&entries[..1]);
        tar.truncate(tar.len() - 1024);
        let mut h = tar::Header::new_gnu();
        let bytes = b"pwned";
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(bytes);
        tar.extend(std::iter::repeat_n(0u8, 512 - bytes.len() + 1024));
        tar
    };
    assert_refused(
        &case("dotdot", raw_name("../../evil")),
        "`..` path component",
    );
    assert_refused(&case("abs", raw_name("/tmp/evil")), "absolute path");
    // Links leading out.
    let link = |kind: tar::EntryType, target: &str| {
        let mut b = tar::Builder::new(Vec::new());
        for (n, bytes) in &entries[..4] {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, n, bytes.as_slice()).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        b.append_link(&mut h, "blobs/sha256/evil", target).unwrap();
        b.into_inner().unwrap()
    };
    assert_refused(
        &case("symlink", link(tar::EntryType::Symlink, "../../../evil")),
        "symbolic link",
    );
    assert_refused(
        &case("hardlink", link(tar::EntryType::Link, "/etc/passwd")),
        "hard link",
    );
    // Duplicates.
    assert_refused(&case("dup", with(entries[2].clone())), "appears twice");
    // Unknown names.
    assert_refused(
        &case("unknown", with(("evil".into(), b"x".to_vec()))),
        "is not a bundle entry",
    );
    // A blob whose bytes do not hash to its name.
    let mut bad = entries.clone();
    let last = bad.len() - 1;
    bad[last].1[10] ^= 0xff;
    assert_refused(&case("digest", make_tar(&bad)), "hashes to");
    // A blob missing.
    let mut missing = entries.clone();
    missing.pop();
    assert_refused(&case("missing", make_tar(&missing)), "missing");
    // A blob past the in-memory limit (hashed while the writer thread writes it): one
    // byte changed, and the bundle cut in its middle. The intact one extracts whole.
    let big: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big_digest = sha256_digest(&big);
    let with_big = |bytes: Vec<u8>| {
        let mut m: serde_json::Value = serde_json::from_slice(&entries[0].1).unwrap();
        m["blobs"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"digest": big_digest, "size": bytes.len()}));
        let mut e = entries.clone();
        e[0].1 = serde_json::to_vec(&m).unwrap();
        e.push((big_digest.replace("sha256:", "blobs/sha256/"), bytes));
        make_tar(&e)
    };
    let mut flipped = big.clone();
    flipped[5 << 20] ^= 1;
    assert_refused(&case("big-digest", with_big(flipped)), "hashes to");
    let whole = case("big-whole", with_big(big.clone()));
    let out = whole.parent().unwrap().join("out");
    berth_bundle::extract(&whole, &out, None).unwrap();
    assert_eq!(
        std::fs::read(out.join(big_digest.replace("sha256:", "blobs/sha256/"))).unwrap(),
        big
    );
    std::fs::remove_dir_all(&out).unwrap();
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::write(&whole, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&whole, "corrupt or truncated");
    // Truncated zstd.
    let bytes = std::fs::read(&good).unwrap();
    let d = s.work.path().join("trunc").join("in");
    std::fs::create_dir_all(&d).unwrap();
    let t = d.join("b.tar.zst");
    std::fs::write(&t, &bytes[..bytes.len() * 2 / 3]).unwrap();
    assert_refused(&t, "corrupt or truncated");
    // bundle.json altered (a blob dropped from its list): the blob is then unlisted.
    let mut m: serde_json::Value = serde_json::from_slice(&entries[0].1).unwrap();
    m["blobs"].as_array_mut().unwrap().pop();
    let mut alt = entries.clone();
    alt[0].1 = serde_json::to_vec(&m).unwrap();
    assert_refused(
        &case("altered", make_tar(&alt)),
        "not listed in bundle.json",
    );
    // The good one still extracts.
    berth_bundle::extract(&good, &s.work.path().join("ok"), None).unwrap();
}

#[test]
fn signatures_accept_the_right_key_and_refuse_others_and_tampering() {
    let s = source();
    let keys = s.work.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let (kp, pp) = berth_bundle::sign::keygen(&keys.join("site")).unwrap();
    let (_, other) = berth_bundle::sign::keygen(&keys.join("other")).unwrap();
    let key = berth_bundle::sign::read_signing_key(&kp).unwrap();
    let public = berth_bundle::sign::read_public_key(&pp).unwrap();
    let other = berth_bundle::sign::read_public_key(&other).unwrap();
    let signed = s.work.path().join("signed.tar.zst");
    let mut o = options(&s, &[reference(&s.reg, s.f.get("base", "2"))]);
    o.signing_key = Some(key);
    build(&signed, o);
    assert!(berth_bundle::head(&signed).unwrap().signature.is_some());
    let c = berth_bundle::extract(&signed, &s.work.path().join("good"), Some(&public)).unwrap();
    assert!(c.signature_verified);
    let e = berth_bundle::extract(&signed, &s.work.path().join("other"), Some(&other)).unwrap_err();
    assert!(matches!(e, BundleError::Signature { .. }), "{e}");
    assert!(!s.work.path().join("other").exists());
    // bundle.json changed (the profile name), signature kept: refused.
    let mut entries = tar_entries(&unzstd(&signed));
    let text = String::from_utf8(entries[0].1.clone()).unwrap();
    entries[0].1 = text.replace("bundle-test", "bundle-evil").into_bytes();
    let tampered = s.work.path().join("tampered.tar.zst");
    rezstd(&make_tar(&entries), &tampered);
    let e = berth_bundle::scan(&tampered, Some(&public), &mut |_, _, _| Ok(())).unwrap_err();
    assert!(matches!(e, BundleError::Signature { .. }), "{e}");
    // An unsigned bundle is refused when a key is required.
    let unsigned = s.work.path().join("unsigned.tar.zst");
    build(
        &unsigned,
        options(&s, &[reference(&s.reg, s.f.get("base", "2"))]),
    );
    let e = Extracted::open(&unsigned, Some(&public), None)
        .err()
        .unwrap();
    assert!(e.to_string().contains("not signed"), "{e}");
}

#[test]
fn serve_answers_skopeo_with_every_digest_and_ranges() {
    let s = source();
    let refs = all_refs(&s);
    let a = s.work.path().join("a.tar.zst");
    build(&a, options(&s, &refs));
    let ex = Arc::new(Extracted::open(&a, None, None).unwrap());
    let rt = rt();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        name: Box::new(|r: &Reference| {
            Reference::parse(&format!(
                "x.y/bundle/{}:{}",
                r.path(),
                r.tag().unwrap_or("latest")
            ))
            .map_err(|e| e.to_string())
        }),
    };
    let server = rt.spawn(berth_bundle::serve(ex, listener, opts, None, async {
        let _ = rx.await;
    }));
    let sk = SkopeoOpts::insecure();
    std::thread::sleep(std::time::Duration::from_millis(200));
    if server.is_finished() {
        panic!("server ended: {:?}", rt.block_on(server));
    }
    for fr in &s.f.refs {
        let t = format!("docker://{addr}/bundle/library/{}:{}", fr.name, fr.tag);
        assert_eq!(
            sha256_digest(&skopeo::inspect_raw(&t, &sk)),
            fr.digest,
            "{t}"
        );
    }
    let base = s.f.get("base", "2");
    let out = s.work.path().join("pulled");
    skopeo::copy_all(
        &format!("docker://{addr}/bundle/library/base:2"),
        &skopeo::oci_ref(&out, "b"),
        &sk,
    );
    assert_eq!(
        skopeo::digest_of(&skopeo::oci_ref(&out, "b"), &sk),
        base.digest
    );
    let tags = skopeo::list_tags(&format!("docker://{addr}/bundle/library/multi"), &sk);
    assert_eq!(tags, vec!["1".to_string(), "1-docker".to_string()]);
    // Range on a layer; a write is refused; an unknown blob in a repository is 404.
    let layer = &base.manifests[0].layers[1];
    let body = http(
        addr,
        &format!(
            "GET /v2/bundle/library/base/blobs/{} HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\nConnection: close\r\n\r\n",
            layer.digest
        ),
    );
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("HTTP/1.1 206"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains(&format!("content-range: bytes 10-19/{}", layer.size)),
        "{text}"
    );
    let whole = std::fs::read(s.f.layout.blob_path(&layer.digest)).unwrap();
    assert!(body.ends_with(&whole[10..20]));
    let put = http(
        addr,
        "PUT /v2/bundle/library/base/manifests/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&put).starts_with("HTTP/1.1 405"));
    let arm = &s.f.get("multi", "1").manifests[1].layers[0];
    let no = http(
        addr,
        &format!(
            "HEAD /v2/bundle/library/base/blobs/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            arm.digest
        ),
    );
    assert!(String::from_utf8_lossy(&no).starts_with("HTTP/1.1 404"));
    let _ = tx.send(());
    rt.block_on(server).unwrap().unwrap();
}

fn http(addr: std::net::SocketAddr, req: &str) -> Vec<u8> {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(req.as_bytes()).unwrap();
    let mut v = Vec::new();
    c.read_to_end(&mut v).unwrap();
    v
}
