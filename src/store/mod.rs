//! The gateway to the disk: bounded reads of input files, and (for outputs)
//! atomic, refuse-to-overwrite writes.

pub mod sealed;

use std::fs;
use std::io::{self, Read, Write as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The largest input file dvkg reads (a deposit file for 65,536 validators is
/// about 45 MiB).
pub const MAX_INPUT_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The operating system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than dvkg will read.
    #[error("{path} is {size} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The path is a directory or another non-file.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// An output that already exists; dvkg never overwrites.
    #[error("{path} already exists; dvkg never overwrites outputs")]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// The file is not UTF-8 text.
    #[error("{path} is not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// A secret file (a password or passphrase) that holds nothing.
    #[error("{path} is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The largest secret file read (a password or passphrase).
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Reads a secret from a file (a password or passphrase): bounded, with
/// one trailing newline removed, and not empty.
///
/// # Errors
///
/// [`StoreError`] when the file cannot be read, is not text, or is empty.
pub fn read_secret_text(path: &Path) -> Result<Zeroizing<String>, StoreError> {
    let bytes = read_secret_bytes(path, MAX_SECRET_FILE_BYTES)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| StoreError::NotText {
        path: path.to_owned(),
    })?;
    let trimmed = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if trimmed.is_empty() {
        return Err(StoreError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(Zeroizing::new(trimmed.to_owned()))
}

/// The path that names standard input where a secret file is expected.
pub const STDIN_PATH: &str = "-";

/// Whether `path` is `-`, standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN_PATH
}

/// Reads a secret source of at most `max` bytes into a zeroizing buffer
/// that never grows: a regular file, `-` (standard input), or any other
/// file that is read once from its start to its end: a FIFO, a pipe such
/// as `/dev/stdin` or a process substitution `<(pass show x)`, a character
/// device. A directory is refused.
///
/// A pipe has no size to check beforehand, so it is read to `max + 1`
/// bytes and refused as too large past `max`.
///
/// # Security
///
/// Standard input is read through the process's `Stdin`, whose buffer
/// (at most 8 KiB, not wiped) may keep a copy of what it read.
///
/// # Errors
///
/// [`StoreError`] when the source cannot be opened or read, is a
/// directory, or holds more than `max` bytes.
pub fn read_secret_bytes(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let io_error = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    if is_stdin(path) {
        return read_stream(io::stdin().lock(), path, max);
    }
    let file = fs::File::open(path).map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    if meta.is_file() {
        return read_bytes(path, max);
    }
    if meta.is_dir() {
        return Err(StoreError::NotAFile {
            path: path.to_owned(),
        });
    }
    read_stream(file, path, max)
}

/// Reads a stream to its end, at most `max` bytes, into a buffer allocated
/// once.
fn read_stream(stream: impl Read, path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let capacity = usize::try_from(max.saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    stream
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// Opens a regular file of at most `max` bytes; returns it with its length.
fn open_regular(path: &Path, max: u64) -> Result<(fs::File, u64), StoreError> {
    let io_error = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let file = fs::File::open(path).map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    if !meta.is_file() {
        return Err(StoreError::NotAFile {
            path: path.to_owned(),
        });
    }
    if meta.len() > max {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            max,
        });
    }
    Ok((file, meta.len()))
}

/// A public input file of at most `max` bytes (checked as [`read_text`]
/// does), to be read as a stream: a file too large to hold twice, a lock
/// of 65,536 validators (94 MB) parsed without its text in memory.
/// Reading stops after `max` bytes, should the file grow.
///
/// # Errors
///
/// [`StoreError`] when the file is missing, not a regular file or too large.
pub fn open_input(path: &Path, max: u64) -> Result<impl std::io::Read, StoreError> {
    let (file, _) = open_regular(path, max)?;
    Ok(std::io::BufReader::with_capacity(1 << 16, file.take(max)))
}

/// Reads at most `max` bytes into a zeroizing buffer sized so that it never
/// grows (so no copy of a secret is left behind).
///
/// # Errors
///
/// [`StoreError`] when the file is missing, not a regular file or too large.
pub fn read_bytes(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let io_error = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let (file, len) = open_regular(path, max)?;
    // One spare byte so that reading to the end of the file finds EOF
    // without growing the buffer (unless the file grew since the stat).
    let capacity = usize::try_from(len + 1).unwrap_or(usize::MAX);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > max {
        return Err(StoreError::TooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// A JSON parse error in words: an empty file and a file that ends early
/// are named as such, not as "EOF while parsing".
pub fn describe_json_error(err: &serde_json::Error) -> String {
    if err.is_eof() {
        if err.line() <= 1 && err.column() == 0 {
            "the file is empty".to_owned()
        } else {
            format!(
                "the JSON ends early, at line {} column {} (a truncated file?)",
                err.line(),
                err.column()
            )
        }
    } else {
        err.to_string()
    }
}

/// Reads a whole text file of at most `max` bytes.
///
/// # Errors
///
/// [`StoreError`] when the file is missing, not a regular file, too large or
/// not UTF-8.
pub fn read_text(path: &Path, max: u64) -> Result<String, StoreError> {
    // The bytes become the string, not a copy of it (a lock of 65,536
    // validators is 94 MB); bytes that are not text are wiped as
    // `read_bytes` would have.
    let mut bytes = read_bytes(path, max)?;
    String::from_utf8(std::mem::take(&mut *bytes)).map_err(|err| {
        zeroize::Zeroize::zeroize(&mut err.into_bytes());
        StoreError::NotText {
            path: path.to_owned(),
        }
    })
}

/// Writes `bytes` to a new file at `path` with permission bits `mode` (on
/// Unix), atomically and never over an existing file: a temporary file in
/// the same directory is written and synced, then hard-linked to `path`
/// (which fails if `path` exists), then unlinked. Where hard links are not
/// supported, `path` is created exclusively and written in place.
///
/// # Errors
///
/// [`StoreError::Exists`] for an existing `path` (before or at the moment
/// of the link), [`StoreError::Io`] otherwise; no temporary file is left.
pub fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let io_error = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let Some(file_name) = path.file_name() else {
        return Err(StoreError::NotAFile {
            path: path.to_owned(),
        });
    };
    let exists = || StoreError::Exists {
        path: path.to_owned(),
    };
    if path.symlink_metadata().is_ok() {
        return Err(exists());
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{:016x}",
        file_name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let written = write_exclusive(&tmp, bytes, mode).and_then(|()| {
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(err),
            // No hard links on this file system: create in place, still
            // exclusively.
            Err(_) => write_exclusive(path, bytes, mode),
        }
    });
    let _ = fs::remove_file(&tmp);
    written.map_err(|err| {
        if err.kind() == io::ErrorKind::AlreadyExists {
            exists()
        } else {
            io_error(err)
        }
    })?;
    // Make the new name durable; best effort (not every platform can open a
    // directory).
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    Ok(())
}

/// Creates `path` exclusively (`O_EXCL`) with `mode`, writes and syncs it;
/// removes it again if writing fails.
fn write_exclusive(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    let result = file.write_all(bytes).and_then(|()| file.sync_all());
    if result.is_err() {
        drop(file);
        let _ = fs::remove_file(path);
    }
    result
}

/// One file of an output directory.
pub struct OutputFile {
    /// Path relative to the output directory (may contain one subdirectory).
    pub path: PathBuf,
    /// The content.
    pub bytes: zeroize::Zeroizing<Vec<u8>>,
    /// Secret files are written 0600; public ones 0644.
    pub secret: bool,
}

impl OutputFile {
    /// A public file.
    pub fn public(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Self {
        Self {
            path: path.into(),
            bytes: zeroize::Zeroizing::new(bytes),
            secret: false,
        }
    }

    /// A secret file (mode 0600; the buffer is wiped after writing).
    pub fn secret(path: impl Into<PathBuf>, bytes: zeroize::Zeroizing<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            bytes,
            secret: true,
        }
    }
}

/// Refuses an output directory that already exists, before any work is done.
///
/// # Errors
///
/// [`StoreError::Exists`].
pub fn check_new_dir(out: &Path) -> Result<(), StoreError> {
    if out.exists() {
        return Err(StoreError::Exists {
            path: out.to_owned(),
        });
    }
    Ok(())
}

/// A new output directory, written file by file into a temporary sibling
/// directory, that appears at its final path only when committed: every file
/// and directory is made durable, then the directory is renamed into place.
/// If it is dropped uncommitted (an error, a panic), the temporary directory
/// is removed, so nothing is left behind; an existing `out` is never
/// overwritten.
///
/// Files may be written from several threads at once ([`AtomicDir::write`]
/// takes `&self`): each is created exclusively and written before `write`
/// returns. Durability comes at the commit, for all files at once
/// ([`AtomicDir::commit`] takes the directory by value, so it runs after
/// every `write` has returned): on Linux one `syncfs` of the file system
/// the directory is on (one journal commit, where an fsync per file costs a
/// journal commit each: 10,000 keystores took 14 s that way; an fsync of
/// each file after all are written still took 3.7 s, against 0.5 s), elsewhere an
/// fsync of every file; then the directories, the rename, and the parent.
/// `syncfs` also flushes what other programs left dirty on that file
/// system (right after a large build, the commit waits for it too).
/// A crash at any moment before the rename leaves only the temporary
/// directory, which [`stale_partials`] finds; after it, a complete one.
pub struct AtomicDir {
    out: PathBuf,
    parent: PathBuf,
    temp: PathBuf,
    /// The directories created so far, the temporary directory first.
    dirs: std::sync::Mutex<Vec<PathBuf>>,
    /// The files written so far (fsynced one by one at the commit where
    /// `syncfs` is not available).
    files: std::sync::Mutex<Vec<PathBuf>>,
    committed: bool,
    /// A pause after each file (fault injection: a slow write to kill in).
    pace: Option<std::time::Duration>,
    /// Held through each paced file and its pause, so that a paced write
    /// takes as long on any number of cores.
    paced: std::sync::Mutex<()>,
}

impl AtomicDir {
    /// Starts a new directory that will appear at `out`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Exists`] if `out` exists, or an I/O error.
    pub fn create(out: &Path) -> Result<Self, StoreError> {
        Self::create_tagged(out, "")
    }

    /// [`AtomicDir::create`], with `tag` in the temporary directory's name
    /// (`.NAME.partial-TAG-PID`), so that a stale one can be told to belong
    /// to a ceremony (see [`stale_partials`]).
    ///
    /// # Errors
    ///
    /// As [`AtomicDir::create`].
    pub fn create_tagged(out: &Path, tag: &str) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt as _;

        check_new_dir(out)?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let temp = parent.join(if tag.is_empty() {
            format!(".{name}.partial-{}", std::process::id())
        } else {
            format!(".{name}.partial-{tag}-{}", std::process::id())
        });
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&temp)
            .map_err(|source| StoreError::Io {
                path: temp.clone(),
                source,
            })?;
        Ok(Self {
            out: out.to_owned(),
            parent,
            dirs: std::sync::Mutex::new(vec![temp.clone()]),
            files: std::sync::Mutex::new(Vec::new()),
            temp,
            committed: false,
            pace: None,
            paced: std::sync::Mutex::new(()),
        })
    }

    /// Writes one file (0600 if secret, 0644 otherwise), made durable at
    /// the commit; safe to call from several threads at once.
    ///
    /// # Errors
    ///
    /// An I/O error naming the file.
    pub fn write(&self, file: &OutputFile) -> Result<(), StoreError> {
        // Straight to the file, with no buffer between: a secret's bytes
        // are copied nowhere they would not be wiped.
        self.write_file(&file.path, file.secret, |out| out.write_all(&file.bytes))
    }

    /// Writes the public file (0644) at `path` (relative, as in
    /// [`OutputFile`]) from what `fill` writes into it, through a buffer: a
    /// large file (the transcript, the lock) is encoded straight to disk
    /// instead of into a copy in memory first (184 MB for a transcript of
    /// 65,536 validators). Otherwise as [`AtomicDir::write`].
    ///
    /// # Errors
    ///
    /// An I/O error naming the file, `fill`'s included.
    pub fn write_public_with(
        &self,
        path: &Path,
        fill: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        self.write_file(path, false, |file| {
            let mut out = io::BufWriter::with_capacity(1 << 16, file);
            fill(&mut out)?;
            out.flush()
        })
    }

    fn write_file(
        &self,
        path: &Path,
        secret: bool,
        fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};

        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let _paced = self.pace.map(|_| {
            self.paced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        let path = self.temp.join(path);
        if let Some(sub) = path.parent() {
            // Held while creating, so that two threads writing into a new
            // subdirectory create (and record) it once.
            let mut dirs = self
                .dirs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !dirs.iter().any(|d| d == sub) {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .recursive(true)
                    .create(sub)
                    .map_err(io(sub))?;
                dirs.push(sub.to_owned());
            }
        }
        let mut handle = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if secret { 0o600 } else { 0o644 })
            .open(&path)
            .map_err(io(&path))?;
        fill(&mut handle).map_err(io(&path))?;
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(path);
        if let Some(pace) = self.pace {
            std::thread::sleep(pace);
        }
        Ok(())
    }

    /// Pauses `pace` after every file written (for the tests that kill a
    /// writer at a random moment: fault `slow-write`), one file at a time
    /// even when written from several threads.
    pub fn set_pace(&mut self, pace: Option<std::time::Duration>) {
        self.pace = pace;
    }

    /// The temporary directory the files are written to.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Makes every file durable (see [`AtomicDir`]), fsyncs the
    /// directories and renames the directory into place.
    ///
    /// # Errors
    ///
    /// [`StoreError::Exists`] if `out` appeared meanwhile, or an I/O error;
    /// the temporary directory is then removed.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let dirs = std::mem::take(
            self.dirs
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let files = std::mem::take(
            self.files
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        sync_files(&self.temp, &files)?;
        for d in dirs.iter().rev() {
            sync_dir(d)?;
        }
        check_new_dir(&self.out)?;
        rename_no_replace(&self.temp, &self.out).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                StoreError::Exists {
                    path: self.out.clone(),
                }
            } else {
                StoreError::Io {
                    path: self.out.clone(),
                    source,
                }
            }
        })?;
        self.committed = true;
        sync_dir(&self.parent)
    }
}

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists. A
/// plain rename replaces an empty directory that appeared at `to` after the
/// check; on Linux, `renameat2(RENAME_NOREPLACE)` makes the check and the
/// rename one step. Where the file system does not support that flag, and
/// elsewhere, the check just made stands.
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {}
            Err(err) => return Err(err.into()),
        }
    }
    fs::rename(from, to)
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.temp);
        }
    }
}

