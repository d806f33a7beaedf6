//! The model registry: a directory of model versions and aliases.
//!
//! ```text
//! <root>/<model>/v1.presage      one artifact per version
//! <root>/<model>/v2.presage
//! <root>/<model>/aliases.json    {"champion": 1}
//! <root>/<model>/.lock           advisory lock held while registering
//! ```
//! Versions are integers that only grow. Registering takes an exclusive lock
//! on the model's `.lock` file, picks `max(existing) + 1`, writes the artifact
//! atomically (temp file, fsync, rename) and, for the first version, points
//! `champion` at it. Two trainers registering the same model at once are
//! serialised by the lock and get distinct versions. A crash leaves at worst
//! a stray temporary file, which readers ignore.
//!
//! Reading a version ([`Registry::read_version`], which [`Registry::load`]
//! uses) trusts nothing in the file: it is size-capped, checksummed and
//! validated by [`ModelArtifact::read_capped`], and must then say it is the
//! model and version its path names, so a file copied or renamed by hand
//! cannot serve as another model or version.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::artifact::{ArtifactError, ModelArtifact, MAX_ARTIFACT_BYTES};
use crate::atomic_file::write_atomic;

/// The alias the first version of a model receives.
pub const CHAMPION: &str = "champion";
/// Environment variable naming the registry directory.
pub const REGISTRY_ENV: &str = "PRESAGE_REGISTRY";
/// Registry directory when neither a flag nor the environment names one.
pub const DEFAULT_REGISTRY: &str = "./registry";
/// The decision log of `presage-train retrain`, one JSON object per line.
const DECISIONS_FILE: &str = "decisions.jsonl";
const ALIASES_FILE: &str = "aliases.json";
const ARTIFACT_EXTENSION: &str = "presage";

/// Which version of a model to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    /// A version number.
    Version(u64),
    /// A named alias such as `champion`.
    Alias(String),
    /// The highest version number.
    Latest,
}

impl std::fmt::Display for VersionSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSelector::Version(v) => write!(f, "version {v}"),
            VersionSelector::Alias(a) => write!(f, "alias '{a}'"),
            VersionSelector::Latest => f.write_str("latest version"),
        }
    }
}

/// Errors from registry operations.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A filesystem operation failed.
    #[error("registry {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The model name cannot be used as a directory name.
    #[error(
        "invalid model name '{0}': use 1-64 letters, digits, '_' or '-', not starting with '-'"
    )]
    InvalidName(String),
    /// The alias name is not valid.
    #[error(
        "invalid alias '{0}': use 1-64 letters, digits, '_' or '-', not starting with a digit"
    )]
    InvalidAlias(String),
    /// No such model in the registry.
    #[error("no model named '{name}' in registry {root}{hint}")]
    UnknownModel {
        /// Model asked for.
        name: String,
        /// Registry directory.
        root: String,
        /// Which models exist.
        hint: String,
    },
    /// The model exists but the selected version does not.
    #[error("model '{name}' has no {selector} (versions: {available})")]
    UnknownVersion {
        /// Model name.
        name: String,
        /// What was asked for.
        selector: String,
        /// Versions that exist.
        available: String,
    },
    /// `aliases.json` is unreadable.
    #[error("{path}: aliases file is corrupted: {message}")]
    BadAliases {
        /// The file.
        path: String,
        /// Parser message.
        message: String,
    },
    /// An artifact failed to load.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A valid artifact whose name or version differs from its place in
    /// the registry (a file copied or renamed by hand).
    #[error("{path}: the file holds model {found_name:?} version {found_version}, but its place in the registry is model '{name}' version {version} (was it copied or renamed by hand?); put it back where it belongs, and register new models with presage-train")]
    Misfiled {
        /// The file.
        path: String,
        /// Model name its path names.
        name: String,
        /// Version its path names.
        version: u64,
        /// Model name inside the file.
        found_name: String,
        /// Version inside the file.
        found_version: u64,
    },
}

type Result<T> = std::result::Result<T, RegistryError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn valid_name(name: &str, first_ok: impl Fn(char) -> bool) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.chars().next().is_some_and(first_ok)
}

