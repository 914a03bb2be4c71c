use std::io::Write;

use super::*;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn writes_replaces_and_creates_directories() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a/b/file.toml");
    write(&p, b"one").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"one");
    write(&p, b"two").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"two");
    assert_eq!(names(&dir.path().join("a/b")), ["file.toml"]);
}

#[cfg(unix)]
#[test]
fn mode_is_set_past_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("secret");
    Options::new().mode(0o600).write(&p, b"s").unwrap();
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    Options::new().mode(0o644).write(&p, b"s").unwrap();
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

#[test]
fn a_dropped_file_leaves_the_target_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    write(&p, b"old").unwrap();
    let mut f = Options::new().create(&p).unwrap();
    f.write_all(b"new, half").unwrap();
    assert_eq!(names(dir.path()).len(), 2, "the temporary file is beside");
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["f"]);

    // Synced but not renamed: removed too.
    let mut f = Options::new().create(&p).unwrap();
    f.write_all(b"new").unwrap();
    drop(f.sync().unwrap());
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["f"]);
}

#[test]
fn synced_files_are_renamed_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut pending = Vec::new();
    for n in 0..3 {
        let mut f = Options::new()
            .create(dir.path().join(format!("p{n}")))
            .unwrap();
        f.write_all(format!("{n}").as_bytes()).unwrap();
        pending.push(f.sync().unwrap());
    }
    assert!(!dir.path().join("p0").exists());
    for s in pending {
        let d = s.rename().unwrap();
        assert_eq!(d, dir.path());
    }
    sync_dir(dir.path()).unwrap();
    assert_eq!(names(dir.path()), ["p0", "p1", "p2"]);
    assert_eq!(std::fs::read(dir.path().join("p2")).unwrap(), b"2");
}

#[test]
fn temporary_file_in_another_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let p = dir.path().join("repos/x/_tags/latest");
    let mut f = Options::new().temp_dir(&tmp).create(&p).unwrap();
    assert_eq!(names(&tmp).len(), 1);
    f.write_all(b"sha256:...").unwrap();
    f.commit().unwrap();
    assert!(names(&tmp).is_empty());
    assert_eq!(std::fs::read(&p).unwrap(), b"sha256:...");
}

#[test]
fn errors_name_the_step_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be.
    std::fs::write(dir.path().join("blocker"), b"").unwrap();
    let p = dir.path().join("blocker/inside");
    let e = write(&p, b"x").unwrap_err();
    assert_eq!(e.step, "creating the directory");
    assert_eq!(e.path, dir.path().join("blocker"));
    assert!(e.to_string().contains("blocker"), "{e}");
    assert!(std::error::Error::source(&e).is_some());

    // A directory where the file should be: the rename fails, nothing is left behind.
    let target = dir.path().join("adir");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"").unwrap();
    let e = write(&target, b"x").unwrap_err();
    assert_eq!(e.step, "renaming into place");
    assert_eq!(e.path, target);
    assert_eq!(names(dir.path()), ["adir", "blocker"]);

    let e = write(dir.path().join(".."), b"x").unwrap_err();
    assert!(e.to_string().contains("does not name a file"), "{e}");
}

#[test]
fn parent_of_a_bare_name_is_the_current_directory() {
    assert_eq!(parent_dir(Path::new("x.tar")), Path::new("."));
    assert_eq!(parent_dir(Path::new("/a/x.tar")), Path::new("/a"));
}

#[test]
fn temporary_directory_beside_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.tar.zst");
    let t = temp_dir_beside(&target, "stage").unwrap();
    assert_eq!(t.path().parent().unwrap(), dir.path());
    let name = t.path().file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(".out.tar.zst.berth-stage-"), "{name}");
    drop(t);
    assert!(names(dir.path()).is_empty());
    let e = temp_dir_beside(&dir.path().join("missing/x"), "stage").unwrap_err();
    assert_eq!(e.path, dir.path().join("missing"));
}
