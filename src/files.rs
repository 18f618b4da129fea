//! Files this crate writes (the pipeline cache, the tuning table): whole or not at all.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `data` to `path` through a temporary file of this process and call, then a
/// rename: a reader sees the old file or the new one, never a torn one, and two writers
/// (threads or processes) never share a temporary file; the last rename wins, whole.
pub(crate) fn write_whole(path: &Path, data: &[u8]) -> Result<()> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.{call}.partial", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let fail = |action: &'static str, at: &Path| {
        let at = at.to_path_buf();
        let tmp = tmp.clone();
        move |source: std::io::Error| {
            let _ = std::fs::remove_file(&tmp);
            Error::Io {
                action,
                path: at,
                source,
            }
        }
    };
    std::fs::write(&tmp, data).map_err(fail("write the temporary file", &tmp))?;
    std::fs::rename(&tmp, path).map_err(fail("rename the temporary file over", path))
}
