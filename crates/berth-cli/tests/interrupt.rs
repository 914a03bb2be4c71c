//! Ctrl-C during `berth mirror`: the summary so far, the upload sessions cancelled at the
//! destination (a DELETE of each upload URL), exit 130; a rerun copies the rest.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::images;
use berth_testkit::{Distribution, Throttle};
use common::{Home, berth, command};
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Waits for `child` at most `limit`; kills it (and fails) after that.
fn wait(mut child: std::process::Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().expect("wait");
            panic!("berth did not end within {limit:?}: {}", text(&o.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("wait")
}

#[test]
fn ctrl_c_during_mirror_prints_the_summary_and_cancels_the_uploads() {
    let work = tempfile::tempdir().unwrap();
    let (src, dst) = (Distribution::plain(), Distribution::plain());
    let f = images::build_big(&work.path().join("big"), 24);
    images::push_with_skopeo(&f, &src, "library");
    // The source through a proxy passing 1 MiB/s: the 24 MiB layer takes ~24 s.
    let slow = Throttle::start(&src.host(), 1 << 20);
    let profile = work.path().join("profile.yaml");
    std::fs::write(
        &profile,
        format!(
            "name: big\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n            - image: {}/library/big:1\n",
            slow.host()
        ),
    )
    .unwrap();
    let edge = format!("http://{}", dst.host());
    let args = [
        "mirror",
        "--profile",
        profile.to_str().unwrap(),
        "--edge-registry",
        &edge,
        "--src-tls-verify=false",
    ];
    let home = Home::new();
    let child = command(home.path())
        .args(args)
        .args(["-o", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth mirror");
    let pid = child.id().to_string();

    // Interrupt once the big layer's upload session is open and its bytes flow.
    let deadline = Instant::now() + Duration::from_secs(60);
    while dst.upload_sessions().is_empty() {
        assert!(Instant::now() < deadline, "no upload session was opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(!dst.upload_sessions().is_empty(), "the upload ended early");
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let o = wait(child, Duration::from_secs(30));
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // The summary so far: the report (JSON asked for) and the summary line on stderr.
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", text(&o.stdout)));
    let image = &v["images"][0];
    assert_eq!(image["status"], "cancelled", "{v}");
    assert!(image["error"].as_str().unwrap().contains("rerun"), "{v}");
    assert!(v["blobs"]["copied"].as_u64().unwrap() < 3, "{v}");
    assert!(
        stderr.contains("images: 0 copied, 0 already present, 0 failed, 1 cancelled"),
        "{stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    // berth cancelled the upload session (DELETE of its upload URL). Distribution 2.8 refuses
    // that DELETE once bytes were written ("upload resumed at wrong offset": the URL's signed
    // state says offset 0), so its session directory stays until its upload purging.
    let log = std::fs::read_to_string(dst.log_path()).unwrap();
    let deleted = log.lines().any(|l| {
        l.contains("http.request.method=DELETE") && l.contains("/library/big/blobs/uploads/")
    });
    assert!(deleted, "no DELETE of the upload session: {stderr}");

    // At full speed a rerun copies what is missing; --quiet prints nothing.
    slow.set_rate(0);
    let o = berth(&[&args[..], &["--quiet"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        (text(&o.stdout), text(&o.stderr)),
        (String::new(), String::new())
    );
    let verify = [
        &["verify"],
        &args[1..5],
        &["--src-tls-verify=false", "--deep"],
    ]
    .concat();
    let o = berth(&verify);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}