/// The temporary directories an interrupted [`AtomicDir`] of `out` left
/// behind (`.NAME.partial-*` beside it), with the tag each was created with
/// (empty when untagged).
pub fn stale_partials(out: &Path) -> Vec<(PathBuf, String)> {
    let Some(name) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = fs::read_dir(&parent) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let rest = file.strip_prefix(&prefix)?;
            let tag = match rest.rsplit_once('-') {
                Some((tag, pid)) if pid.bytes().all(|b| b.is_ascii_digit()) => tag.to_owned(),
                _ => String::new(),
            };
            Some((e.path(), tag))
        })
        .collect();
    found.sort();
    found
}

/// The bytes free for an unprivileged writer on the file system holding
/// `path`.
///
/// # Errors
///
/// [`StoreError::Io`] when the file system cannot be asked.
pub fn free_bytes(path: &Path) -> Result<u64, StoreError> {
    #[cfg(target_os = "linux")]
    {
        let stat = rustix::fs::statvfs(path).map_err(|err| StoreError::Io {
            path: path.to_owned(),
            source: err.into(),
        })?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Ok(u64::MAX)
    }
}

/// Replaces the file `path` with `bytes`, atomically (a synced temporary
/// file renamed over it): for a status file dvkg itself keeps up to date,
/// never for an output.
///
/// # Errors
///
/// [`StoreError::Io`] naming the path.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{:016x}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        rand::random::<u64>()
    ));
    let io_error = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let result = write_exclusive(&tmp, bytes, mode).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_error)?;
    sync_dir(dir)
}