/// Checks a model name (it becomes a directory name).
pub fn check_model_name(name: &str) -> Result<()> {
    if valid_name(name, |c| c != '-') {
        Ok(())
    } else {
        Err(RegistryError::InvalidName(name.to_string()))
    }
}

/// Checks an alias name (digits first would be confused with versions).
pub fn check_alias(alias: &str) -> Result<()> {
    if valid_name(alias, |c| c.is_ascii_alphabetic() || c == '_') {
        Ok(())
    } else {
        Err(RegistryError::InvalidAlias(alias.to_string()))
    }
}

/// The outcome of registering a new version.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Version number assigned.
    pub version: u64,
    /// Artifact file written.
    pub path: PathBuf,
    /// Whether this version became `champion` (the model's first version).
    pub champion: bool,
}

/// Summary of one stored version, for listings.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// Version number.
    pub version: u64,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
    /// The artifact path.
    pub path: PathBuf,
}

/// A registry rooted at a directory.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// A registry at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Registry { root: root.into() }
    }

    /// The registry directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Path of a version's artifact file.
    pub fn artifact_path(&self, name: &str, version: u64) -> PathBuf {
        self.model_dir(name)
            .join(format!("v{version}.{ARTIFACT_EXTENSION}"))
    }

    /// Names of all models, sorted.
    pub fn models(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.root)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && check_model_name(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Version numbers of a model, ascending (empty if the model has none).
    pub fn versions(&self, name: &str) -> Result<Vec<u64>> {
        check_model_name(name)?;
        let dir = self.model_dir(name);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut versions = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(v) = file
                .strip_prefix('v')
                .and_then(|rest| rest.strip_suffix(&format!(".{ARTIFACT_EXTENSION}")))
                .and_then(|n| n.parse::<u64>().ok())
            {
                versions.push(v);
            }
        }
        versions.sort_unstable();
        Ok(versions)
    }

    /// The aliases of a model (alias → version).
    pub fn aliases(&self, name: &str) -> Result<BTreeMap<String, u64>> {
        check_model_name(name)?;
        let path = self.model_dir(name).join(ALIASES_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadAliases {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Versions with their aliases, ascending.
    pub fn list(&self, name: &str) -> Result<Vec<VersionInfo>> {
        let aliases = self.aliases(name)?;
        Ok(self
            .versions(name)?
            .into_iter()
            .map(|version| VersionInfo {
                version,
                aliases: aliases
                    .iter()
                    .filter(|(_, v)| **v == version)
                    .map(|(a, _)| a.clone())
                    .collect(),
                path: self.artifact_path(name, version),
            })
            .collect())
    }

    /// Resolves a selector to a version number that exists.
    pub fn resolve(&self, name: &str, selector: &VersionSelector) -> Result<u64> {
        let versions = self.versions(name)?;
        if versions.is_empty() {
            let models = self.models()?;
            let hint = if models.is_empty() {
                " (the registry is empty; train one with `presage-train fit`)".to_string()
            } else {
                format!(" (models: {})", models.join(", "))
            };
            return Err(RegistryError::UnknownModel {
                name: name.to_string(),
                root: self.root.display().to_string(),
                hint,
            });
        }
        let found = match selector {
            VersionSelector::Version(v) => versions.contains(v).then_some(*v),
            VersionSelector::Alias(alias) => self
                .aliases(name)?
                .get(alias)
                .copied()
                .filter(|v| versions.contains(v)),
            VersionSelector::Latest => versions.last().copied(),
        };
        found.ok_or_else(|| RegistryError::UnknownVersion {
            name: name.to_string(),
            selector: selector.to_string(),
            available: versions
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Loads and validates the selected version (see [`Registry::read_version`]).
    pub fn load(&self, name: &str, selector: &VersionSelector) -> Result<ModelArtifact> {
        let version = self.resolve(name, selector)?;
        self.read_version(name, version)
    }

    /// Reads version `version` of model `name` from its artifact file, at
    /// most [`MAX_ARTIFACT_BYTES`] (see [`Registry::read_version_capped`]).
    pub fn read_version(&self, name: &str, version: u64) -> Result<ModelArtifact> {
        self.read_version_capped(name, version, MAX_ARTIFACT_BYTES)
    }

    /// Reads version `version` of model `name` from its artifact file: checks
    /// the name, stats the file and refuses it unread if it is larger than
    /// `max_bytes`, reads it, checks its checksum, decodes and validates it
    /// ([`ModelArtifact::read_capped`]), and finally checks that the
    /// artifact is that model and version ([`RegistryError::Misfiled`]).
    /// Other failures are [`RegistryError::InvalidName`],
    /// [`RegistryError::Artifact`] (I/O, size, damage, invalid content).
    pub fn read_version_capped(
        &self,
        name: &str,
        version: u64,
        max_bytes: u64,
    ) -> Result<ModelArtifact> {
        check_model_name(name)?;
        let path = self.artifact_path(name, version);
        let artifact = ModelArtifact::read_capped(&path, max_bytes)?;
        if artifact.name != name || artifact.version != version {
            return Err(RegistryError::Misfiled {
                path: path.display().to_string(),
                name: name.to_string(),
                version,
                found_name: artifact.name,
                found_version: artifact.version,
            });
        }
        Ok(artifact)
    }

    fn lock(&self, name: &str) -> Result<File> {
        let dir = self.model_dir(name);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(file)
    }

    /// Stores `artifact` as the next version of its model. Sets
    /// `artifact.version`; the first version also becomes `champion`.
    pub fn register(&self, artifact: &mut ModelArtifact) -> Result<Registered> {
        check_model_name(&artifact.name)?;
        let name = artifact.name.clone();
        let _lock = self.lock(&name)?;
        let version = self.versions(&name)?.last().map_or(1, |v| v + 1);
        artifact.version = version;
        let path = self.artifact_path(&name, version);
        artifact.write(&path)?;
        let mut aliases = self.aliases(&name)?;
        let champion = !aliases.contains_key(CHAMPION);
        if champion {
            aliases.insert(CHAMPION.to_string(), version);
            self.write_aliases(&name, &aliases)?;
        }
        Ok(Registered {
            version,
            path,
            champion,
        })
    }

    /// Points `alias` at an existing version.
    pub fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        check_alias(alias)?;
        let _lock = self.lock(name)?;
        self.resolve(name, &VersionSelector::Version(version))?;
        let mut aliases = self.aliases(name)?;
        aliases.insert(alias.to_string(), version);
        self.write_aliases(name, &aliases)
    }

    /// Appends one JSON line to the model's decision log
    /// (`decisions.jsonl`), rewriting the file atomically under the lock.
    pub fn record_decision(&self, name: &str, decision: &serde_json::Value) -> Result<()> {
        let _lock = self.lock(name)?;
        let path = self.model_dir(name).join(DECISIONS_FILE);
        let mut bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        bytes.extend_from_slice(decision.to_string().as_bytes());
        bytes.push(b'\n');
        write_atomic(&path, &bytes).map_err(io_err(&path))
    }

    /// The model's decision log, oldest first (empty if none).
    pub fn decisions(&self, name: &str) -> Result<Vec<serde_json::Value>> {
        let path = self.model_dir(name).join(DECISIONS_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Deletes the oldest versions beyond the newest `keep`, never one an
    /// alias (champion included) points at. Returns the deleted versions.
    pub fn prune(&self, name: &str, keep: usize) -> Result<Vec<u64>> {
        let _lock = self.lock(name)?;
        let aliased: Vec<u64> = self.aliases(name)?.into_values().collect();
        let versions = self.versions(name)?;
        let excess = versions.len().saturating_sub(keep);
        let mut deleted = Vec::new();
        for &v in versions.iter().take(excess) {
            if aliased.contains(&v) {
                continue;
            }
            let path = self.artifact_path(name, v);
            fs::remove_file(&path).map_err(io_err(&path))?;
            deleted.push(v);
        }
        Ok(deleted)
    }

    fn write_aliases(&self, name: &str, aliases: &BTreeMap<String, u64>) -> Result<()> {
        let path = self.model_dir(name).join(ALIASES_FILE);
        let bytes = serde_json::to_vec_pretty(aliases).expect("aliases serialise");
        write_atomic(&path, &bytes).map_err(io_err(&path))
    }
}
