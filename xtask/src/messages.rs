//! What xtask reads from cargo's output: where a build put a binary, and
//! where the target directory is.

use std::path::PathBuf;

use crate::json::Json;

/// The `executable` of the `compiler-artifact` message for binary target
/// `bin` in cargo's JSON messages (one object per line).
pub fn executable(messages: &str, bin: &str) -> Result<Option<PathBuf>, String> {
    let mut found = None;
    for line in messages.lines().filter(|l| l.starts_with('{')) {
        let m = Json::parse(line).map_err(|e| format!("cargo message {line:?}: {e}"))?;
        if m.get("reason").and_then(Json::as_str) != Some("compiler-artifact") {
            continue;
        }
        let Some(target) = m.get("target") else {
            continue;
        };
        let is_bin = target
            .get("kind")
            .and_then(Json::as_array)
            .is_some_and(|k| k.iter().any(|k| k.as_str() == Some("bin")));
        if !is_bin || target.get("name").and_then(Json::as_str) != Some(bin) {
            continue;
        }
        if let Some(exe) = m.get("executable").and_then(Json::as_str) {
            found = Some(PathBuf::from(exe));
        }
    }
    Ok(found)
}

/// `target_directory` from `cargo metadata --format-version 1` output.
pub fn target_directory(metadata: &str) -> Result<PathBuf, String> {
    let m = Json::parse(metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    m.get("target_directory")
        .and_then(Json::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata names no target_directory".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as `cargo build --message-format=json-render-diagnostics`
    /// prints them (shortened), for a build of `rt-demo` with a library and
    /// a second binary whose name starts the same way.
    const BUILD: &str = concat!(
        r#"{"reason":"compiler-artifact","package_id":"path+file:///w/tests#rt-tests@0.1.0","#,
        r#""target":{"kind":["lib"],"crate_types":["lib"],"name":"rt_tests"},"#,
        r#""filenames":["/t/release/librt_tests.rlib"],"executable":null,"fresh":true}"#,
        "\n",
        r#"{"reason":"compiler-artifact","package_id":"path+file:///w/tests#rt-tests@0.1.0","#,
        r#""target":{"kind":["bin"],"crate_types":["bin"],"name":"rt-demo-libc"},"#,
        r#""filenames":["/t/release/rt-demo-libc"],"executable":"/t/release/rt-demo-libc","fresh":false}"#,
        "\n",
        r#"{"reason":"compiler-artifact","package_id":"path+file:///w/tests#rt-tests@0.1.0","#,
        r#""target":{"kind":["bin"],"crate_types":["bin"],"name":"rt-demo"},"#,
        r#""filenames":["/my \"targets\"/x86_64-unknown-linux-gnu/release/rt-demo"],"#,
        r#""executable":"/my \"targets\"/x86_64-unknown-linux-gnu/release/rt-demo","fresh":false}"#,
        "\n",
        r#"{"reason":"build-finished","success":true}"#,
        "\n"
    );

    #[test]
    fn finds_the_named_binary_wherever_it_was_put() {
        assert_eq!(
            executable(BUILD, "rt-demo").unwrap(),
            Some(PathBuf::from(
                "/my \"targets\"/x86_64-unknown-linux-gnu/release/rt-demo"
            ))
        );
        assert_eq!(
            executable(BUILD, "rt-demo-libc").unwrap(),
            Some(PathBuf::from("/t/release/rt-demo-libc"))
        );
        // A library target of that name has no executable.
        assert_eq!(executable(BUILD, "rt_tests").unwrap(), None);
        assert_eq!(executable(BUILD, "bench-rt").unwrap(), None);
    }

    #[test]
    fn a_garbled_message_is_an_error() {
        assert!(executable("{\"reason\":\"compiler-artifact\",\n", "rt-demo").is_err());
    }

    #[test]
    fn reads_the_target_directory() {
        let md = r#"{"packages":[],"workspace_members":[],"target_directory":"/home/u/cargo-target","version":1,"workspace_root":"/w"}"#;
        assert_eq!(
            target_directory(md).unwrap(),
            PathBuf::from("/home/u/cargo-target")
        );
        assert!(target_directory(r#"{"version":1}"#).is_err());
    }
}