/// Writes `files` as a new directory `out`, atomically (see [`AtomicDir`]).
///
/// # Errors
///
/// [`StoreError`] naming the path that failed.
pub fn write_dir_atomically(out: &Path, files: &[OutputFile]) -> Result<(), StoreError> {
    let dir = AtomicDir::create(out)?;
    for file in files {
        dir.write(file)?;
    }
    dir.commit()
}

/// Makes `files`, written under `dir`, durable: one `syncfs` of `dir`'s
/// file system on Linux (which reports any write-back error of the file
/// system since the directory was opened), else an fsync of each.
fn sync_files(dir: &Path, files: &[PathBuf]) -> Result<(), StoreError> {
    #[cfg(target_os = "linux")]
    {
        let handle = fs::File::open(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        match rustix::fs::syncfs(&handle) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::NOSYS) => {}
            Err(err) => {
                return Err(StoreError::Io {
                    path: dir.to_owned(),
                    source: err.into(),
                });
            }
        }
    }
    for file in files {
        fs::File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(|source| StoreError::Io {
                path: file.clone(),
                source,
            })?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn write_new_file_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_new_file(&path, b"first", 0o644).unwrap();
        let err = write_new_file(&path, b"second", 0o644).unwrap_err();
        assert!(matches!(&err, StoreError::Exists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    use super::*;

    #[test]
    fn rename_never_replaces_an_empty_directory() {
        let root = tempfile::tempdir().unwrap();
        let from = root.path().join("from");
        let to = root.path().join("to");
        fs::create_dir(&from).unwrap();
        fs::write(from.join("file"), b"new").unwrap();
        // A plain rename(2) would replace this empty directory.
        fs::create_dir(&to).unwrap();
        let err = rename_no_replace(&from, &to).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(from.join("file").exists());
        assert_eq!(fs::read_dir(&to).unwrap().count(), 0);
        fs::remove_dir(&to).unwrap();
        rename_no_replace(&from, &to).unwrap();
        assert_eq!(fs::read(to.join("file")).unwrap(), b"new");
    }

    #[test]
    fn files_written_from_many_threads_all_appear_at_the_commit() {
        use rayon::prelude::*;
        use std::os::unix::fs::PermissionsExt as _;

        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        let dir = AtomicDir::create(&out).unwrap();
        (0..200).into_par_iter().for_each(|i| {
            let file = OutputFile::secret(
                format!("keys/k-{i}.json"),
                Zeroizing::new(i.to_string().into_bytes()),
            );
            dir.write(&file).unwrap();
        });
        dir.write(&OutputFile::public("a.json", b"{}".to_vec()))
            .unwrap();
        assert!(!out.exists());
        dir.commit().unwrap();
        for i in 0..200 {
            let path = out.join(format!("keys/k-{i}.json"));
            assert_eq!(fs::read(&path).unwrap(), i.to_string().into_bytes());
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(fs::read_dir(out.join("keys")).unwrap().count(), 200);
        // Only the committed directory is left.
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_uncommitted_directory_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        {
            let dir = AtomicDir::create(&out).unwrap();
            dir.write(&OutputFile::public("a.json", b"{}".to_vec()))
                .unwrap();
        }
        assert!(!out.exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
