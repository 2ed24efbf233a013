//! Model lookup order and the offline failure of `fetch` (no network is needed or used).

use std::collections::HashMap;
use std::path::PathBuf;

use earshot_asr::model::{self, ModelError, Progress};

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "earshot-asr-test-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |k| m.get(k).cloned()
}

#[test]
fn lookup_order_env_then_xdg_then_home() {
    let root = tempdir("lookup");
    let xdg = root.join("xdg");
    let home = root.join("home");
    let xdg_models = xdg.join("earshot/models");
    let home_models = home.join(".local/share/earshot/models");
    std::fs::create_dir_all(&xdg_models).unwrap();
    std::fs::create_dir_all(&home_models).unwrap();
    let explicit = root.join("my-model.bin");
    std::fs::write(&explicit, b"x").unwrap();
    std::fs::write(home_models.join(model::DEFAULT_MODEL), b"x").unwrap();

    let base = vec![
        ("XDG_DATA_HOME", xdg.display().to_string()),
        ("HOME", home.display().to_string()),
    ];
    // Only in HOME: found there.
    let env = env_of(&base);
    assert_eq!(
        model::lookup_with(None, &env).unwrap(),
        home_models.join(model::DEFAULT_MODEL)
    );
    // Also in XDG: XDG wins.
    std::fs::write(xdg_models.join(model::DEFAULT_MODEL), b"x").unwrap();
    assert_eq!(
        model::lookup_with(None, &env).unwrap(),
        xdg_models.join(model::DEFAULT_MODEL)
    );
    // EARSHOT_MODEL as a path wins over everything.
    let mut with_env = base.clone();
    with_env.push(("EARSHOT_MODEL", explicit.display().to_string()));
    assert_eq!(
        model::lookup_with(None, &env_of(&with_env)).unwrap(),
        explicit
    );
    // EARSHOT_MODEL as a name is looked up in the data dirs.
    std::fs::write(home_models.join("ggml-base.en.bin"), b"x").unwrap();
    let mut by_name = base.clone();
    by_name.push(("EARSHOT_MODEL", "base.en".into()));
    assert_eq!(
        model::lookup_with(None, &env_of(&by_name)).unwrap(),
        home_models.join("ggml-base.en.bin")
    );
    // An explicit name argument overrides EARSHOT_MODEL.
    assert_eq!(
        model::lookup_with(Some("ggml-tiny.en.bin"), &env_of(&with_env)).unwrap(),
        xdg_models.join(model::DEFAULT_MODEL)
    );
    // A missing EARSHOT_MODEL path is an error that names it.
    let mut missing = base.clone();
    missing.push(("EARSHOT_MODEL", root.join("nope.bin").display().to_string()));
    let e = model::lookup_with(None, &env_of(&missing)).unwrap_err();
    assert!(matches!(e, ModelError::EnvPathMissing(_)), "{e}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn not_found_lists_every_place_searched() {
    let root = tempdir("notfound");
    let env = env_of(&[
        ("XDG_DATA_HOME", root.join("x").display().to_string()),
        ("HOME", root.join("h").display().to_string()),
    ]);
    let e = model::lookup_with(Some("small.en"), &env).unwrap_err();
    let msg = e.to_string();
    match &e {
        ModelError::NotFound { searched, file, .. } => {
            assert_eq!(file, "ggml-small.en.bin");
            assert_eq!(searched.len(), 3);
            assert!(searched[0].starts_with(root.join("x")));
            assert!(searched[1].starts_with(root.join("h")));
            assert_eq!(searched[2], PathBuf::from("models/ggml-small.en.bin"));
        }
        other => panic!("{other:?}"),
    }
    assert!(msg.contains("EARSHOT_MODEL"), "{msg}");
    assert!(msg.contains("earshot model fetch small.en"), "{msg}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn list_has_the_default_with_digest() {
    let tiny = model::list()
        .iter()
        .find(|m| m.file == model::DEFAULT_MODEL)
        .expect("default listed");
    assert_eq!(tiny.name, "tiny.en");
    assert_eq!(tiny.sha256.map(str::len), Some(64));
    assert!(tiny.bytes.is_some());
    assert_eq!(
        model::download_url("tiny.en").unwrap(),
        "https://huggingface.co/ggerganov/whisper.cpp/resolve/main/ggml-tiny.en.bin"
    );
    assert!(model::download_url("../../x").is_err());
}

#[tokio::test]
async fn fetch_offline_fails_clearly_and_leaves_nothing() {
    let dir = tempdir("fetch");
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let e = model::fetch_from(
        "tiny.en",
        "http://127.0.0.1:9/ggml-tiny.en.bin",
        Some(&dir),
        Progress::Quiet,
    )
    .await
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ModelError::Download { .. }), "{e:?}");
    assert!(
        msg.contains(&dir.join("ggml-tiny.en.bin").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("EARSHOT_MODEL"), "{msg}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "partial files left: {left:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn fetch_rejects_bad_names_before_any_io() {
    let e = model::fetch(
        "../../etc/passwd",
        Some(&std::env::temp_dir()),
        Progress::Quiet,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ModelError::UnknownName(_)));
}
